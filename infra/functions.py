"""One function and one role per step, each role granting exactly what its step does (no more).

- tokenize: KMS GenerateDataKey with encryption context purpose=secure-token.
- ledger_initiated, ledger_pending, ledger_success, ledger_failed: DynamoDB PutItem on PaymentLedger,
  and what DynamoDB needs of the table key (only through DynamoDB, only for that table).
- call_processor: KMS Decrypt (purpose=secure-token) and GenerateDataKey (purpose=audit);
  GetSecretValue on the Converge secret; PutItem on the audit table*.
- normalize: nothing.
- audit: PutItem on the audit table, and what DynamoDB needs of the table key.

Every role also writes its own log group, and X-Ray traces (added by CDK for active tracing).
No role may update or delete an item, and none may decrypt an audit payload (audit Decrypt is
never granted outside DynamoDB).
* CallProcessor writes each call's audit record as the call completes (see payments.charging).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Aws, Duration, aws_ssm
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.config import EnvironmentConfig
from infra.packaging import package_function
from payments import topology

# The one Python the project runs on: the Lambda runtime, the Powertools layer build and the
# tests all use it (SnapStart for Python needs 3.12 or newer).
PYTHON_RUNTIME = topology.LAMBDA_RUNTIME  # the one Python of the project


def _lambda_runtime(name: str) -> lambda_.Runtime:
    """CDK's own Runtime constant for `name` ("python3.12" -> Runtime.PYTHON_3_12), with its capabilities."""
    runtime: lambda_.Runtime = getattr(lambda_.Runtime, name.upper().replace("PYTHON", "PYTHON_").replace(".", "_"))
    if runtime.name != name:
        raise ValueError(f"{name!r} is not a Lambda runtime CDK knows")
    return runtime


RUNTIME = _lambda_runtime(PYTHON_RUNTIME)  # lambda_.Runtime.PYTHON_3_12
POWERTOOLS_VERSION = "3.37.0"  # must match requirements.txt
# Powertools publishes its layer ARNs as public SSM parameters, so the layer is pinned to the
# exact version the tests ran with, built for this runtime, resolved by CloudFormation at deploy time.
POWERTOOLS_LAYER_PARAMETER = f"/aws/service/powertools/python/arm64/{PYTHON_RUNTIME}/{POWERTOOLS_VERSION}"
# CallProcessor may wait for an earlier sale to land (20 s), then query and sell (2 x 23 s).
TIMEOUTS = {"CallProcessor": Duration.seconds(90)}


@dataclass(frozen=True)
class Dependencies:
    config: EnvironmentConfig
    key: kms.IKey
    ledger: dynamodb.TableV2
    audit: dynamodb.TableV2
    converge_secret: secretsmanager.ISecret


class WorkflowSteps(Construct):
    """The eight step Lambdas of the state machine (docs/architecture.md, "The flow"), keyed by step name."""

    def __init__(self, scope: Construct, construct_id: str, *, deps: Dependencies) -> None:
        super().__init__(scope, construct_id)
        self.deps = deps
        layer = lambda_.LayerVersion.from_layer_version_arn(
            self,
            "PowertoolsLayer",
            aws_ssm.StringParameter.value_for_string_parameter(self, POWERTOOLS_LAYER_PARAMETER),
        )
        self.functions: dict[str, lambda_.Function] = {}
        self.roles: dict[str, iam.Role] = {}
        self._code: dict[str, lambda_.Code] = {}  # functions that share a package share its asset
        for spec in topology.FUNCTIONS:
            self.functions[spec.step] = self._function(spec, layer)

    def _function(self, spec: topology.FunctionSpec, layer: lambda_.ILayerVersion) -> lambda_.Function:
        config = self.deps.config
        name = f"{spec.function_name}-{config.name}"
        log_group = logs.LogGroup(
            self,
            f"{spec.step}Logs",
            log_group_name=f"/aws/lambda/{name}",
            retention=logs.RetentionDays[config.log_retention],
            encryption_key=self.deps.key,
            removal_policy=config.removal_policy,
        )
        role = iam.Role(
            self,
            f"{spec.step}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{spec.step} step of the payment workflow ({config.name}): least privilege",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="OwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn],
            )
        )
        for statement in self._statements(spec):
            role.add_to_policy(statement)
        self.roles[spec.step] = role
        return lambda_.Function(
            self,
            spec.step,
            function_name=name,
            description=f"Payment workflow step {spec.step}",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler=spec.handler,
            code=self._package(spec.code_dir),
            layers=[layer],
            role=role,
            memory_size=config.lambda_memory_mb,
            timeout=TIMEOUTS.get(spec.step, Duration.seconds(15)),
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
            environment=self._environment(spec),
        )

    def _package(self, code_dir: str) -> lambda_.Code:
        if code_dir not in self._code:
            self._code[code_dir] = lambda_.Code.from_asset(str(package_function(code_dir)))
        return self._code[code_dir]

    def _environment(self, spec: topology.FunctionSpec) -> dict[str, str]:
        deps = self.deps
        values = {
            topology.PAYMENT_KMS_KEY_ARN: deps.key.key_arn,
            topology.DYNAMODB_TABLE_NAME: deps.ledger.table_name,
            topology.DYNAMODB_AUDIT_TABLE_NAME: deps.audit.table_name,
            topology.CONVERGE_URL: deps.config.converge_url,
            topology.CONVERGE_CONNECT_TIMEOUT_SECONDS: "3",
            topology.CONVERGE_READ_TIMEOUT_SECONDS: "20",
            topology.CONVERGE_SECRET_ARN: deps.converge_secret.secret_arn,
            topology.POWERTOOLS_SERVICE_NAME: topology.SERVICE_NAME,
            topology.POWERTOOLS_METRICS_NAMESPACE: topology.METRICS_NAMESPACE,
        }
        return {name: values[name] for name in spec.environment("aws")}

    def _statements(self, spec: topology.FunctionSpec) -> list[iam.PolicyStatement]:
        deps = self.deps
        if spec.step == "Tokenize":
            return [_kms("TokenEncryption", deps.key, "kms:GenerateDataKey", "secure-token")]
        if spec.step.startswith("Ledger"):
            return _put_item("Ledger", deps.ledger, deps.key)
        if spec.step == "CallProcessor":
            return [
                _kms("TokenDecryption", deps.key, "kms:Decrypt", "secure-token"),
                _kms("AuditEncryption", deps.key, "kms:GenerateDataKey", "audit"),
                iam.PolicyStatement(
                    sid="ConvergeCredentials",
                    actions=["secretsmanager:GetSecretValue"],
                    resources=[deps.converge_secret.secret_arn],
                ),
                iam.PolicyStatement(
                    sid="ConvergeCredentialsKey",
                    actions=["kms:Decrypt"],
                    resources=[deps.key.key_arn],
                    conditions={
                        "StringEquals": {"kms:ViaService": f"secretsmanager.{Aws.REGION}.amazonaws.com"},
                        "StringLike": {"kms:EncryptionContext:SecretARN": deps.converge_secret.secret_arn},
                    },
                ),
                *_put_item("Audit", deps.audit, deps.key),
            ]
        if spec.step == "Audit":
            return _put_item("Audit", deps.audit, deps.key)
        return []  # Normalize: pure computation


def _kms(sid: str, key: kms.IKey, action: str, purpose: str) -> iam.PolicyStatement:
    return iam.PolicyStatement(
        sid=sid,
        actions=[action],
        resources=[key.key_arn],
        conditions={"StringEquals": {"kms:EncryptionContext:purpose": purpose}},
    )


def _put_item(prefix: str, table: dynamodb.TableV2, key: kms.IKey) -> list[iam.PolicyStatement]:
    return [
        iam.PolicyStatement(sid=f"{prefix}Append", actions=["dynamodb:PutItem"], resources=[table.table_arn]),
        # What DynamoDB itself needs of the table key, and only when DynamoDB asks on our behalf.
        iam.PolicyStatement(
            sid=f"{prefix}TableKey",
            actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
            resources=[key.key_arn],
            conditions={
                "StringEquals": {
                    "kms:ViaService": f"dynamodb.{Aws.REGION}.amazonaws.com",
                    "kms:EncryptionContext:aws:dynamodb:tableName": table.table_name,
                }
            },
        ),
    ]
