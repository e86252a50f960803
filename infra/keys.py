"""Three customer managed keys, one per class of data, each with its whole key policy written out here.

| key | alias | encrypts |
|---|---|---|
| card data | `payment-workflow-card-data-<env>` | the vaulted card and its CVV, SecureTokens (`PAYMENT_KMS_KEY_ARN`) |
| audit | `payment-workflow-audit-<env>` | audit payloads (`AUDIT_KMS_KEY_ARN`) |
| storage | `payment-workflow-storage-<env>` | all else at rest: tables, logs, secret, machines, bus, buckets |

What every policy keeps (docs/keys-and-access.md; tests/infra/test_keys.py holds each statement):
- No statement for the account (`arn:aws:iam::<account>:root`) and no `kms:*`: an identity policy
  alone never opens a key; each principal that may use one is named here, with what for.
- Administrators manage a key and cannot use it: the deployment role (CloudFormation, which must be
  able to update the policy it writes) and cdk.json's `key_administrators`. No Encrypt, Decrypt,
  ReEncrypt or GenerateDataKey, and no CreateGrant: a grant is use, given without the policy showing it.
- Every use is bound by an encryption context: a purpose (`payments.crypto`), a table's name, the
  secret's, the state machine's, a log group's, the trail's, the archive bucket's; only the
  deployment role, creating resources, is bound by the one service it goes through instead.
- A service principal only with `aws:SourceArn`/`aws:SourceAccount` or an encryption context that only
  that service's own requests for this stack carry.

The rest of the stack never gets the keys themselves, only references to them (`kms.Key.from_key_arn`):
a reference has no policy to add to, so no construct can add a statement behind this module's back. (A
Secret would add one letting the whole account use the key through Secrets Manager; a logging state
machine, `kms:Decrypt*` for CloudWatch Logs' delivery service with no condition.)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import jsii
from aws_cdk import Aws, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct, IValidation

from infra import names
from infra.config import EnvironmentConfig
from payments import topology
from payments.crypto import PURPOSE_AUDIT, PURPOSE_CARD_INTAKE, PURPOSE_SECURE_TOKEN

# Managing a key, never using it (KMS Developer Guide, "Default key policy: allows key administrators
# to administer the KMS key"), with kms:Create* narrowed to CreateAlias: kms:CreateGrant is use.
ADMINISTRATION = (
    "kms:CreateAlias",
    "kms:Describe*",
    "kms:Enable*",
    "kms:List*",
    "kms:Put*",
    "kms:Update*",
    "kms:Revoke*",
    "kms:Disable*",
    "kms:Get*",
    "kms:Delete*",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
)
# What DynamoDB asks of a table's key on behalf of a caller (table_key in infra.functions grants the same).
TABLE_KEY_ACTIONS = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey")
# KMS Developer Guide, "How Amazon DynamoDB uses AWS KMS", customer managed key policy: the principal that
# creates a table needs these through DynamoDB (DynamoDB creates the table's grant on its behalf).
TABLE_CREATION_ACTIONS = (
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:Encrypt",
    "kms:GenerateDataKey*",
    "kms:ReEncrypt*",
)
# CloudWatch Logs User Guide, "Encrypt log data in CloudWatch Logs using AWS KMS": the key policy statement
# for logs.<region>.amazonaws.com, bound to the log groups by the aws:logs:arn encryption context.
CLOUDWATCH_LOGS_ACTIONS = ("kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*")
PURPOSE = "kms:EncryptionContext:purpose"
# The ledger steps of an operation (capture, void, refund): they read and append the payment's ledger.
OPERATION_LEDGER_STEPS = ("AdmitOperation", "OperationPending", "OperationSuccess", "OperationFailed")
# The scheduled workflows' steps that append to the ledger: a status sync resolution, a PAYMENT-SETTLED fact.
SCHEDULED_LEDGER_WRITERS = ("ResolveUnresolved", "MatchLedger")
# Every function that calls the processor: they read the Converge credentials; all but
# ListProcessorWindow (a listing, audited nowhere) also seal audit payloads.
PROCESSOR_STEPS = tuple(spec.step for spec in topology.FUNCTIONS if spec.uses_processor)
AUDIT_SEALERS = ("CallProcessor", "CallOperationProcessor", "ResolveUnresolved")
# The Sid of each state machine's statements in the storage key's policy (its own executions).
MACHINE_SIDS = {
    topology.PAYMENT_WORKFLOW.name: "StateMachine",
    topology.OPERATION_WORKFLOW.name: "OperationStateMachine",
    topology.STATUS_SYNC_WORKFLOW.name: "StatusSyncStateMachine",
    topology.RECONCILIATION_WORKFLOW.name: "ReconciliationStateMachine",
}


@dataclass(frozen=True)
class KeyUsers:
    """Who the key policies name, once the stack has made them."""

    step_roles: Mapping[str, iam.IRole]  # each function's role, by step (topology.ALL_FUNCTIONS)
    functions: Mapping[str, lambda_.Function]  # the functions, by step
    state_machine_roles: Mapping[str, iam.IRole]  # each state machine's role, by workflow name (topology.WORKFLOWS)
    audit_reader: iam.IRole
    # The archive (infra.archive; prod): by table base name (topology), the role reading its stream, and the
    # roles writing the archive bucket. Empty where there is no archive.
    archive_readers: Mapping[str, iam.IRole]
    archive_writers: Sequence[iam.IRole]
    archive_bucket: str | None
    # EventBridge Scheduler's role of each scheduled workflow, by workflow name (infra.schedules).
    schedule_roles: Mapping[str, iam.IRole]
    report_bucket: str  # reconciliation's listings and reports (infra.reports), by name


class PaymentKeys(Construct):
    """The three keys; `card_data`, `audit` and `storage` are the references the rest of the stack uses."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.policies: dict[str, iam.PolicyDocument] = {}  # by key name (keys)
        self.card_data_key = self._key(
            "CardData", "card-data", f"{topology.PAYMENT_KMS_KEY_ARN}: vaulted cards and SecureTokens"
        )
        self.audit_key = self._key("Audit", "audit", f"{topology.AUDIT_KMS_KEY_ARN}: audit payloads")
        self.storage_key = self._key(
            "Storage",
            "storage",
            "Tables, logs, the Converge secret, the state machines, alarms, archive, trail, the payments bus, "
            "reconciliation reports, schedule failures",
        )
        self.card_data = kms.Key.from_key_arn(self, "CardDataReference", self.card_data_key.key_arn)
        self.audit = kms.Key.from_key_arn(self, "AuditReference", self.audit_key.key_arn)
        self.storage = kms.Key.from_key_arn(self, "StorageReference", self.storage_key.key_arn)
        self._written = False
        self.node.add_validation(_EveryEncryptedLogGroupNamed(self))

    @property
    def keys(self) -> dict[str, kms.Key]:
        return {"card_data": self.card_data_key, "audit": self.audit_key, "storage": self.storage_key}

    def _key(self, construct_id: str, alias: str, description: str) -> kms.Key:
        self.policies[alias.replace("-", "_")] = policy = iam.PolicyDocument()
        return kms.Key(
            self,
            construct_id,
            alias=f"alias/payment-workflow-{alias}-{self.config.name}",
            description=description,
            enable_key_rotation=True,
            # An explicit document: without one, CDK writes the account-root kms:* statement.
            policy=policy,
            removal_policy=self.config.removal_policy,
        )

    def write_policies(self, users: KeyUsers) -> None:
        """Every statement of the three policies. Call once, when the stack's roles and log groups exist."""
        if self._written:
            raise RuntimeError("the key policies are written once")
        self._written = True
        statements = {
            "card_data": self._card_data(users),
            "audit": self._audit(users),
            "storage": self._storage(users),
        }
        for key, own in statements.items():
            self.policies[key].add_statements(self._administration(), *own)

    # -- who manages ---------------------------------------------------------------------------------------

    def _administration(self) -> iam.PolicyStatement:
        # The deployment role first: KMS refuses a key policy that would not let its creator change it
        # again (the policy lockout safety check), and CloudFormation updates the keys with that role.
        administrators = [names.deployment_role_arn(self), *names.principal_arns(self, self.config.key_administrators)]
        return _allow("KeyAdministration", administrators, ADMINISTRATION)

    # -- the card-data key ---------------------------------------------------------------------------------

    def _card_data(self, users: KeyUsers) -> list[iam.PolicyStatement]:
        """Who seals and opens card data (payments.crypto purposes); mirrors each role's own policy."""
        role = _role_arns(users.step_roles)
        return [
            _allow("CardIntakeSealing", role("Intake"), ["kms:GenerateDataKey"], _purpose(PURPOSE_CARD_INTAKE)),
            _allow(
                "CardIntakeOpening", role("Tokenize", "CallProcessor"), ["kms:Decrypt"], _purpose(PURPOSE_CARD_INTAKE)
            ),
            _allow("SecureTokenSealing", role("Tokenize"), ["kms:GenerateDataKey"], _purpose(PURPOSE_SECURE_TOKEN)),
            _allow("SecureTokenOpening", role("CallProcessor"), ["kms:Decrypt"], _purpose(PURPOSE_SECURE_TOKEN)),
        ]

    # -- the audit key -------------------------------------------------------------------------------------

    def _audit(self, users: KeyUsers) -> list[iam.PolicyStatement]:
        """CallProcessor, CallOperationProcessor and ResolveUnresolved (status sync) seal audit payloads and
        cannot open them; only the AuditReader (MFA) opens them. (The encryption context's transaction_id,
        a payment's TransactionID or an operation's trail `<TransactionID>/<OperationID>`, is not a
        condition: the purpose is.)

        payments.crypto encrypts through Powertools Data Masking and the AWS Encryption SDK with one key:
        the SDK asks that key for a data key (kms:GenerateDataKey) and calls kms:Encrypt only for further
        keys of a multi-key keyring (aws_encryption_sdk.internal.utils.prepare_data_keys); decrypting
        calls kms:Decrypt.
        """
        sealer = _role_arns(users.step_roles)(*AUDIT_SEALERS)
        return [
            _allow("AuditSealing", sealer, ["kms:GenerateDataKey"], _purpose(PURPOSE_AUDIT)),
            _allow("AuditOpening", [users.audit_reader.role_arn], ["kms:Decrypt"], _purpose(PURPOSE_AUDIT)),
        ]

    # -- the storage key -----------------------------------------------------------------------------------

    def _storage(self, users: KeyUsers) -> list[iam.PolicyStatement]:
        statements = [
            *self._tables(users),
            *self._converge_secret(users),
            *self._state_machine(users),
            *self._function_environments(users),
            self._log_groups(),
            self._alarm_topic(),
            *self._trail(users),
            *self._archive(users),
            *self._payment_events(users),
            *self._reports(users),
            *self._schedule_failures(users),
        ]
        return [s for s in statements if s.has_principal]

    def _tables(self, users: KeyUsers) -> list[iam.PolicyStatement]:
        """Each table's key through DynamoDB, for that table only, to the roles that use the table.

        KMS Developer Guide, "How Amazon DynamoDB uses AWS KMS": DynamoDB uses the table's key on behalf
        of the caller (kms:ViaService), under the encryption context aws:dynamodb:tableName; it describes
        the key through the grant it creates for each table (its operations include DescribeKey), which
        the table's creator, the deployment role, creates through DynamoDB.
        """
        role = _role_arns(users.step_roles)
        ledger, audit, vault = topology.LEDGER_TABLE, topology.AUDIT_TABLE, topology.CARD_VAULT_TABLE
        ledger_users = role(
            "LedgerInitiated",
            "LedgerPending",
            "LedgerSuccess",
            "LedgerFailed",
            "CallProcessor",
            *OPERATION_LEDGER_STEPS,
            "CallOperationProcessor",
            # Status sync finds on the ledger's index and resolves; reconciliation matches and records settlement.
            "FindUnresolved",
            *SCHEDULED_LEDGER_WRITERS,
        )
        audit_users = role("CallProcessor", "Audit", "CallOperationProcessor", "OperationFailed", "ResolveUnresolved")
        vault_users = [*role("Intake", "Tokenize", "CallProcessor", "LedgerSuccess", "LedgerFailed")]
        events = topology.EVENTS_FUNCTION.step
        statements = [
            _allow("LedgerTable", ledger_users, TABLE_KEY_ACTIONS, self._via_dynamodb(ledger)),
            _allow("AuditTable", audit_users, TABLE_KEY_ACTIONS, self._via_dynamodb(audit)),
            _allow(
                "AuditTableReview",
                [users.audit_reader.role_arn],
                ["kms:Decrypt", "kms:DescribeKey"],
                self._via_dynamodb(audit),
            ),
            _allow(
                "CardVaultTable",
                # The payment state machine (DiscardCard); the operation state machine never touches the vault.
                [*vault_users, users.state_machine_roles[topology.PAYMENT_WORKFLOW.name].role_arn],
                TABLE_KEY_ACTIONS,
                self._via_dynamodb(vault),
            ),
            # LedgerEvents' idempotency records (payments.event_publishing).
            _allow("IdempotencyTable", role(events), TABLE_KEY_ACTIONS, self._via_dynamodb(topology.IDEMPOTENCY_TABLE)),
            _allow(
                "TableCreation",
                [names.deployment_role_arn(self)],
                TABLE_CREATION_ACTIONS,
                {"StringEquals": {"kms:ViaService": f"dynamodb.{Aws.REGION}.amazonaws.com"}},
            ),
        ]
        # The archive reads each table's stream, which DynamoDB encrypts with the table's key.
        for spec in (ledger, audit):
            reader = users.archive_readers.get(spec.name)
            if reader is not None:
                statements.append(
                    _allow(
                        f"{spec.name}StreamArchiving",
                        [reader.role_arn],
                        ["kms:Decrypt"],
                        {"StringEquals": {"kms:EncryptionContext:aws:dynamodb:tableName": self._table(spec)}},
                    )
                )
        # LedgerEvents' event source mapping reads the ledger's stream (every environment), as the pipe does.
        statements.append(
            _allow(
                "PaymentLedgerStreamEvents",
                role(events),
                ["kms:Decrypt"],
                {"StringEquals": {"kms:EncryptionContext:aws:dynamodb:tableName": self._table(ledger)}},
            )
        )
        return statements

    def _converge_secret(self, users: KeyUsers) -> list[iam.PolicyStatement]:
        """The Converge secret through Secrets Manager, under its SecretARN encryption context.

        KMS Developer Guide, "How AWS Secrets Manager uses AWS KMS": GetSecretValue needs kms:Decrypt,
        CreateSecret and PutSecretValue kms:GenerateDataKey, with the encryption context SecretARN.
        Operators may put the credentials (PutSecretValue) and cannot read them back.
        """
        condition = {
            "StringEquals": {"kms:ViaService": f"secretsmanager.{Aws.REGION}.amazonaws.com"},
            "StringLike": {"kms:EncryptionContext:SecretARN": names.converge_secret_arn_pattern(self, self.config)},
        }
        return [
            _allow(
                "ConvergeCredentialsReading",
                _role_arns(users.step_roles)(*PROCESSOR_STEPS),
                ["kms:Decrypt"],
                condition,
            ),
            _allow(
                "ConvergeCredentialsCreation",
                [names.deployment_role_arn(self)],
                ["kms:GenerateDataKey", "kms:Decrypt"],
                condition,
            ),
            _allow(
                "ConvergeCredentialsRotation",
                names.principal_arns(self, self.config.operators),
                ["kms:GenerateDataKey"],
                condition,
            ),
        ]

    def _state_machine(self, users: KeyUsers) -> list[iam.PolicyStatement]:
        """The state machines' executions, each under its own stateMachineArn encryption context.

        Step Functions Developer Guide, "Data at rest encryption": the execution role uses the key for
        the execution data (kms:Decrypt, kms:GenerateDataKey); a caller needs kms:GenerateDataKey and
        kms:Decrypt to StartExecution and kms:Decrypt to DescribeExecution (infra.access,
        WORKFLOW_KEY_ACTIONS); whoever creates or updates the state machine, both. With logging on, the
        execution role generates data keys for the log delivery (encryption context SourceArn: this
        account's logs), which CloudWatch Logs' delivery service decrypts.

        Each state machine's role uses the key for its own executions only. The intake starts payments;
        upstream services start payments and operations; EventBridge Scheduler starts status sync and
        reconciliation (each schedule's own role, its own state machine), and so may operators (a sync
        with bounds of their own, a day reconciled again); operators read every execution. Status sync
        reads executions' status only (DescribeExecution METADATA_ONLY, ListExecutions): no key.
        """
        payment, operation = topology.PAYMENT_WORKFLOW, topology.OPERATION_WORKFLOW
        status_sync, reconciliation = topology.STATUS_SYNC_WORKFLOW, topology.RECONCILIATION_WORKFLOW
        machine = self._machine_context(payment)
        operations = self._machine_context(operation)
        delivery = {"StringEquals": {"kms:EncryptionContext:SourceArn": self._logs_of_this_account()}}
        machine_roles = {name: role.role_arn for name, role in users.state_machine_roles.items()}
        upstream = names.principal_arns(self, self.config.upstream_principals)
        operators = names.principal_arns(self, self.config.operators)
        starters = [*_role_arns(users.step_roles)("Intake"), *upstream]
        data_keys = ["kms:Decrypt", "kms:GenerateDataKey"]
        scheduled = [
            _allow(
                f"{MACHINE_SIDS[workflow.name].removesuffix('StateMachine')}StartAndRead",
                [users.schedule_roles[workflow.name].role_arn, *operators],
                data_keys,
                self._machine_context(workflow),
            )
            for workflow in (status_sync, reconciliation)
        ]
        return [
            *(
                _allow(
                    f"{MACHINE_SIDS[workflow.name]}Executions",
                    [machine_roles[workflow.name]],
                    data_keys,
                    self._machine_context(workflow),
                )
                for workflow in topology.WORKFLOWS
            ),
            _allow(
                "StateMachineLogDelivery",
                [machine_roles[workflow.name] for workflow in topology.WORKFLOWS],
                ["kms:GenerateDataKey"],
                delivery,
            ),
            _service("LogDeliveryDecryption", "delivery.logs.amazonaws.com", ["kms:Decrypt"], delivery),
            _allow("PaymentStartAndRead", starters, data_keys, machine),
            _allow("OperationStartAndRead", upstream, data_keys, operations),
            _allow("PaymentRead", operators, ["kms:Decrypt"], machine),
            _allow("OperationRead", operators, ["kms:Decrypt"], operations),
            *scheduled,
            _allow(
                "StateMachineDeployment",
                [names.deployment_role_arn(self)],
                data_keys,
                self._machines_context(*topology.WORKFLOWS),
            ),
        ]

    def _function_environments(self, users: KeyUsers) -> list[iam.PolicyStatement]:
        """Functions whose environment is encrypted with the storage key (Lambda's KmsKeyArn).

        Lambda Developer Guide, "Securing Lambda environment variables": Lambda encrypts the variables
        when the function is created or updated, and the execution role decrypts them when an execution
        environment starts, under the encryption context aws:lambda:FunctionArn.
        """
        stack = Stack.of(self)
        storage = stack.resolve(self.storage_key.key_arn)
        encrypted = [
            step
            for step, function in users.functions.items()
            if stack.resolve(_cfn_function(function).kms_key_arn) == storage
        ]
        if not encrypted:
            return []
        by_step = {spec.step: spec for spec in topology.ALL_FUNCTIONS}
        arns = [names.function_arn(self, by_step[step], self.config) for step in encrypted]
        return [
            _allow(
                "FunctionEnvironments",
                _role_arns(users.step_roles)(*encrypted),
                ["kms:Decrypt"],
                {"StringEquals": {"kms:EncryptionContext:aws:lambda:FunctionArn": arns}},
            ),
            _allow(
                "FunctionEnvironmentDeployment",
                [names.deployment_role_arn(self)],
                ["kms:Encrypt", "kms:Decrypt", "kms:CreateGrant"],
                {"StringEquals": {"kms:ViaService": f"lambda.{Aws.REGION}.amazonaws.com"}},
            ),
        ]

    def _log_groups(self) -> iam.PolicyStatement:
        """CloudWatch Logs, for the log groups of this stack only (each named: aws:logs:arn)."""
        arns = [names.log_group_arn(self, name) for name in sorted(log_groups_encrypted_with(self.storage_key))]
        return _service(
            "CloudWatchLogs",
            f"logs.{Aws.REGION}.amazonaws.com",
            CLOUDWATCH_LOGS_ACTIONS,
            {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": arns}},
        )

    def _alarm_topic(self) -> iam.PolicyStatement:
        """CloudWatch alarms of this account publish to the encrypted alarm topic (SNS Developer Guide,
        "Enable compatibility between event sources from AWS services and encrypted topics")."""
        return _service(
            "CloudWatchAlarms",
            "cloudwatch.amazonaws.com",
            ["kms:Decrypt", "kms:GenerateDataKey*"],
            {"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
        )

    def _trail(self, users: KeyUsers) -> list[iam.PolicyStatement]:
        """CloudTrail encrypts this stack's trail's log files; the AuditReader reads them.

        CloudTrail User Guide, "Configure AWS KMS key policies for CloudTrail": GenerateDataKey* with the
        trail as aws:SourceArn and the encryption context aws:cloudtrail:arn, DescribeKey with the trail
        as aws:SourceArn, Decrypt for the readers of the log files.
        """
        trail = names.trail_arn(self, self.config)
        own_trail = {"StringEquals": {"aws:SourceArn": trail}}
        log_files = {"StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": self._trails_named_like_ours()}}
        return [
            _service(
                "CloudTrailEncryption", "cloudtrail.amazonaws.com", ["kms:GenerateDataKey*"], {**own_trail, **log_files}
            ),
            _service("CloudTrailKeyDescription", "cloudtrail.amazonaws.com", ["kms:DescribeKey"], own_trail),
            _allow(
                "TrailReview",
                [users.audit_reader.role_arn],
                ["kms:Decrypt"],
                {"StringEquals": {"kms:EncryptionContext:aws:cloudtrail:arn": trail}},
            ),
        ]

    def _archive(self, users: KeyUsers) -> list[iam.PolicyStatement]:
        """Firehose writes the archive bucket (SSE-KMS) and keeps its buffer encrypted; the AuditReader reads.

        Firehose Developer Guide, "Grant Firehose access to an Amazon S3 destination": kms:GenerateDataKey
        and kms:Decrypt through S3, under the encryption context aws:s3:arn of the bucket; and "Data
        protection": with a customer managed key, Firehose uses a grant that the creator of the delivery
        stream creates through Firehose.
        """
        if users.archive_bucket is None:
            return []
        bucket = names.bucket_arn(users.archive_bucket)
        through_s3 = {
            "StringEquals": {"kms:ViaService": f"s3.{Aws.REGION}.amazonaws.com"},
            "StringLike": {"kms:EncryptionContext:aws:s3:arn": [bucket, f"{bucket}/*"]},
        }
        return [
            _allow(
                "ArchiveDelivery",
                [role.role_arn for role in users.archive_writers],
                ["kms:GenerateDataKey", "kms:Decrypt"],
                through_s3,
            ),
            _allow("ArchiveReview", [users.audit_reader.role_arn], ["kms:Decrypt"], through_s3),
            _allow(
                "ArchiveBufferEncryption",
                [names.deployment_role_arn(self)],
                ["kms:CreateGrant"],
                {
                    "StringEquals": {"kms:ViaService": f"firehose.{Aws.REGION}.amazonaws.com"},
                    "Bool": {"kms:GrantIsForAWSResource": "true"},
                },
            ),
        ]

    def _payment_events(self, users: KeyUsers) -> list[iam.PolicyStatement]:
        """The payments bus (EventBridge) and LedgerEvents' failure queue (SQS), both encrypted with the key.

        EventBridge User Guide, "Authorizing EventBridge to use a customer managed key": EventBridge needs
        kms:GenerateDataKey and kms:Decrypt (it encrypts each event, and decrypts it to match rules and
        deliver it), bound here by the encryption context it uses in every operation of a bus,
        aws:events:event-bus:arn (this bus), and aws:SourceAccount; and kms:DescribeKey, to check the
        key, bound by aws:SourceAccount. (The deployment role, creating the bus, may describe the key as
        its administrator.) Whoever puts an event needs nothing of the key: EventBridge uses it.

        SQS Developer Guide, "Key management": a sender needs kms:GenerateDataKey and kms:Decrypt through
        SQS, under the queue's encryption context aws:sqs:arn; a receiver kms:Decrypt. Lambda sends with
        LedgerEvents' role; operators read a batch given up on.
        """
        bus = names.event_bus_arn(self, self.config)
        queue = names.event_failures_queue_arn(self, self.config)
        this_account = {"aws:SourceAccount": Aws.ACCOUNT_ID}
        through_sqs = {
            "StringEquals": {
                "kms:ViaService": f"sqs.{Aws.REGION}.amazonaws.com",
                "kms:EncryptionContext:aws:sqs:arn": queue,
            }
        }
        return [
            _service(
                "EventBusEncryption",
                "events.amazonaws.com",
                ["kms:GenerateDataKey", "kms:Decrypt"],
                {"StringEquals": {**this_account, "kms:EncryptionContext:aws:events:event-bus:arn": bus}},
            ),
            _service(
                "EventBusKeyDescription", "events.amazonaws.com", ["kms:DescribeKey"], {"StringEquals": this_account}
            ),
            _allow(
                "EventFailuresDelivery",
                _role_arns(users.step_roles)(topology.EVENTS_FUNCTION.step),
                ["kms:GenerateDataKey", "kms:Decrypt"],
                through_sqs,
            ),
            _allow(
                "EventFailuresReview", names.principal_arns(self, self.config.operators), ["kms:Decrypt"], through_sqs
            ),
        ]

    def _reports(self, users: KeyUsers) -> list[iam.PolicyStatement]:
        """Reconciliation's report bucket (SSE-KMS with a bucket key): its two writing steps, and operators
        reading a report, through S3 for that bucket only (the encryption context aws:s3:arn)."""
        bucket = names.bucket_arn(users.report_bucket)
        through_s3 = {
            "StringEquals": {"kms:ViaService": f"s3.{Aws.REGION}.amazonaws.com"},
            "StringLike": {"kms:EncryptionContext:aws:s3:arn": [bucket, f"{bucket}/*"]},
        }
        return [
            _allow(
                "ReconciliationReports",
                _role_arns(users.step_roles)("ListProcessorWindow", "MatchLedger"),
                ["kms:GenerateDataKey", "kms:Decrypt"],
                through_s3,
            ),
            _allow(
                "ReconciliationReportReview",
                names.principal_arns(self, self.config.operators),
                ["kms:Decrypt"],
                through_s3,
            ),
        ]

    def _schedule_failures(self, users: KeyUsers) -> list[iam.PolicyStatement]:
        """The schedules' dead-letter queue (SQS, encrypted with the key): the scheduler puts a start it gave
        up on there with the schedule's role; operators read it."""
        through_sqs = {
            "StringEquals": {
                "kms:ViaService": f"sqs.{Aws.REGION}.amazonaws.com",
                "kms:EncryptionContext:aws:sqs:arn": names.schedule_failures_queue_arn(self, self.config),
            }
        }
        return [
            _allow(
                "ScheduleFailuresDelivery",
                [role.role_arn for role in users.schedule_roles.values()],
                ["kms:GenerateDataKey", "kms:Decrypt"],
                through_sqs,
            ),
            _allow(
                "ScheduleFailuresReview",
                names.principal_arns(self, self.config.operators),
                ["kms:Decrypt"],
                through_sqs,
            ),
        ]

    # -- names -----------------------------------------------------------------------------------------------

    def _via_dynamodb(self, spec: topology.TableSpec) -> dict[str, dict[str, str]]:
        return {
            "StringEquals": {
                "kms:ViaService": f"dynamodb.{Aws.REGION}.amazonaws.com",
                "kms:EncryptionContext:aws:dynamodb:tableName": self._table(spec),
            }
        }

    def _table(self, spec: topology.TableSpec) -> str:
        return names.table_name(spec, self.config)

    def _state_machine_arn(self, workflow: topology.WorkflowSpec) -> str:
        return names.state_machine_arn(self, self.config, workflow)

    def _machine_context(self, workflow: topology.WorkflowSpec) -> dict[str, dict[str, str]]:
        return {"StringEquals": {"kms:EncryptionContext:aws:states:stateMachineArn": self._state_machine_arn(workflow)}}

    def _machines_context(self, *workflows: topology.WorkflowSpec) -> dict[str, dict[str, list[str]]]:
        arns = [self._state_machine_arn(workflow) for workflow in workflows]
        return {"StringEquals": {"kms:EncryptionContext:aws:states:stateMachineArn": arns}}

    def _logs_of_this_account(self) -> str:
        """arn:<partition>:logs:<region>:<account>:*, the SourceArn Step Functions' log delivery uses."""
        stack = Stack.of(self)
        return f"arn:{Aws.PARTITION}:logs:{stack.region}:{stack.account}:*"

    def _trails_named_like_ours(self) -> str:
        """The trail in any region: a multi-region trail's log files carry its home region's ARN."""
        stack = Stack.of(self)
        return f"arn:{Aws.PARTITION}:cloudtrail:*:{stack.account}:trail/{names.trail_name(self.config)}"


def log_groups_encrypted_with(key: kms.IKey) -> set[str]:
    """The names of the stack's log groups encrypted with `key`: each needs a fixed name to be named."""
    stack = Stack.of(key)
    arn = stack.resolve(key.key_arn)
    found = set()
    for construct in stack.node.find_all():
        if isinstance(construct, logs.CfnLogGroup) and stack.resolve(construct.kms_key_id) == arn:
            name = construct.log_group_name
            if not isinstance(name, str) or stack.resolve(name) != name:
                raise ValueError(f"{construct.node.path}: a log group under a key policy needs a fixed name")
            found.add(name)
    return found


@jsii.implements(IValidation)
class _EveryEncryptedLogGroupNamed:
    """At synthesis: the storage key's policy names every log group encrypted with the key (one added
    after write_policies would have a key CloudWatch Logs may not use)."""

    def __init__(self, keys: PaymentKeys) -> None:
        self.keys = keys

    def validate(self) -> list[str]:
        if not self.keys._written:
            return ["PaymentKeys.write_policies was never called: the keys have no policies"]
        stack = Stack.of(self.keys)
        document = stack.resolve(self.keys.policies["storage"])
        [statement] = [s for s in document["Statement"] if s.get("Sid") == "CloudWatchLogs"]
        named = {
            _text(arn) for arn in _as_list(statement["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"])
        }
        return [
            f"the storage key's policy does not name the log group {name}"
            for name in sorted(log_groups_encrypted_with(self.keys.storage_key))
            if _text(stack.resolve(names.log_group_arn(self.keys, name))) not in named
        ]


def _allow(
    sid: str, principals: Sequence[str], actions: Sequence[str], conditions: Mapping[str, object] | None = None
) -> iam.PolicyStatement:
    """An Allow for named principals ("*": this key, the only resource of a key policy)."""
    return iam.PolicyStatement(
        sid=sid,
        principals=[iam.ArnPrincipal(arn) for arn in principals],
        actions=list(actions),
        resources=["*"],
        conditions=dict(conditions) if conditions else None,
    )


def _service(sid: str, service: str, actions: Sequence[str], conditions: Mapping[str, object]) -> iam.PolicyStatement:
    return iam.PolicyStatement(
        sid=sid,
        principals=[iam.ServicePrincipal(service)],
        actions=list(actions),
        resources=["*"],
        conditions=dict(conditions),
    )


def _purpose(purpose: str) -> dict[str, dict[str, str]]:
    return {"StringEquals": {PURPOSE: purpose}}


def _role_arns(roles: Mapping[str, iam.IRole]) -> Callable[..., list[str]]:
    def arns(*steps: str) -> list[str]:
        return [roles[step].role_arn for step in steps]

    return arns


def _cfn_function(function: lambda_.Function) -> lambda_.CfnFunction:
    resource = function.node.default_child
    assert isinstance(resource, lambda_.CfnFunction)
    return resource


def _text(value: object) -> str:
    return json.dumps(value, sort_keys=True)


def _as_list(value: object) -> list[object]:
    return value if isinstance(value, list) else [value]
