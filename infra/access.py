"""Who outside the workflow may do what: upstream services start payments and operations (capture,
void, refund) and read their results; the AuditReader, a person with MFA, reads the evidence.

- UpstreamAccess: a managed policy upstream services attach (invoke the intake; start and describe
  executions of each state machine, and the storage key under that state machine's encryption
  context only). The storage key's policy names those roles too (cdk.json `upstream_principals`).
- AuditReader: the only principal that may decrypt audit payloads (the audit key, purpose `audit`);
  it reads the audit trail, the trail's log files and the archive, and changes nothing. Assumable only
  with MFA (docs/keys-and-access.md says how).
"""

from __future__ import annotations

from aws_cdk import Arn, ArnComponents, ArnFormat, Aws, Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import names
from infra.config import EnvironmentConfig
from payments import topology
from payments.crypto import PURPOSE_AUDIT

# What a caller needs of the state machine's customer managed key, by Step Functions call: the input is
# encrypted under the key on StartExecution (the Step Functions team's list, aws-samples/
# aws-stepfunctions-examples#74: "StartExecution: kms:GenerateDataKey, kms:Decrypt"); DescribeExecution
# returns the decrypted input and output (API reference, DescribeExecution includedData: kms:Decrypt).
WORKFLOW_KEY_ACTIONS: dict[str, frozenset[str]] = {
    "states:StartExecution": frozenset({"kms:GenerateDataKey", "kms:Decrypt"}),
    "states:DescribeExecution": frozenset({"kms:Decrypt"}),
}
# What upstream services start: payments and their operations. Status sync and reconciliation are started
# by their schedules (infra.schedules), never by a caller.
UPSTREAM_WORKFLOWS = (topology.PAYMENT_WORKFLOW, topology.OPERATION_WORKFLOW)
# The Sids of each state machine's statements (workflow_statements): start, read, its key.
WORKFLOW_SIDS: dict[str, tuple[str, str, str]] = {
    topology.PAYMENT_WORKFLOW.name: ("StartPayment", "ReadPayment", "WorkflowEncryption"),
    topology.OPERATION_WORKFLOW.name: ("StartOperation", "ReadOperation", "OperationWorkflowEncryption"),
}


class UpstreamAccess(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machines: dict[str, sfn.StateMachine],
        key: kms.IKey,
        intake: lambda_.IFunction,
    ) -> None:
        """`state_machines`: by workflow name (topology.WORKFLOWS); upstream services may start and read the
        payment and the operation state machine's executions (UPSTREAM_WORKFLOWS), no other's."""
        super().__init__(scope, construct_id)
        self.policy = iam.ManagedPolicy(
            self,
            "StartPayments",
            description=(
                "Start payments (card payments through the intake function; token payments may start the "
                "execution directly, name = TransactionID) and their captures, voids and refunds (an execution "
                "of the operation state machine, name = OperationID), and read their results"
            ),
            statements=[
                # The unqualified ARN: the intake's $LATEST, no version or alias (":*").
                iam.PolicyStatement(
                    sid="StartCardPayment", actions=["lambda:InvokeFunction"], resources=[intake.function_arn]
                ),
                # Token payments may still be started directly, and operations are started directly. No other
                # use of any key: a vaulted card (purpose card-intake) is opened by Tokenize and CallProcessor only.
                *(
                    statement
                    for workflow in UPSTREAM_WORKFLOWS
                    for statement in workflow_statements(self, state_machines[workflow.name], key, workflow)
                ),
            ],
        )


def workflow_statements(
    scope: Construct,
    state_machine: sfn.StateMachine,
    key: kms.IKey,
    workflow: topology.WorkflowSpec = topology.PAYMENT_WORKFLOW,
) -> list[iam.PolicyStatement]:
    """StartExecution on the state machine, DescribeExecution on its executions, and the key for those two calls.

    `workflow` says which state machine it is (the Sids: WORKFLOW_SIDS). Each state machine is
    encrypted with the storage key. The KMS actions are exactly those these two calls need of a
    customer managed key (WORKFLOW_KEY_ACTIONS): StartExecution kms:GenerateDataKey (to encrypt the
    input) and kms:Decrypt, DescribeExecution kms:Decrypt (to return the execution's input and
    output). No Encrypt, ReEncrypt*, GenerateDataKey* or DescribeKey, and only under the state
    machine's own encryption context. Nothing else is sealed under that context, and no card is in
    an execution any more (the intake vaults it; the input carries a vault reference, brand and last
    four; an operation's input names a payment, never a card): this Decrypt opens execution data
    only, never a card, a SecureToken (purpose secure-token) or an audit payload (purpose audit).
    """
    start, read, encryption = WORKFLOW_SIDS[workflow.name]
    return [
        iam.PolicyStatement(sid=start, actions=["states:StartExecution"], resources=[state_machine.state_machine_arn]),
        iam.PolicyStatement(
            sid=read, actions=["states:DescribeExecution"], resources=[executions_of(scope, state_machine)]
        ),
        iam.PolicyStatement(
            sid=encryption,
            actions=sorted(set().union(*WORKFLOW_KEY_ACTIONS.values())),
            resources=[key.key_arn],
            conditions={
                "StringEquals": {"kms:EncryptionContext:aws:states:stateMachineArn": state_machine.state_machine_arn}
            },
        ),
    ]


def executions_of(scope: Construct, state_machine: sfn.StateMachine) -> str:
    """execution:<state machine name>:*, the executions of this state machine (named by TransactionID, or
    an operation's by OperationID)."""
    return Arn.format(
        ArnComponents(
            service="states",
            resource="execution",
            resource_name=f"{state_machine.state_machine_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        ),
        Stack.of(scope),
    )


# A session of the AuditReader: MFA within the last hour, at most an hour long.
MFA_CONDITIONS = {
    "Bool": {"aws:MultiFactorAuthPresent": "true"},
    "NumericLessThan": {"aws:MultiFactorAuthAge": "3600"},
}
AUDIT_TABLE_READ_ACTIONS = ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan")
# `aws cloudtrail validate-logs` describes the trail and lists CloudTrail's public keys, which support no
# resource-level permission (Service Authorization Reference, AWS CloudTrail).
TRAIL_VALIDATION_ACTIONS = frozenset({"cloudtrail:DescribeTrails", "cloudtrail:ListPublicKeys"})
BUCKET_READ_ACTIONS = ("s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket", "s3:ListBucketVersions")


class AuditReader(Construct):
    """A role for a person reviewing the evidence, with MFA: decrypts audit payloads, reads, writes nothing."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        audit_key: kms.IKey,
        storage_key: kms.IKey,
        audit_table: dynamodb.ITable,
        trail_bucket: s3.IBucket,
        trail_arn: str,
        archive_bucket: s3.IBucket | None,
    ) -> None:
        super().__init__(scope, construct_id)
        # Named people (cdk.json audit_readers), or any principal of the account its own policy allows to.
        named = names.principal_arns(self, config.audit_readers)
        trusted: iam.IPrincipal = (
            iam.CompositePrincipal(*(iam.ArnPrincipal(arn) for arn in named)) if named else iam.AccountRootPrincipal()
        )
        self.role = iam.Role(
            self,
            "Role",
            role_name=f"PaymentAuditReader-{config.name}",
            description=f"Reads the payment evidence of {config.name} and decrypts audit payloads; MFA only",
            assumed_by=iam.PrincipalWithConditions(trusted, MFA_CONDITIONS),
            max_session_duration=Duration.hours(1),
        )
        for statement in self._statements(audit_key, storage_key, audit_table, trail_bucket, trail_arn, archive_bucket):
            self.role.add_to_policy(statement)

    def _statements(
        self,
        audit_key: kms.IKey,
        storage_key: kms.IKey,
        audit_table: dynamodb.ITable,
        trail_bucket: s3.IBucket,
        trail_arn: str,
        archive_bucket: s3.IBucket | None,
    ) -> list[iam.PolicyStatement]:
        statements = [
            iam.PolicyStatement(
                sid="AuditPayloadDecryption",
                actions=["kms:Decrypt"],
                resources=[audit_key.key_arn],
                conditions={"StringEquals": {"kms:EncryptionContext:purpose": PURPOSE_AUDIT}},
            ),
            iam.PolicyStatement(
                sid="AuditTrailRead", actions=list(AUDIT_TABLE_READ_ACTIONS), resources=[audit_table.table_arn]
            ),
            iam.PolicyStatement(
                sid="AuditTableKey",
                actions=["kms:Decrypt", "kms:DescribeKey"],
                resources=[storage_key.key_arn],
                conditions={
                    "StringEquals": {
                        "kms:ViaService": f"dynamodb.{Aws.REGION}.amazonaws.com",
                        "kms:EncryptionContext:aws:dynamodb:tableName": audit_table.table_name,
                    }
                },
            ),
            *_bucket_read("TrailLogs", trail_bucket),
            iam.PolicyStatement(
                sid="TrailLogKey",
                actions=["kms:Decrypt"],
                resources=[storage_key.key_arn],
                conditions={"StringEquals": {"kms:EncryptionContext:aws:cloudtrail:arn": trail_arn}},
            ),
            iam.PolicyStatement(sid="TrailValidation", actions=sorted(TRAIL_VALIDATION_ACTIONS), resources=["*"]),
        ]
        if archive_bucket is not None:
            statements += [
                *_bucket_read("Archive", archive_bucket),
                iam.PolicyStatement(
                    sid="ArchiveKey",
                    actions=["kms:Decrypt"],
                    resources=[storage_key.key_arn],
                    conditions={
                        "StringEquals": {"kms:ViaService": f"s3.{Aws.REGION}.amazonaws.com"},
                        "StringLike": {
                            "kms:EncryptionContext:aws:s3:arn": [
                                archive_bucket.bucket_arn,
                                f"{archive_bucket.bucket_arn}/*",
                            ]
                        },
                    },
                ),
            ]
        return statements


def _bucket_read(prefix: str, bucket: s3.IBucket) -> list[iam.PolicyStatement]:
    return [
        iam.PolicyStatement(
            sid=f"{prefix}Read",
            actions=list(BUCKET_READ_ACTIONS),
            resources=[bucket.bucket_arn, bucket.arn_for_objects("*")],
        )
    ]
