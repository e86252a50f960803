"""The fixed names of the stack's resources, and the ARNs built from them.

A policy that must not refer to a resource names it by these instead. A key policy cannot refer to a
table the key encrypts (the table refers to the key: CloudFormation would see a cycle), nor a table's
own resource policy to the table: both name it by its ARN, built here from its fixed name. Names
are per environment (`-<env>`), so two environments can share an account.
"""

from __future__ import annotations

from aws_cdk import Arn, ArnComponents, ArnFormat, Aws, DefaultStackSynthesizer, Stack
from constructs import Construct

from infra.config import EnvironmentConfig, principal_arn
from payments import topology

# The context key `cdk bootstrap --qualifier` is recorded under; absent, the CDK's default qualifier.
BOOTSTRAP_QUALIFIER_CONTEXT = "@aws-cdk/core:bootstrapQualifier"


def table_name(spec: topology.TableSpec, config: EnvironmentConfig) -> str:
    return f"{spec.name}-{config.name}"


def function_name(spec: topology.FunctionSpec, config: EnvironmentConfig) -> str:
    return f"{spec.function_name}-{config.name}"


def state_machine_name(config: EnvironmentConfig, workflow: topology.WorkflowSpec = topology.PAYMENT_WORKFLOW) -> str:
    return f"{workflow.name}-{config.name}"


def converge_secret_name(config: EnvironmentConfig) -> str:
    return f"payment-workflow/{config.name}/converge"


def trail_name(config: EnvironmentConfig) -> str:
    return f"payment-workflow-{config.name}"


def schedule_group_name(config: EnvironmentConfig) -> str:
    """The EventBridge Scheduler group of the stack's schedules (status sync, reconciliation)."""
    return f"payment-workflow-{config.name}"


def schedule_name(config: EnvironmentConfig, workflow: topology.WorkflowSpec) -> str:
    """The schedule that starts `workflow`'s executions: `<workflow name>-<env>`, in the stack's group."""
    return f"{workflow.name}-{config.name}"


def schedule_failures_queue_name(config: EnvironmentConfig) -> str:
    """The dead-letter queue of the schedules: a start the scheduler gave up on."""
    return f"PaymentScheduleFailures-{config.name}"


def report_bucket_name(scope: Construct, config: EnvironmentConfig) -> str:
    """Reconciliation's listings and reports (topology.REPORT_BUCKET_NAME)."""
    return bucket_name(scope, "reports", config)


def bucket_name(scope: Construct, purpose: str, config: EnvironmentConfig) -> str:
    """S3 names are global: the account and region make them this environment's own."""
    stack = Stack.of(scope)
    return f"payment-workflow-{config.name}-{purpose}-{stack.account}-{stack.region}"


def delivery_stream_name(spec: topology.TableSpec, config: EnvironmentConfig) -> str:
    return f"{table_name(spec, config)}-archive"


def event_bus_name(config: EnvironmentConfig) -> str:
    """The payments bus upstream services subscribe to (topology.EVENT_BUS): `payments-<env>`."""
    return f"{topology.EVENT_BUS}-{config.name}"


def event_failures_queue_name(config: EnvironmentConfig) -> str:
    """Where LedgerEvents' event source mapping puts a batch it gave up on (its on-failure destination)."""
    return f"{topology.EVENTS_FUNCTION.function_name}Failures-{config.name}"


def table_arn(scope: Construct, spec: topology.TableSpec, config: EnvironmentConfig) -> str:
    return _arn(scope, "dynamodb", "table", table_name(spec, config), ArnFormat.SLASH_RESOURCE_NAME)


def state_machine_arn(
    scope: Construct, config: EnvironmentConfig, workflow: topology.WorkflowSpec = topology.PAYMENT_WORKFLOW
) -> str:
    name = state_machine_name(config, workflow)
    return _arn(scope, "states", "stateMachine", name, ArnFormat.COLON_RESOURCE_NAME)


def executions_arn(
    scope: Construct, config: EnvironmentConfig, workflow: topology.WorkflowSpec = topology.PAYMENT_WORKFLOW
) -> str:
    """execution:<state machine name>:*, every execution of the state machine, from its fixed name."""
    name = f"{state_machine_name(config, workflow)}:*"
    return _arn(scope, "states", "execution", name, ArnFormat.COLON_RESOURCE_NAME)


def converge_secret_arn_pattern(scope: Construct, config: EnvironmentConfig) -> str:
    """Secrets Manager appends a dash and six random characters to a secret's name in its ARN."""
    name = f"{converge_secret_name(config)}-??????"
    return _arn(scope, "secretsmanager", "secret", name, ArnFormat.COLON_RESOURCE_NAME)


def event_bus_arn(scope: Construct, config: EnvironmentConfig) -> str:
    return _arn(scope, "events", "event-bus", event_bus_name(config), ArnFormat.SLASH_RESOURCE_NAME)


def event_rules_arn(scope: Construct, config: EnvironmentConfig) -> str:
    """Every rule on the payments bus: rule/<bus name>/<rule name> (a rule on the default bus has no bus part)."""
    return _arn(scope, "events", "rule", f"{event_bus_name(config)}/*", ArnFormat.SLASH_RESOURCE_NAME)


def event_failures_queue_arn(scope: Construct, config: EnvironmentConfig) -> str:
    """arn:<partition>:sqs:<region>:<account>:<name>: a queue's ARN has no resource type."""
    return _queue_arn(scope, event_failures_queue_name(config))


def schedule_failures_queue_arn(scope: Construct, config: EnvironmentConfig) -> str:
    return _queue_arn(scope, schedule_failures_queue_name(config))


def schedule_group_arn(scope: Construct, config: EnvironmentConfig) -> str:
    """arn:<partition>:scheduler:<region>:<account>:schedule-group/<name>: what the scheduler's role trusts."""
    return _arn(scope, "scheduler", "schedule-group", schedule_group_name(config), ArnFormat.SLASH_RESOURCE_NAME)


def trail_arn(scope: Construct, config: EnvironmentConfig) -> str:
    return _arn(scope, "cloudtrail", "trail", trail_name(config), ArnFormat.SLASH_RESOURCE_NAME)


def log_group_arn(scope: Construct, name: str) -> str:
    """The log group's ARN as CloudWatch Logs puts it in its encryption context (aws:logs:arn): no ":*"."""
    return _arn(scope, "logs", "log-group", name, ArnFormat.COLON_RESOURCE_NAME)


def function_arn(scope: Construct, spec: topology.FunctionSpec, config: EnvironmentConfig) -> str:
    return _arn(scope, "lambda", "function", function_name(spec, config), ArnFormat.COLON_RESOURCE_NAME)


def bucket_arn(name: str) -> str:
    return f"arn:{Aws.PARTITION}:s3:::{name}"


def deployment_role_arn(scope: Construct) -> str:
    """The role CloudFormation deploys the stack with: `cdk bootstrap`'s CloudFormation execution role.

    It creates and updates the keys, so a key policy must let it administer them (KMS refuses a policy
    that would lock its creator out); docs/keys-and-access.md says what else it may do and why.
    """
    qualifier = scope.node.try_get_context(BOOTSTRAP_QUALIFIER_CONTEXT) or DefaultStackSynthesizer.DEFAULT_QUALIFIER
    stack = Stack.of(scope)
    name = f"cdk-{qualifier}-cfn-exec-role-{stack.account}-{stack.region}"
    return f"arn:{Aws.PARTITION}:iam::{stack.account}:role/{name}"


def principal_arns(scope: Construct, entries: tuple[str, ...]) -> list[str]:
    """A principal list of cdk.json (key_administrators, audit_readers, ...) as IAM ARNs."""
    return [principal_arn(entry, Stack.of(scope).account) for entry in entries]


def _queue_arn(scope: Construct, name: str) -> str:
    return Arn.format(
        ArnComponents(service="sqs", resource=name, arn_format=ArnFormat.NO_RESOURCE_NAME), Stack.of(scope)
    )


def _arn(scope: Construct, service: str, resource: str, name: str, arn_format: ArnFormat) -> str:
    return Arn.format(
        ArnComponents(service=service, resource=resource, resource_name=name, arn_format=arn_format), Stack.of(scope)
    )
