"""One function and one role per step and for the intake, each role granting exactly what its function does.

- intake: the card-data key's GenerateDataKey with encryption context purpose=card-intake (it seals
  the card); PutItem on the CardVault; StartExecution on the state machine, DescribeExecution on its
  executions, and the storage key for the state machine's encryption context only (added by
  `start_payments_on`, once the state machine exists). Its request fingerprint is a plain SHA-256
  (payments.fingerprints): no key.
- tokenize: the card-data key's Decrypt (purpose=card-intake) and GenerateDataKey
  (purpose=secure-token); GetItem on the CardVault of the sealed card, the request fingerprint and
  the expiry only (never the CVV).
- ledger_initiated: DynamoDB PutItem on PaymentLedger.
- ledger_pending: the same, and GetItem on PaymentLedger (the entry before its own, to link to it:
  payments.chain).
- ledger_success, ledger_failed: the same, and DeleteItem on the CardVault (the payment has ended).
- call_processor: the card-data key's Decrypt (purpose=secure-token and card-intake); the audit
  key's GenerateDataKey (purpose=audit) and nothing else of it; GetItem on the CardVault of the
  sealed CVV and the expiry only, and UpdateItem of the CVV alone (it removes the CVV once the
  processor has answered); GetSecretValue on the Converge secret; PutItem and Query on the audit
  table*; Query on the ledger.
- normalize: nothing.
- audit: PutItem and Query on the audit table (a record links to the one before it: payments.chain).

The operations after a payment (capture, void, refund; payments.operations) have no card and no
card-data key, and never touch the CardVault:
- admit_operation, operation_pending, operation_success: Query on PaymentLedger (the payment's
  history: the operation is judged against it, and each entry goes at the next free number),
  GetItem of entry n-1's link only, and PutItem.
- operation_failed: the same, and Query on the audit table of the operation's attempt claims only
  (their AuditID and CreatedAt: a failure after one may have moved money), in an operation's trail
  only (`<TransactionID>/<OperationID>`: dynamodb:LeadingKeys).
- call_operation_processor: Query on PaymentLedger (is the operation pending, for this request?);
  the audit key's GenerateDataKey (purpose=audit); GetSecretValue on the Converge secret; PutItem
  and Query on the audit table*, in an operation's trail only.

Status sync (every five minutes: payments and operations left unknown or stuck pending, resolved
against Converge; payments.status_resolution):
- find_unresolved: Query on the ledger's EntriesByStatus index only (its projected attributes: no
  SecureToken, nothing of a card), never the table's items; and one run at a time: ListExecutions on
  the status sync state machine (no execution data, so no key).
- resolve_unresolved: what CallOperationProcessor holds, on any trail (a payment's reversal is audited
  in the payment's own trail): Query on PaymentLedger (the payment's whole history), GetItem of entry
  n-1's link only, and PutItem (the resolution is a new entry); the audit key's GenerateDataKey
  (purpose=audit); GetSecretValue on the Converge secret; PutItem and Query on the audit table*.
  And DescribeExecution on the executions of the payment and operation state machines (is the
  execution that wrote the last entry still running?), asked for their metadata only, so no key: it
  never reads an execution's data (`describe_payment_and_operation_executions`, once the state
  machines exist).

Reconciliation (once a day: the processor's listing of a day against the ledger; payments.reconciliation_run):
- plan_reconciliation: nothing.
- list_processor_window: GetSecretValue on the Converge secret; PutObject of the window listings
  (reconciliation/<date>/runs/<run>/windows/) in the report bucket and the storage key through S3 for
  that bucket only. Nothing of the tables.
- match_ledger: Query on the EntriesByStatus index (the day's approvals) and on PaymentLedger (the
  whole history of a finding's payment), GetItem of entry n-1's link and PutItem (a PAYMENT-SETTLED
  fact); GetObject of the window listings, PutObject of the reports (reconciliation/<date>/report.json
  and the run's), ListBucket (so that a listing never stored reads as missing, not as refused), and
  the storage key through S3 for the report bucket only.

LedgerEvents, the ledger's terminal entries onto the payments bus (infra.events), is no step of any
state machine: its event source mapping invokes it with batches of the ledger's stream.
- ledger_events: read the ledger's stream (DescribeStream, GetRecords, GetShardIterator on its stream
  ARN; ListStreams, which takes no resource) and the storage key's Decrypt under the ledger's table
  name (the stream is encrypted with the table's key); PutEvents on the payments bus alone, of its
  own source and detail types only; GetItem, PutItem, UpdateItem, DeleteItem on its idempotency
  table; SendMessage on its failure queue, and the storage key through SQS for that queue only (Lambda
  writes a batch given up on with this role). Nothing of the ledger's items (no GetItem, Query,
  PutItem: the stream brings each entry), of the vault, or of the card-data and audit keys.

Each table a role uses comes with what DynamoDB needs of the storage key (only through DynamoDB,
only for that table). Every role also writes its own log group, and X-Ray traces (added by CDK
for active tracing). No role may update or delete a ledger or audit item (the tables' own resource
policies deny it to everyone: infra.tables), and none may decrypt an audit payload: only the
AuditReader (infra.access) may. Only Tokenize and CallProcessor may decrypt what the intake sealed.
The key policies (infra.keys) name each role again, for the same uses. (The state machine's own
role, in infra.workflow, also deletes a vault item: when Tokenize fails for good.)
* CallProcessor, CallOperationProcessor and ResolveUnresolved write each call's audit record as the call
  completes, and claim each attempt before sending it (see payments.exactly_once, payments.sale_attempts).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aws_cdk import Annotations, Aws, Duration, RemovalPolicy, aws_ssm
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import REPO_ROOT, names
from infra.access import executions_of, workflow_statements
from infra.archive import STREAM_LIST_ACTIONS, STREAM_READ_ACTIONS
from infra.concurrency import RESERVED_CONCURRENCY
from infra.config import EnvironmentConfig
from infra.keys import TABLE_KEY_ACTIONS
from infra.log_groups import protected_log_group
from infra.network import FunctionNetwork, network_interface_statements
from infra.packaging import package_function
from infra.scanners import REDUNDANT_ROLE_DEPENDENCY, ignore_cfn_lint, skip_checkov
from infra.tables import IDEMPOTENCY_ACTIONS
from payments import chain, topology
from payments import events as payment_events
from payments.crypto import PURPOSE_AUDIT, PURPOSE_CARD_INTAKE, PURPOSE_SECURE_TOKEN
from payments.processors.converge.client import DEFAULT_LISTING_LIMIT
from payments.vault import CARD as VAULT_CARD
from payments.vault import CVV as VAULT_CVV
from payments.vault import EXPIRES_AT as VAULT_EXPIRES_AT
from payments.vault import FINGERPRINT as VAULT_FINGERPRINT

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
# SnapStart (EnvironmentConfig.snap_start: staging and prod) on the step functions, the ones the state machines
# invoke (topology.FUNCTIONS). Lambda initializes a function when a version of it is published, snapshots the
# initialized environment and resumes new environments from the snapshot: the handlers' imports (and the warm-ups
# of payments.snapshot) are paid once per deployment, not at each cold start. It applies to published versions
# only, never to $LATEST: each deployment publishes a version of each step (current_version, the old one deleted)
# and moves the alias LIVE_ALIAS to it; the state machines invoke the alias (infra.workflow). Per the AWS Lambda
# Developer Guide ("Improving startup performance with Lambda SnapStart", supported features and limitations),
# SnapStart runs on the Python 3.12 and later managed runtimes, and is not supported with provisioned concurrency,
# Amazon EFS or ephemeral storage above 512 MB, none of which these functions use; arm64, which the page once
# listed among the limitations (with X-Ray), is not among them any more: AWS added arm64 in July 2024 (What's
# New, cited by aws-cdk pull request 30898, which removed CDK's own arm64 check), and CDK 2.275 marks
# Runtime.PYTHON_3_12 supports_snap_start. So the functions stay on ARM_64 and python3.12. Snapshots are
# encrypted with the function's KMS key (KmsKeyArn: the storage key, as for the environment). The intake
# (upstream services invoke it by name) and LedgerEvents (its event source mapping) keep running $LATEST.
LIVE_ALIAS = "live"
SNAP_START_STEPS = frozenset(spec.step for spec in topology.FUNCTIONS)

# CallProcessor and CallOperationProcessor may wait for an earlier request to land, then ask and send:
# topology's time budget (their states' TimeoutSeconds in the ASL is the budget's state timeout).
_BUDGET = topology.PROCESSOR_TIME_BUDGET
TIMEOUTS = {
    spec.step: Duration.seconds(_BUDGET.lambda_timeout_seconds)
    for spec in topology.ALL_FUNCTIONS
    if spec.uses_processor
}
# LedgerEvents: a batch of up to 100 entries, each a few DynamoDB calls and a PutEvents (with the SDK's
# retries when EventBridge throttles); every other function handles one request.
EVENTS = topology.EVENTS_FUNCTION.step
TIMEOUTS[EVENTS] = Duration.seconds(60)


def task_timeout_seconds(workflow: topology.WorkflowSpec, step: str) -> int:
    """The TimeoutSeconds of the Task state that invokes `step` in the workflow's ASL (in a Map's too)."""
    placeholder = "${" + topology.function_by_step(step).placeholder + "}"

    def found(states: dict[str, Any]) -> int | None:
        for state in states.values():
            parameters = state.get("Parameters")
            if isinstance(parameters, dict) and parameters.get("FunctionName") == placeholder:
                return int(state["TimeoutSeconds"])
            inner = state.get("ItemProcessor", {}).get("States")
            if inner and (timeout := found(inner)) is not None:
                return timeout
        return None

    timeout = found(json.loads((REPO_ROOT / workflow.asl_path).read_text())["States"])
    if timeout is None:
        raise ValueError(f"{workflow.asl_path} has no Task state invoking {step}")
    return timeout


# MatchLedger reads a whole day's listings and approvals: as long as its state allows, less Lambda's init
# (the state must outlive the function, or Step Functions retries an attempt still at work).
MATCH_LEDGER = "MatchLedger"
TIMEOUTS[MATCH_LEDGER] = Duration.seconds(
    task_timeout_seconds(topology.RECONCILIATION_WORKFLOW, MATCH_LEDGER) - _BUDGET.lambda_init_seconds
)

# The CardVault item's key; its other attributes and the encryption-context purposes come from the
# modules that write them (payments.vault, payments.crypto): IAM grants exactly what the code uses.
VAULT_KEY = topology.CARD_VAULT_TABLE.partition_key.name
# What the hash chains read of the entry or record before the one being written (payments.chain).
LEDGER_LINK_ATTRIBUTES = (*(k.name for k in topology.LEDGER_TABLE.keys), chain.ENTRY_HASH)
AUDIT_LINK_ATTRIBUTES = (*(k.name for k in topology.AUDIT_TABLE.keys), chain.CHAIN_SEQ, chain.ENTRY_HASH)
SALE_ATTEMPT_CLAIMED_AT = "CreatedAt"  # the claim's time (payments.sale_attempts.AuditedSaleAttempts.on_record)
# An operation's own audit trail is the partition `<TransactionID>/<OperationID>`
# (payments.operation_state.OperationFacts.audit_partition); a payment's TransactionID never holds a "/"
# (payments.models). The operation steps' audit access is held to those partitions (dynamodb:LeadingKeys).
OPERATION_TRAILS = "*/*"
INTAKE = topology.INTAKE_FUNCTION.step
RESOLVER = "ResolveUnresolved"  # status sync's step that calls Converge and writes the ledger
SYNC_FINDER = "FindUnresolved"  # status sync's first step: reads the ledger's index, checks for an earlier run
# Reconciliation's objects in the report bucket (payments.reconciliation_run): each run's window listings,
# and the day's report (reconciliation/<date>/report.json, and a copy in the run's own prefix,
# reconciliation/<date>/runs/<run>/report.json: "*" in an IAM resource spans "/", so one pattern names both).
RECONCILIATION = topology.RECONCILIATION_PREFIX
WINDOW_LISTINGS = f"{RECONCILIATION}/*/runs/*/windows/*"
REPORTS = f"{RECONCILIATION}/*/report.json"
# The steps that read the ledger's EntriesByStatus index (status sync, reconciliation), and nothing else does.
INDEX_READERS = frozenset({"FindUnresolved", "MatchLedger"})


@dataclass(frozen=True)
class Dependencies:
    config: EnvironmentConfig
    card_data_key: kms.IKey  # PAYMENT_KMS_KEY_ARN: the vaulted card, SecureTokens
    audit_key: kms.IKey  # AUDIT_KMS_KEY_ARN: audit payloads
    storage_key: kms.IKey  # tables, log groups, the Converge secret, the state machine
    ledger: dynamodb.TableV2
    audit: dynamodb.TableV2
    converge_secret: secretsmanager.ISecret
    vault: dynamodb.TableV2
    bus: events.IEventBus  # EVENT_BUS_NAME: the payments bus (infra.events)
    idempotency: dynamodb.TableV2  # IDEMPOTENCY_TABLE_NAME: the events published
    event_failures: sqs.IQueue  # the on-failure destination of LedgerEvents' event source mapping
    report_bucket: s3.IBucket  # REPORT_BUCKET_NAME: reconciliation's listings and reports (infra.reports)

    @property
    def key(self) -> kms.IKey:
        """The storage key: what the functions' log groups (and environments) are encrypted with."""
        return self.storage_key


class WorkflowSteps(Construct):
    """The intake and the step Lambdas of every state machine (payments.topology.FUNCTIONS), keyed by step name."""

    def __init__(
        self, scope: Construct, construct_id: str, *, deps: Dependencies, network: FunctionNetwork | None = None
    ) -> None:
        """`network`: the VPC the functions run in (staging, prod); None runs them outside any VPC (dev)."""
        super().__init__(scope, construct_id)
        self.deps = deps
        self.network = network
        layer = lambda_.LayerVersion.from_layer_version_arn(
            self,
            "PowertoolsLayer",
            aws_ssm.StringParameter.value_for_string_parameter(self, POWERTOOLS_LAYER_PARAMETER),
        )
        self.functions: dict[str, lambda_.Function] = {}
        self.roles: dict[str, iam.Role] = {}
        # With SnapStart, each step's alias on its version of this deployment (what the state machines invoke).
        self.aliases: dict[str, lambda_.Alias] = {}
        self._code: dict[str, lambda_.Code] = {}  # functions that share a package share its asset
        for spec in topology.ALL_FUNCTIONS:
            self.functions[spec.step] = self._function(spec, layer)
            if self.snap_start(spec.step):
                Annotations.of(self.functions[spec.step]).acknowledge_warning(
                    "@aws-cdk/aws-lambda:snapStartRequirePublish", "every deployment publishes its version: the alias"
                )
                self.aliases[spec.step] = lambda_.Alias(
                    self,
                    f"{spec.step}Live",
                    alias_name=LIVE_ALIAS,
                    version=self.functions[spec.step].current_version,
                    description="The version of this deployment (SnapStart); what the state machines invoke",
                )

    def snap_start(self, step: str) -> bool:
        """Whether `step`'s function runs with SnapStart: a step function, in an environment that turns it on."""
        return self.deps.config.snap_start and step in SNAP_START_STEPS

    @property
    def intake(self) -> lambda_.Function:
        return self.functions[INTAKE]

    @property
    def step_functions(self) -> dict[str, lambda_.Function]:
        """The functions the state machines invoke (each its own: topology.WORKFLOWS): not the intake, not
        LedgerEvents."""
        return {spec.step: self.functions[spec.step] for spec in topology.FUNCTIONS}

    @property
    def step_targets(self) -> dict[str, lambda_.IFunction]:
        """What the state machines invoke, by step: the alias where the step runs with SnapStart (a published
        version; SnapStart does nothing for $LATEST), else the function itself (unqualified: $LATEST)."""
        return {step: self.aliases.get(step, function) for step, function in self.step_functions.items()}

    @property
    def ledger_events(self) -> lambda_.Function:
        return self.functions[EVENTS]

    def start_payments_on(self, state_machine: sfn.StateMachine) -> None:
        """Give the intake the state machine: its ARN, StartExecution on it, DescribeExecution on its executions.

        The state machine names the step functions, so it is built after them; the intake's half is
        added here, once it exists. The intake then depends on the state machine and nothing depends
        on the intake: no cycle in CloudFormation's graph.
        """
        self.intake.add_environment(topology.STATE_MACHINE_ARN, state_machine.state_machine_arn)
        for statement in workflow_statements(self, state_machine, self.deps.storage_key):
            self.roles[INTAKE].add_to_policy(statement)

    def describe_payment_and_operation_executions(self, state_machines: list[sfn.StateMachine]) -> None:
        """ResolveUnresolved asks whether the execution that wrote a pending entry still runs: DescribeExecution
        on the executions of `state_machines` (the payment and the operation state machine) and nothing else.
        It asks for metadata only (includedData METADATA_ONLY): no key, so an execution's input and output
        stay out of its reach. Added once those state machines exist."""
        self.roles[RESOLVER].add_to_policy(
            iam.PolicyStatement(
                sid="ExecutionStatusRead",
                actions=["states:DescribeExecution"],
                resources=[executions_of(self, machine) for machine in state_machines],
            )
        )

    def _function(self, spec: topology.FunctionSpec, layer: lambda_.ILayerVersion) -> lambda_.Function:
        config = self.deps.config
        name = f"{spec.function_name}-{config.name}"
        log_group = protected_log_group(
            self, f"{spec.step}Logs", name=f"/aws/lambda/{name}", config=config, key=self.deps.key
        )
        role = iam.Role(
            self,
            f"{spec.step}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=_role_description(spec.step, config),
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
        placement = self.network.placement(spec.step) if self.network else None
        if placement:
            for statement in network_interface_statements():
                role.add_to_policy(statement)
        self.roles[spec.step] = role
        function = lambda_.Function(
            self,
            spec.step,
            function_name=name,
            description=_function_description(spec.step),
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
            # The variables name keys, tables, a URL and a secret's ARN, no secret; still, a key of our own.
            environment_encryption=self.deps.storage_key,
            reserved_concurrent_executions=RESERVED_CONCURRENCY[spec.step],
            snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if self.snap_start(spec.step) else None,
            # A version superseded by the next deployment's is deleted once the alias has moved: with SnapStart
            # each version keeps a cached snapshot, billed for as long as the version exists.
            current_version_options=lambda_.VersionOptions(removal_policy=RemovalPolicy.DESTROY),
            vpc=self.network.vpc if self.network else None,
            vpc_subnets=placement.subnets if placement else None,
            security_groups=[placement.security_group] if placement else None,
        )
        _scanner_exceptions(function, placement is not None, spec.step)
        return function

    def _status_sync_runs(self) -> list[iam.PolicyStatement]:
        """FindUnresolved lets one status sync run at a time work: it lists the state machine's running
        executions (an earlier one still at work?). Named by the ARN the state machine's fixed name makes:
        the state machine refers to this function, so the function's policy cannot refer to it.
        ListExecutions returns no execution data: no key."""
        machine = names.state_machine_arn(self, self.deps.config, topology.STATUS_SYNC_WORKFLOW)
        return [iam.PolicyStatement(sid="StatusSyncRunsList", actions=["states:ListExecutions"], resources=[machine])]

    def _package(self, code_dir: str) -> lambda_.Code:
        if code_dir not in self._code:
            self._code[code_dir] = lambda_.Code.from_asset(str(package_function(code_dir)))
        return self._code[code_dir]

    def _environment(self, spec: topology.FunctionSpec) -> dict[str, str]:
        deps = self.deps
        values = {
            topology.PAYMENT_KMS_KEY_ARN: deps.card_data_key.key_arn,
            topology.AUDIT_KMS_KEY_ARN: deps.audit_key.key_arn,
            topology.DYNAMODB_TABLE_NAME: deps.ledger.table_name,
            topology.DYNAMODB_AUDIT_TABLE_NAME: deps.audit.table_name,
            topology.CONVERGE_URL: deps.config.converge_url,
            topology.CONVERGE_CONNECT_TIMEOUT_SECONDS: f"{_BUDGET.connect_seconds:g}",
            topology.CONVERGE_READ_TIMEOUT_SECONDS: f"{_BUDGET.read_seconds:g}",
            topology.CONVERGE_SECRET_ARN: deps.converge_secret.secret_arn,
            topology.POWERTOOLS_SERVICE_NAME: topology.SERVICE_NAME,
            topology.POWERTOOLS_METRICS_NAMESPACE: topology.METRICS_NAMESPACE,
            topology.CARD_VAULT_TABLE_NAME: deps.vault.table_name,
            topology.EVENT_BUS_NAME: deps.bus.event_bus_name,
            topology.IDEMPOTENCY_TABLE_NAME: deps.idempotency.table_name,
            topology.REPORT_BUCKET_NAME: deps.report_bucket.bucket_name,
            # The Converge client's page size for a listing (payments.processors.converge.client): its default.
            topology.CONVERGE_LISTING_LIMIT: str(DEFAULT_LISTING_LIMIT),
        }
        # STATE_MACHINE_ARN (the intake's) is set by start_payments_on, once the state machine exists.
        return {name: values[name] for name in spec.environment("aws") if name != topology.STATE_MACHINE_ARN}

    def _statements(self, spec: topology.FunctionSpec) -> list[iam.PolicyStatement]:
        deps = self.deps
        card, storage, vault = deps.card_data_key, deps.storage_key, deps.vault
        if spec.step == INTAKE:
            return [
                _kms("CardSealing", card, "kms:GenerateDataKey", PURPOSE_CARD_INTAKE),
                iam.PolicyStatement(sid="VaultDeposit", actions=["dynamodb:PutItem"], resources=[vault.table_arn]),
                table_key("Vault", vault, storage),
            ]
        if spec.step == "Tokenize":
            return [
                _kms("VaultDecryption", card, "kms:Decrypt", PURPOSE_CARD_INTAKE),
                _kms("TokenEncryption", card, "kms:GenerateDataKey", PURPOSE_SECURE_TOKEN),
                # The card, and the fingerprint of the request it was vaulted for (a retry must match it).
                _vault_read("VaultCardRead", vault, VAULT_CARD, VAULT_FINGERPRINT),
                table_key("Vault", vault, storage),
            ]
        if spec.step in ("LedgerSuccess", "LedgerFailed"):
            return [
                *_put_item("Ledger", deps.ledger, storage),
                _ledger_link_read(deps.ledger),
                # The payment has ended: nothing of its card may stay in the vault.
                iam.PolicyStatement(sid="VaultRemoval", actions=["dynamodb:DeleteItem"], resources=[vault.table_arn]),
                table_key("Vault", vault, storage),
            ]
        if spec.step == "LedgerPending":
            return [*_put_item("Ledger", deps.ledger, storage), _ledger_link_read(deps.ledger)]
        if spec.step == "LedgerInitiated":
            return _put_item("Ledger", deps.ledger, storage)  # entry 1 links to GENESIS: nothing to read
        if spec.step == "CallProcessor":
            return [
                _kms("TokenDecryption", card, "kms:Decrypt", PURPOSE_SECURE_TOKEN),
                _kms("VaultDecryption", card, "kms:Decrypt", PURPOSE_CARD_INTAKE),
                # Seals audit payloads with the audit key and can never open one (no Decrypt of that key).
                _kms("AuditEncryption", deps.audit_key, "kms:GenerateDataKey", PURPOSE_AUDIT),
                *_converge_credentials(deps),
                *_put_item("Audit", deps.audit, storage),
                # ...and when each sale attempt was claimed (payments.sale_attempts: its CreatedAt).
                _audit_trail_read(deps.audit, SALE_ATTEMPT_CLAIMED_AT),
                _vault_read("VaultCvvRead", vault, VAULT_CVV),  # its card is in the SecureToken
                # Once the processor has answered, the CVV goes (UpdateItem REMOVE EncryptedCvv,
                # ReturnValues NONE). IAM can name the attributes a request touches, not what it does to
                # them: this may write the CVV attribute and no other (key aside), and return nothing of the
                # item. (It cannot tell REMOVE from SET, nor stop an UpdateItem from creating an item holding
                # only a CVV.) ReturnValues: StringEquals, as the DynamoDB Developer Guide writes it for a
                # statement allowing UpdateItem alone (its ReturnValues always has a value, NONE by default);
                # the guide uses StringEqualsIfExists only where the statement also allows reads.
                iam.PolicyStatement(
                    sid="VaultCvvRemoval",
                    actions=["dynamodb:UpdateItem"],
                    resources=[vault.table_arn],
                    conditions={
                        "ForAllValues:StringEquals": {"dynamodb:Attributes": [VAULT_KEY, VAULT_CVV]},
                        "StringEquals": {"dynamodb:ReturnValues": "NONE"},
                    },
                ),
                table_key("Vault", vault, storage),
                # Before any processor call: is this payment pending in the ledger, for this request?
                iam.PolicyStatement(sid="LedgerRead", actions=["dynamodb:Query"], resources=[deps.ledger.table_arn]),
                table_key("Ledger", deps.ledger, storage),
            ]
        if spec.step == "Audit":
            return [*_put_item("Audit", deps.audit, storage), _audit_trail_read(deps.audit)]
        if spec.step in ("AdmitOperation", "OperationPending", "OperationSuccess"):
            return _operation_ledger(deps.ledger, storage)
        if spec.step == "OperationFailed":
            return [
                *_operation_ledger(deps.ledger, storage),
                # Was an attempt of this operation claimed (payments.sale_attempts)? Then it may have been sent.
                _projected_read(
                    "OperationAttemptsRead",
                    "dynamodb:Query",
                    deps.audit,
                    (*(k.name for k in topology.AUDIT_TABLE.keys), SALE_ATTEMPT_CLAIMED_AT),
                    operation_trails_only=True,
                ),
                table_key("Audit", deps.audit, storage),
            ]
        if spec.step == "CallOperationProcessor":
            return [
                # Seals audit payloads with the audit key and can never open one; no card-data key at all.
                _kms("AuditEncryption", deps.audit_key, "kms:GenerateDataKey", PURPOSE_AUDIT),
                *_converge_credentials(deps),
                # Each call's record and each attempt's claim, in the operation's own trail only.
                iam.PolicyStatement(
                    sid="AuditAppend",
                    actions=["dynamodb:PutItem"],
                    resources=[deps.audit.table_arn],
                    conditions=_OPERATION_TRAILS_ONLY,
                ),
                table_key("Audit", deps.audit, storage),
                _audit_trail_read(deps.audit, SALE_ATTEMPT_CLAIMED_AT, operation_trails_only=True),
                # Before any processor call: is this operation pending in the ledger, for this request?
                iam.PolicyStatement(sid="LedgerRead", actions=["dynamodb:Query"], resources=[deps.ledger.table_arn]),
                table_key("Ledger", deps.ledger, storage),
            ]
        if spec.step == SYNC_FINDER:
            return [
                _index_read(deps.ledger),
                table_key("Ledger", deps.ledger, storage),
                *self._status_sync_runs(),
            ]
        if spec.step == RESOLVER:
            return [
                # Seals audit payloads with the audit key and can never open one; no card-data key at all.
                _kms("AuditEncryption", deps.audit_key, "kms:GenerateDataKey", PURPOSE_AUDIT),
                *_converge_credentials(deps),
                # Each call's record and each attempt's claim: in an operation's trail, or (a reversal, or the
                # lookup of a payment) in the payment's own.
                *_put_item("Audit", deps.audit, storage),
                _audit_trail_read(deps.audit, SALE_ATTEMPT_CLAIMED_AT),
                # The payment's whole history, entry n-1's link, the resolution appended.
                *_operation_ledger(deps.ledger, storage),
            ]
        if spec.step == "ListProcessorWindow":
            return [
                *_converge_credentials(deps),
                _report_objects("WindowListingWrite", ["s3:PutObject"], deps.report_bucket, WINDOW_LISTINGS),
                _report_key(deps.report_bucket, storage),
            ]
        if spec.step == MATCH_LEDGER:
            return [
                _index_read(deps.ledger),
                # A finding's payment is read again whole, and a PAYMENT-SETTLED fact appended after its last entry.
                *_operation_ledger(deps.ledger, storage),
                _report_objects("WindowListingRead", ["s3:GetObject"], deps.report_bucket, WINDOW_LISTINGS),
                _report_objects("ReportWrite", ["s3:PutObject"], deps.report_bucket, REPORTS),
                # A window whose listing was never stored must read as missing (404), not as refused (403):
                # S3 answers 404 only to a caller that may list the bucket. Key names only (dates and run ids).
                iam.PolicyStatement(
                    sid="ReportBucketList", actions=["s3:ListBucket"], resources=[deps.report_bucket.bucket_arn]
                ),
                _report_key(deps.report_bucket, storage),
            ]
        if spec.step == EVENTS:
            return _ledger_events(deps)
        return []  # Normalize, PlanReconciliation: pure computation


def _ledger_events(deps: Dependencies) -> list[iam.PolicyStatement]:
    """LedgerEvents: the ledger's stream in, the payments bus out, its idempotency records, its failure queue."""
    ledger, storage, failures = deps.ledger, deps.storage_key, deps.event_failures
    stream = ledger.table_stream_arn
    assert stream is not None, "the ledger needs a stream: LedgerEvents reads it"
    return [
        # What Lambda's poller does with this role (Lambda Developer Guide, "Process DynamoDB records with
        # Lambda", execution role permissions): the stream, never the table's items.
        iam.PolicyStatement(sid="LedgerStreamRead", actions=list(STREAM_READ_ACTIONS), resources=[stream]),
        iam.PolicyStatement(sid="LedgerStreamList", actions=sorted(STREAM_LIST_ACTIONS), resources=["*"]),
        # The stream is encrypted with the table's key, under the table's name (as the archive's pipe reads it).
        iam.PolicyStatement(
            sid="LedgerStreamKey",
            actions=["kms:Decrypt"],
            resources=[storage.key_arn],
            conditions={"StringEquals": {"kms:EncryptionContext:aws:dynamodb:tableName": ledger.table_name}},
        ),
        # The payments bus only, and only the events payments.events makes: its source, its detail types.
        iam.PolicyStatement(
            sid="EventPublishing",
            actions=["events:PutEvents"],
            resources=[deps.bus.event_bus_arn],
            conditions={
                "ForAllValues:StringEquals": {
                    "events:source": [payment_events.EVENT_SOURCE],
                    "events:detail-type": list(payment_events.EVENT_TYPES),
                }
            },
        ),
        # Powertools idempotency (payments.event_publishing): one record per EventID.
        iam.PolicyStatement(
            sid="IdempotencyRecords", actions=list(IDEMPOTENCY_ACTIONS), resources=[deps.idempotency.table_arn]
        ),
        table_key("Idempotency", deps.idempotency, storage),
        # A batch given up on: Lambda describes it on the failure queue with this role (SSE-KMS: SQS asks
        # the key for a data key, and decrypts it, on the sender's behalf).
        iam.PolicyStatement(sid="FailureDelivery", actions=["sqs:SendMessage"], resources=[failures.queue_arn]),
        iam.PolicyStatement(
            sid="FailureDeliveryKey",
            actions=["kms:GenerateDataKey", "kms:Decrypt"],
            resources=[storage.key_arn],
            conditions={
                "StringEquals": {
                    "kms:ViaService": f"sqs.{Aws.REGION}.amazonaws.com",
                    "kms:EncryptionContext:aws:sqs:arn": failures.queue_arn,
                }
            },
        ),
    ]


def _role_description(step: str, config: EnvironmentConfig) -> str:
    if step == EVENTS:
        return f"{step} function ({config.name}): the ledger's stream onto the payments bus, least privilege"
    kind = "function" if step == INTAKE else "step"
    return f"{step} {kind} of the {_workflow_of(step)} ({config.name}): least privilege"


def _function_description(step: str) -> str:
    if step == EVENTS:
        return "Payment events: each terminal ledger entry onto the payments bus"
    return f"Payment workflow {'intake' if step == INTAKE else 'step ' + step}"


def _scanner_exceptions(function: lambda_.Function, in_vpc: bool, step: str) -> None:
    skip_checkov(
        function,
        "CKV_AWS_116",
        (
            "Invoked synchronously only, by its event source mapping (the ledger's stream): a function dead-letter "
            "queue receives failed asynchronous invocations, of which there are none. A batch that fails every "
            "retry goes to the mapping's on-failure destination instead: an SQS queue encrypted with the storage "
            "key, whose depth pages (infra.events, infra.monitoring)."
        )
        if step == EVENTS
        else (
            "Invoked synchronously only (Step Functions Task states; upstream services invoke the intake with "
            "RequestResponse): a dead-letter queue receives failed asynchronous invocations, of which there are "
            "none. Failures return to the caller, where the state machine's Retry/Catch or the upstream client "
            "handles them."
        ),
    )
    ignore_cfn_lint(function, "W3005", REDUNDANT_ROLE_DEPENDENCY)
    if not in_vpc:
        skip_checkov(
            function,
            "CKV_AWS_117",
            'This environment runs its functions outside a VPC (cdk.json function_network "none": dev, no card '
            "data, the Converge demo host); staging and prod run every function in the VPC of infra.network.",
        )


_WORKFLOW_WORDS = {
    topology.PAYMENT_WORKFLOW.name: "payment",
    topology.OPERATION_WORKFLOW.name: "operation",
    topology.STATUS_SYNC_WORKFLOW.name: "status sync",
    topology.RECONCILIATION_WORKFLOW.name: "reconciliation",
}


def _workflow_of(step: str) -> str:
    """Which workflows a function belongs to, for its role's description (the intake: the payments')."""
    words = [_WORKFLOW_WORDS[w.name] for w in topology.WORKFLOWS if step in w.steps] or ["payment"]
    if len(words) == 1:
        return f"{words[0]} workflow"
    return f"{', '.join(words[:-1])} and {words[-1]} workflows"


def _converge_credentials(deps: Dependencies) -> list[iam.PolicyStatement]:
    """The Converge secret (Powertools parameters: GetSecretValue), and its key through Secrets Manager only."""
    return [
        iam.PolicyStatement(
            sid="ConvergeCredentials",
            actions=["secretsmanager:GetSecretValue"],
            resources=[deps.converge_secret.secret_arn],
        ),
        iam.PolicyStatement(
            sid="ConvergeCredentialsKey",
            actions=["kms:Decrypt"],
            resources=[deps.storage_key.key_arn],
            conditions={
                "StringEquals": {"kms:ViaService": f"secretsmanager.{Aws.REGION}.amazonaws.com"},
                "StringLike": {"kms:EncryptionContext:SecretARN": deps.converge_secret.secret_arn},
            },
        ),
    ]


# The partitions of the audit trail an operation step may touch: an operation's own trail, never a payment's.
_OPERATION_TRAILS_ONLY = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [OPERATION_TRAILS]}}


def _operation_ledger(ledger: dynamodb.TableV2, key: kms.IKey) -> list[iam.PolicyStatement]:
    """An operation's ledger step: the payment's whole history (Query), entry n-1's link, the append."""
    return [
        iam.PolicyStatement(sid="LedgerRead", actions=["dynamodb:Query"], resources=[ledger.table_arn]),
        _ledger_link_read(ledger),
        *_put_item("Ledger", ledger, key),
    ]


def _index_read(ledger: dynamodb.TableV2) -> iam.PolicyStatement:
    """Query on the ledger's EntriesByStatus index alone (its ARN, not the table's): the entries of one
    Status, with the index's projected attributes only (topology.ENTRIES_BY_STATUS: no SecureToken)."""
    return iam.PolicyStatement(
        sid="LedgerIndexRead",
        actions=["dynamodb:Query"],
        resources=[f"{ledger.table_arn}/index/{topology.ENTRIES_BY_STATUS.name}"],
    )


def _report_objects(sid: str, actions: list[str], bucket: s3.IBucket, *patterns: str) -> iam.PolicyStatement:
    return iam.PolicyStatement(sid=sid, actions=actions, resources=[bucket.arn_for_objects(p) for p in patterns])


def _report_key(bucket: s3.IBucket, key: kms.IKey) -> iam.PolicyStatement:
    """The storage key through S3, for the report bucket only (SSE-KMS with a bucket key: S3 asks for a data key
    under the bucket's ARN as encryption context, and decrypts it to read or to reuse it)."""
    return iam.PolicyStatement(
        sid="ReportBucketKey",
        actions=["kms:GenerateDataKey", "kms:Decrypt"],
        resources=[key.key_arn],
        conditions={
            "StringEquals": {"kms:ViaService": f"s3.{Aws.REGION}.amazonaws.com"},
            "StringLike": {"kms:EncryptionContext:aws:s3:arn": [bucket.bucket_arn, bucket.arn_for_objects("*")]},
        },
    )


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
        table_key(prefix, table, key),
    ]


def _ledger_link_read(ledger: dynamodb.TableV2) -> iam.PolicyStatement:
    """Entry n links to entry n-1: the writer reads that entry's EntryHash first (payments.chain), and
    nothing else of it. A read only: the table's resource policy still denies every change (infra.tables)."""
    return _projected_read("LedgerLinkRead", "dynamodb:GetItem", ledger, LEDGER_LINK_ATTRIBUTES)


def _audit_trail_read(
    audit: dynamodb.TableV2, *attributes: str, operation_trails_only: bool = False
) -> iam.PolicyStatement:
    """A record links to its payment's last one (payments.chain): a Query of one payment's records, of
    their place in the chain and hash only, and `attributes`."""
    return _projected_read(
        "AuditTrailRead",
        "dynamodb:Query",
        audit,
        (*AUDIT_LINK_ATTRIBUTES, *attributes),
        operation_trails_only=operation_trails_only,
    )


def _projected_read(
    sid: str,
    action: str,
    table: dynamodb.TableV2,
    attributes: tuple[str, ...],
    *,
    operation_trails_only: bool = False,
) -> iam.PolicyStatement:
    """`action` on `table` of `attributes` only (the key included, as DynamoDB requires), as _vault_read;
    `operation_trails_only`: and of the partitions of operations' audit trails only (OPERATION_TRAILS)."""
    conditions: dict[str, object] = {
        "ForAllValues:StringEquals": {"dynamodb:Attributes": list(attributes)},
        "StringEqualsIfExists": {"dynamodb:Select": "SPECIFIC_ATTRIBUTES"},
    }
    if operation_trails_only:
        conditions.update(_OPERATION_TRAILS_ONLY)
    return iam.PolicyStatement(sid=sid, actions=[action], resources=[table.table_arn], conditions=conditions)


def _vault_read(sid: str, vault: dynamodb.TableV2, *attributes: str) -> iam.PolicyStatement:
    """GetItem of these attributes of a vault item and its expiry (payments.vault projects ExpiresAt on
    every read). A read without a projection, or naming any other attribute, is denied. The key is
    listed because DynamoDB requires a policy that uses dynamodb:Attributes to name the key attributes."""
    return iam.PolicyStatement(
        sid=sid,
        actions=["dynamodb:GetItem"],
        resources=[vault.table_arn],
        conditions={
            "ForAllValues:StringEquals": {"dynamodb:Attributes": [VAULT_KEY, *attributes, VAULT_EXPIRES_AT]},
            "StringEqualsIfExists": {"dynamodb:Select": "SPECIFIC_ATTRIBUTES"},
        },
    )


def table_key(prefix: str, table: dynamodb.ITable, key: kms.IKey) -> iam.PolicyStatement:
    """What DynamoDB itself needs of the table key, and only when DynamoDB asks on our behalf.

    Sid `<prefix>TableKey`; the function roles' and the state machine's (infra.workflow)."""
    return iam.PolicyStatement(
        sid=f"{prefix}TableKey",
        actions=list(TABLE_KEY_ACTIONS),
        resources=[key.key_arn],
        conditions={
            "StringEquals": {
                "kms:ViaService": f"dynamodb.{Aws.REGION}.amazonaws.com",
                "kms:EncryptionContext:aws:dynamodb:tableName": table.table_name,
            }
        },
    )
