"""cdk-nag's AwsSolutions pack, and the acknowledgements: each names the finding and why it stands."""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, App, Stack, Token, Validations
from aws_cdk import aws_iam as iam
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

from infra import names
from infra.access import TRAIL_VALIDATION_ACTIONS
from infra.archive import PREFIXES as ARCHIVE_PREFIXES
from infra.archive import STREAM_LIST_ACTIONS
from infra.functions import EVENTS, INTAKE, PYTHON_RUNTIME, REPORTS, RESOLVER, SYNC_FINDER, WINDOW_LISTINGS
from infra.network import NETWORK_DESCRIBE_ACTIONS
from infra.stack import PaymentWorkflowStack

WILDCARD_RESOURCE = "AwsSolutions::AwsSolutions-IAM5[Resource::*]"
# The only actions any role may hold on Resource "*": none of them supports resource-level permissions.
XRAY_ACTIONS = frozenset({"xray:PutTraceSegments", "xray:PutTelemetryRecords"})
# CDK adds these to a traced state machine that logs: X-Ray sampling, and CloudWatch Logs' vended log delivery.
STATE_MACHINE_WILDCARD_ACTIONS = XRAY_ACTIONS | {
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}
XRAY_REASON = (
    "xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions; "
    "the statement grants those two actions only."
)
XRAY_AND_VPC_REASON = XRAY_REASON + (
    " In the VPC (staging, prod) Lambda also describes network interfaces and subnets with the function's role "
    "(ec2:DescribeNetworkInterfaces works only on Resource *; ec2:DescribeSubnets has no resource-level permission)."
)
STREAM_LIST_REASON = (
    " LedgerEvents' event source mapping lists the DynamoDB streams with its role (dynamodb:ListStreams), which "
    "supports no resource-level permission; the ledger's stream itself is read only by its ARN."
)
STATE_MACHINE_REASON = (
    "Added by CDK for tracing and logging: X-Ray PutTraceSegments/PutTelemetryRecords/GetSampling* and "
    "the CloudWatch Logs delivery actions (CreateLogDelivery, DescribeResourcePolicies, ...) "
    "support no resource-level permissions."
)


def check_with_cdk_nag(app: App, stack: PaymentWorkflowStack) -> None:
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    # IAM5[Resource::*] is acknowledged on each role's default policy, and only while every statement
    # of it on Resource "*" grants the actions named here: widen any other statement to "*" and cdk-nag
    # reports it again. (This reads the policies as constructed; call it once the stack is built.)
    for step, role in stack.steps.roles.items():
        stream = (STREAM_LIST_ACTIONS, STREAM_LIST_REASON) if step == EVENTS else (frozenset(), "")
        if stack.network is None:
            _acknowledge_wildcard_resource(role, XRAY_ACTIONS | stream[0], XRAY_REASON + stream[1])
        else:
            _acknowledge_wildcard_resource(
                role, XRAY_ACTIONS | NETWORK_DESCRIBE_ACTIONS | stream[0], XRAY_AND_VPC_REASON + stream[1]
            )
            _acknowledge_network_interfaces(role)
    for workflow in stack.workflows.values():
        _acknowledge_wildcard_resource(
            workflow.state_machine.role, STATE_MACHINE_WILDCARD_ACTIONS, STATE_MACHINE_REASON
        )
    for function in stack.steps.functions.values():
        Validations.of(function).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-L1",
                reason=(
                    f"Pinned on purpose to {PYTHON_RUNTIME}, the one Python of the project: the tests, the local stack "
                    "and the Powertools layer build use it (SnapStart for Python needs 3.12 or newer). Moving to a "
                    "newer runtime is a project-wide change, made in one place (infra.functions.PYTHON_RUNTIME)."
                ),
            )
        )
    # The upstream policy and the intake's role: DescribeExecution of a payment's execution; the upstream
    # policy also of an operation's; status sync's resolver of both (is the execution that wrote a pending
    # entry still running?).
    intake_policy = stack.steps.roles[INTAKE].node.try_find_child("DefaultPolicy")
    resolver_policy = stack.steps.roles[RESOLVER].node.try_find_child("DefaultPolicy")
    payments, operations = stack.workflow.state_machine, stack.operation_workflow.state_machine
    for policy, machine, named_by in (
        (stack.upstream.policy, payments, "TransactionIDs"),
        (intake_policy, payments, "TransactionIDs"),
        (stack.upstream.policy, operations, "OperationIDs"),
        (resolver_policy, payments, "TransactionIDs"),
        (resolver_policy, operations, "OperationIDs"),
    ):
        if policy is not None:
            Validations.of(policy).acknowledge(
                Acknowledgment(
                    id=f"AwsSolutions::AwsSolutions-IAM5[Resource::{_executions_finding(stack, machine)}]",
                    reason=(
                        "DescribeExecution is granted on this state machine's executions only "
                        f"(execution:<state machine>:*): their names are the {named_by}, unknown in advance."
                    ),
                )
            )
    Validations.of(stack.converge_secret).acknowledge(
        Acknowledgment(
            id="AwsSolutions::AwsSolutions-SMG4",
            reason=(
                "Elavon issues the Converge credentials; they change in Converge's merchant portal, which no rotation "
                "Lambda can drive. Operators rotate them there and update the secret (README, Deploy)."
            ),
        )
    )
    Validations.of(stack.events.failures).acknowledge(
        Acknowledgment(
            id="AwsSolutions::AwsSolutions-SQS3",
            reason=(
                "This queue is itself a dead-letter queue: the on-failure destination of LedgerEvents' event source "
                "mapping (a batch of the ledger's stream given up on). A queue behind it would only move the same "
                "message again; its depth pages instead (infra.monitoring, EventFailures)."
            ),
        )
    )
    _acknowledge_evidence_access(stack)
    _acknowledge_scheduled_workflows(stack)


def _acknowledge_scheduled_workflows(stack: PaymentWorkflowStack) -> None:
    """Status sync and reconciliation: their schedules' dead-letter queue, the report bucket's prefixes,
    reconciliation's Distributed Map children."""
    Validations.of(stack.schedules.failures).acknowledge(
        Acknowledgment(
            id="AwsSolutions::AwsSolutions-SQS3",
            reason=(
                "This queue is itself a dead-letter queue: EventBridge Scheduler's, for a start of status sync or "
                "reconciliation it gave up on after its retries. A queue behind it would only move the same message "
                "again; its depth pages instead (infra.monitoring, ScheduleFailures)."
            ),
        )
    )
    bucket = _logical_id(stack.reports.bucket)
    for step, objects, what in (
        ("ListProcessorWindow", WINDOW_LISTINGS, "writes each window's listing"),
        ("MatchLedger", WINDOW_LISTINGS, "reads each window's listing"),
        ("MatchLedger", REPORTS, "writes the day's report, and the run's copy"),
    ):
        policy = stack.steps.roles[step].node.try_find_child("DefaultPolicy")
        if policy is not None:
            Validations.of(policy).acknowledge(
                Acknowledgment(
                    id=f"AwsSolutions::AwsSolutions-IAM5[Resource::<{bucket}.Arn>/{objects}]",
                    reason=(
                        f"{step} {what} under reconciliation's own prefix of the report bucket ({objects}): the keys "
                        "hold the day and the run (the execution's name), known only when it runs."
                    ),
                )
            )
    region, account = (
        "<AWS::Region>" if Token.is_unresolved(stack.region) else stack.region,
        "<AWS::AccountId>" if Token.is_unresolved(stack.account) else stack.account,
    )
    executions = f"AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:{region}:{account}:execution"
    finder = stack.steps.roles[SYNC_FINDER].node.try_find_child("DefaultPolicy")
    if finder is not None:
        sync = names.state_machine_name(stack.config, stack.status_sync.spec)
        Validations.of(finder).acknowledge(
            Acknowledgment(
                id=f"{executions}:{sync}:*]",
                reason=(
                    "FindUnresolved describes its own status sync run (its start time), named by Step Functions "
                    "when EventBridge Scheduler starts it: DescribeExecution on this one state machine's executions."
                ),
            )
        )
    role = stack.reconciliation.state_machine.role
    policy = role.node.try_find_child("DefaultPolicy")
    if policy is not None:
        name = names.state_machine_name(stack.config, stack.reconciliation.spec)
        Validations.of(policy).acknowledge(
            Acknowledgment(
                id=f"{executions}:{name}/*]",
                reason=(
                    "Reconciliation's Distributed Map lists each window in a child execution (execution:<state "
                    "machine>/<map run>:<id>): the state machine describes and stops its own map runs' children only, "
                    "whose names Step Functions generates."
                ),
            )
        )


def _acknowledge_evidence_access(stack: PaymentWorkflowStack) -> None:
    """The archive's and the AuditReader's wildcards (docs/keys-and-access.md): each one narrow, each named."""
    _acknowledge_wildcard_resource(
        stack.audit_reader.role,
        TRAIL_VALIDATION_ACTIONS,
        "cloudtrail:DescribeTrails and cloudtrail:ListPublicKeys (what `aws cloudtrail validate-logs` calls) support "
        "no resource-level permissions; read-only, and the statement grants those two actions only.",
    )
    reader_policy = stack.audit_reader.role.node.try_find_child("DefaultPolicy")
    buckets = [("trail", stack.trail.bucket)] + ([("archive", stack.archive.bucket)] if stack.archive else [])
    for name, bucket in buckets:
        if reader_policy is not None:
            Validations.of(reader_policy).acknowledge(
                Acknowledgment(
                    id=f"AwsSolutions::AwsSolutions-IAM5[Resource::<{_logical_id(bucket)}.Arn>/*]",
                    reason=(
                        f"The AuditReader reads every object of the {name} bucket (GetObject, GetObjectVersion): its "
                        "objects are the evidence a reviewer checks, named by date and written by AWS services."
                    ),
                )
            )
    if stack.archive is None:
        return
    for reader in stack.archive.readers.values():
        _acknowledge_wildcard_resource(
            reader,
            STREAM_LIST_ACTIONS,
            "EventBridge Pipes lists the DynamoDB streams (dynamodb:ListStreams), which supports no resource-level "
            "permission; the stream itself is read only by its ARN.",
        )
    for table, writer in stack.archive.writers.items():
        policy = writer.node.try_find_child("DefaultPolicy")
        prefix = ARCHIVE_PREFIXES[table]
        for objects in (f"{prefix}/*", f"errors/{prefix}/*"):
            if policy is not None:
                Validations.of(policy).acknowledge(
                    Acknowledgment(
                        id=f"AwsSolutions::AwsSolutions-IAM5[Resource::<{_logical_id(stack.archive.bucket)}.Arn>/{objects}]",
                        reason=(
                            f"Firehose names each archive object of {table} after its delivery time: it may write "
                            f"under its own prefix ({objects}) only; the bucket's Object Lock keeps what it wrote."
                        ),
                    )
                )


def _logical_id(construct: IConstruct) -> str:
    child = construct.node.default_child
    assert child is not None
    return str(Stack.of(construct).resolve(Stack.of(construct).get_logical_id(child)))  # type: ignore[arg-type]


def _acknowledge_network_interfaces(role: iam.IRole) -> None:
    """IAM5 on this account's EC2 resources: the network interfaces Lambda manages for a VPC function."""
    policy = role.node.try_find_child("DefaultPolicy")
    if policy is not None:
        Validations.of(policy).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:*/*]",
                reason=(
                    "Lambda creates, deletes and assigns addresses to the function's network interfaces with its "
                    "role; their IDs exist only once Lambda made them, and the Lambda developer guide asks for all "
                    "resource IDs of DeleteNetworkInterface. Scoped to this account and region, network-interface "
                    "actions only."
                ),
            )
        )


def _acknowledge_wildcard_resource(role: iam.IRole, allowed: frozenset[str], reason: str) -> None:
    """Acknowledge IAM5[Resource::*] on the role's default policy if its "*" statements grant only `allowed`."""
    policy = role.node.try_find_child("DefaultPolicy")
    if not isinstance(policy, iam.Policy):
        return
    if _wildcard_resource_actions(policy, policy.document) <= allowed:
        Validations.of(policy).acknowledge(Acknowledgment(id=WILDCARD_RESOURCE, reason=reason))


def _wildcard_resource_actions(scope: IConstruct, document: iam.PolicyDocument) -> set[str]:
    """The actions a policy document allows on Resource "*" or on a NotResource (wider still).

    An allowing NotAction statement counts as "*": it grants every action but those it names.
    """
    found: set[str] = set()
    for statement in Stack.of(scope).resolve(document).get("Statement", []):
        if statement.get("Effect", "Allow") != "Allow":
            continue
        if "NotAction" in statement:
            found.add("*")
        elif "*" in _as_list(statement.get("Resource", [])) or "NotResource" in statement:
            found |= set(_as_list(statement["Action"]))
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _executions_finding(stack: PaymentWorkflowStack, state_machine: IConstruct) -> str:
    """How cdk-nag spells the execution ARN pattern it reports (tokens in angle brackets)."""
    machine = stack.resolve(stack.get_logical_id(state_machine.node.default_child))  # type: ignore[arg-type]
    region = "<AWS::Region>" if Token.is_unresolved(stack.region) else stack.region
    account = "<AWS::AccountId>" if Token.is_unresolved(stack.account) else stack.account
    return f"arn:<AWS::Partition>:states:{region}:{account}:execution:<{machine}.Name>:*"
