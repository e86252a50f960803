"""Names shared by the CDK app and the local stack: tables, functions, environment variables.

Both `infra/` and `local/` read this module, so the deployed stack and the laptop stack
cannot drift apart on a table key or an environment variable name.
"""

from __future__ import annotations

from dataclasses import dataclass

# Environment variable names. The first three are part of the contract (docs/architecture.md#contracts).
PAYMENT_KMS_KEY_ARN = "PAYMENT_KMS_KEY_ARN"  # card data: SecureTokens and the vaulted card
DYNAMODB_TABLE_NAME = "DYNAMODB_TABLE_NAME"
DYNAMODB_AUDIT_TABLE_NAME = "DYNAMODB_AUDIT_TABLE_NAME"
CONVERGE_URL = "CONVERGE_URL"
CONVERGE_MERCHANT_ID = "CONVERGE_MERCHANT_ID"
CONVERGE_USER_ID = "CONVERGE_USER_ID"
CONVERGE_PIN = "CONVERGE_PIN"
CONVERGE_SECRET_ARN = "CONVERGE_SECRET_ARN"  # noqa: S105 - a variable name; in AWS, instead of the three above
CONVERGE_CONNECT_TIMEOUT_SECONDS = "CONVERGE_CONNECT_TIMEOUT_SECONDS"
CONVERGE_READ_TIMEOUT_SECONDS = "CONVERGE_READ_TIMEOUT_SECONDS"
CARD_VAULT_TABLE_NAME = "CARD_VAULT_TABLE_NAME"
AUDIT_KMS_KEY_ARN = "AUDIT_KMS_KEY_ARN"  # audit payloads: sealed by CallProcessor, opened only by the AuditReader
STATE_MACHINE_ARN = "STATE_MACHINE_ARN"
EVENT_BUS_NAME = "EVENT_BUS_NAME"  # the payments bus: one event per terminal ledger entry
IDEMPOTENCY_TABLE_NAME = "IDEMPOTENCY_TABLE_NAME"  # the events published, by EventID
# Reconciliation: the bucket its listings and reports go to, and the most transactions one Converge
# txnquery listing holds (a listing that long may be cut short: the client pages on).
REPORT_BUCKET_NAME = "REPORT_BUCKET_NAME"
CONVERGE_LISTING_LIMIT = "CONVERGE_LISTING_LIMIT"

POWERTOOLS_SERVICE_NAME = "POWERTOOLS_SERVICE_NAME"
POWERTOOLS_METRICS_NAMESPACE = "POWERTOOLS_METRICS_NAMESPACE"

SERVICE_NAME = "payment-workflow"
METRICS_NAMESPACE = "Payments"

PROCESSOR_ELAVON = "elavon"


@dataclass(frozen=True)
class KeyAttribute:
    name: str
    type: str  # DynamoDB scalar type: "S" or "N"


@dataclass(frozen=True)
class IndexSpec:
    """A global secondary index: its key, and the attributes it carries besides the table's keys."""

    name: str
    partition_key: KeyAttribute
    sort_key: KeyAttribute
    projected: tuple[str, ...]

    @property
    def keys(self) -> tuple[KeyAttribute, ...]:
        return (self.partition_key, self.sort_key)


@dataclass(frozen=True)
class TableSpec:
    """A DynamoDB table: its default name, its key schema and its indexes."""

    name: str
    env_var: str
    partition_key: KeyAttribute
    sort_key: KeyAttribute | None = None
    ttl_attribute: str | None = None  # items expire by this epoch-seconds attribute
    indexes: tuple[IndexSpec, ...] = ()

    @property
    def keys(self) -> tuple[KeyAttribute, ...]:
        return (self.partition_key,) if self.sort_key is None else (self.partition_key, self.sort_key)


# The ledger's entries of one Status, in time order: how status sync finds the payments and operations
# that never ended (or ended unknown), and reconciliation a day's approvals, without a Scan. One
# partition per Status: thousands of entries a second before one would run hot, far beyond what one
# processor terminal takes.
ENTRIES_BY_STATUS = IndexSpec(
    name="EntriesByStatus",
    partition_key=KeyAttribute("Status", "S"),
    sort_key=KeyAttribute("CreatedAt", "S"),
    projected=("OperationID", "ReasonCode", "Amount", "Currency", "ProcessorID", "ProcessorTransactionID"),
)
LEDGER_TABLE = TableSpec(
    name="PaymentLedger",
    env_var=DYNAMODB_TABLE_NAME,
    partition_key=KeyAttribute("TransactionID", "S"),
    sort_key=KeyAttribute("EntryNumber", "N"),
    indexes=(ENTRIES_BY_STATUS,),
)
AUDIT_TABLE = TableSpec(
    name="PaymentAuditTrail",
    env_var=DYNAMODB_AUDIT_TABLE_NAME,
    partition_key=KeyAttribute("TransactionID", "S"),
    sort_key=KeyAttribute("AuditID", "S"),
)
TABLES = (LEDGER_TABLE, AUDIT_TABLE)
# Powertools idempotency records of LedgerEvents (key "id", expiry "expiration"): no card data, no
# money, only which events were published. Not one of TABLES: no stream, no chain.
IDEMPOTENCY_TABLE = TableSpec(
    name="PaymentEventsPublished",
    env_var=IDEMPOTENCY_TABLE_NAME,
    partition_key=KeyAttribute("id", "S"),
    ttl_attribute="expiration",
)
EVENT_BUS = "payments"
# A card waits here, encrypted, between the intake and the processor's answer: minutes, never longer
# (docs/architecture.md#card-data-handling). Not one of TABLES: no backups, no stream.
CARD_VAULT_TABLE = TableSpec(
    name="CardVault",
    env_var=CARD_VAULT_TABLE_NAME,
    partition_key=KeyAttribute("TransactionID", "S"),
    ttl_attribute="ExpiresAt",
)
CARD_VAULT_TTL_SECONDS = 15 * 60
# ${…} in the ASL for the vault's table name: the state machine removes a card itself when Tokenize fails.
CARD_VAULT_TABLE_PLACEHOLDER = "CardVaultTableName"

_OBSERVABILITY_ENV = (POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE)
_CONVERGE_ENV = (CONVERGE_URL, CONVERGE_CONNECT_TIMEOUT_SECONDS, CONVERGE_READ_TIMEOUT_SECONDS)
# Where CallProcessor finds the Converge credentials: a secret in AWS, plain variables locally.
CONVERGE_CREDENTIALS_ENV = {
    "aws": (CONVERGE_SECRET_ARN,),
    "local": (CONVERGE_MERCHANT_ID, CONVERGE_USER_ID, CONVERGE_PIN),
}


@dataclass(frozen=True)
class FunctionSpec:
    """One step Lambda: where its code lives, its ASL placeholder, the variables it gets."""

    step: str  # the state name in the ASL that invokes it first (Intake: invoked by upstream services)
    code_dir: str  # directory under lambdas/ holding handler.py
    placeholder: str  # ${...} in statemachine/payment.asl.json ("" for the intake)
    env_vars: tuple[str, ...]
    handler: str = "handler.lambda_handler"
    uses_processor: bool = False

    @property
    def function_name(self) -> str:
        return f"Payment{self.step}"

    def environment(self, target: str) -> tuple[str, ...]:
        """The variable names this function gets on `target` ("aws" or "local")."""
        return self.env_vars + (CONVERGE_CREDENTIALS_ENV[target] if self.uses_processor else ())


# Status sync: finds payments and operations that never ended or ended unknown, and resolves each
# against the processor (a lookup, and for a charge the caller was told had failed, its reversal).
STATUS_SYNC_FUNCTIONS = (
    FunctionSpec(
        "FindUnresolved",
        "status_sync",
        "FindUnresolvedFunctionArn",
        (DYNAMODB_TABLE_NAME, *_OBSERVABILITY_ENV),
        handler="handler.find",
    ),
    FunctionSpec(
        "ResolveUnresolved",
        "status_sync",
        "ResolveUnresolvedFunctionArn",
        (AUDIT_KMS_KEY_ARN, DYNAMODB_TABLE_NAME, DYNAMODB_AUDIT_TABLE_NAME, *_CONVERGE_ENV, *_OBSERVABILITY_ENV),
        handler="handler.resolve",
        uses_processor=True,
    ),
)
# Daily reconciliation (docs/architecture.md#daily-reconciliation): plan the day's time windows, list each
# window at the processor (a Map iteration each), match the listings against the ledger.
RECONCILIATION_FUNCTIONS = (
    FunctionSpec(
        "PlanReconciliation",
        "reconciliation",
        "PlanReconciliationFunctionArn",
        _OBSERVABILITY_ENV,
        handler="handler.plan",
    ),
    FunctionSpec(
        "ListProcessorWindow",
        "reconciliation",
        "ListProcessorWindowFunctionArn",
        (REPORT_BUCKET_NAME, *_CONVERGE_ENV, CONVERGE_LISTING_LIMIT, *_OBSERVABILITY_ENV),
        handler="handler.list_window",
        uses_processor=True,
    ),
    # Reads the ledger's EntriesByStatus index (and a payment's entries), appends PAYMENT-SETTLED facts.
    FunctionSpec(
        "MatchLedger",
        "reconciliation",
        "MatchLedgerFunctionArn",
        (DYNAMODB_TABLE_NAME, REPORT_BUCKET_NAME, *_OBSERVABILITY_ENV),
        handler="handler.match",
    ),
)
# The step functions the state machines invoke.
FUNCTIONS = (
    FunctionSpec(
        "Tokenize", "tokenize", "TokenizeFunctionArn", (PAYMENT_KMS_KEY_ARN, CARD_VAULT_TABLE_NAME, *_OBSERVABILITY_ENV)
    ),
    # The two progress entries share one package; each function has its own entry point.
    FunctionSpec(
        "LedgerInitiated",
        "ledger_progress",
        "LedgerInitiatedFunctionArn",
        (DYNAMODB_TABLE_NAME, *_OBSERVABILITY_ENV),
        handler="handler.initiated",
    ),
    FunctionSpec(
        "LedgerPending",
        "ledger_progress",
        "LedgerPendingFunctionArn",
        (DYNAMODB_TABLE_NAME, *_OBSERVABILITY_ENV),
        handler="handler.pending",
    ),
    # CallProcessor writes the audit record of each call as it completes (see payments.charging).
    FunctionSpec(
        "CallProcessor",
        "call_processor",
        "CallProcessorFunctionArn",
        (
            PAYMENT_KMS_KEY_ARN,
            AUDIT_KMS_KEY_ARN,
            DYNAMODB_TABLE_NAME,
            DYNAMODB_AUDIT_TABLE_NAME,
            CARD_VAULT_TABLE_NAME,
            *_CONVERGE_ENV,
            *_OBSERVABILITY_ENV,
        ),
        uses_processor=True,
    ),
    FunctionSpec("Normalize", "normalize", "NormalizeFunctionArn", _OBSERVABILITY_ENV),
    # The terminal entries also remove the payment's card from the vault.
    FunctionSpec(
        "LedgerSuccess",
        "ledger_success",
        "LedgerSuccessFunctionArn",
        (DYNAMODB_TABLE_NAME, CARD_VAULT_TABLE_NAME, *_OBSERVABILITY_ENV),
    ),
    FunctionSpec(
        "LedgerFailed",
        "ledger_failed",
        "LedgerFailedFunctionArn",
        (DYNAMODB_TABLE_NAME, CARD_VAULT_TABLE_NAME, *_OBSERVABILITY_ENV),
    ),
    FunctionSpec("Audit", "audit", "AuditFunctionArn", (DYNAMODB_AUDIT_TABLE_NAME, *_OBSERVABILITY_ENV)),
    # The operations that follow a payment (capture, void, refund): their ledger steps share one package.
    FunctionSpec(
        "AdmitOperation",
        "operation_ledger",
        "AdmitOperationFunctionArn",
        (DYNAMODB_TABLE_NAME, *_OBSERVABILITY_ENV),
        handler="handler.admit",
    ),
    FunctionSpec(
        "OperationPending",
        "operation_ledger",
        "OperationPendingFunctionArn",
        (DYNAMODB_TABLE_NAME, *_OBSERVABILITY_ENV),
        handler="handler.pending",
    ),
    # No card data and no payment key: an operation names the payment's transaction at the processor.
    FunctionSpec(
        "CallOperationProcessor",
        "operation_processor",
        "CallOperationProcessorFunctionArn",
        (AUDIT_KMS_KEY_ARN, DYNAMODB_TABLE_NAME, DYNAMODB_AUDIT_TABLE_NAME, *_CONVERGE_ENV, *_OBSERVABILITY_ENV),
        uses_processor=True,
    ),
    FunctionSpec(
        "OperationSuccess",
        "operation_ledger",
        "OperationSuccessFunctionArn",
        (DYNAMODB_TABLE_NAME, *_OBSERVABILITY_ENV),
        handler="handler.succeeded",
    ),
    # It reads the operation's attempts in the audit trail: a failure after one may have moved money.
    FunctionSpec(
        "OperationFailed",
        "operation_ledger",
        "OperationFailedFunctionArn",
        (DYNAMODB_TABLE_NAME, DYNAMODB_AUDIT_TABLE_NAME, *_OBSERVABILITY_ENV),
        handler="handler.unsuccessful",
    ),
    *STATUS_SYNC_FUNCTIONS,
    *RECONCILIATION_FUNCTIONS,
)

# Where a card payment starts: upstream services invoke it; it vaults the card and starts the execution.
INTAKE_FUNCTION = FunctionSpec(
    "Intake",
    "intake",
    "",
    (PAYMENT_KMS_KEY_ARN, CARD_VAULT_TABLE_NAME, STATE_MACHINE_ARN, *_OBSERVABILITY_ENV),
)
# Reads the ledger's stream (the outbox) and puts one event per terminal entry on the payments bus.
EVENTS_FUNCTION = FunctionSpec(
    "LedgerEvents",
    "ledger_events",
    "",
    (EVENT_BUS_NAME, IDEMPOTENCY_TABLE_NAME, *_OBSERVABILITY_ENV),
)
ALL_FUNCTIONS = (INTAKE_FUNCTION, *FUNCTIONS, EVENTS_FUNCTION)


@dataclass(frozen=True)
class ProcessorTimeBudget:
    """Every timeout of a charge, from one place: the processor client's, CallProcessor's Lambda
    timeout and the CallProcessor state's. An attempt that finds an earlier sale attempt on record
    waits until that sale has surely landed (at most `wait_before_asking_seconds` after it was
    claimed), then may ask and sell (two calls): its Lambda must outlive all three, and the state
    must outlive the Lambda, or Step Functions gives up on an attempt still at work."""

    connect_seconds: float = 3.0
    read_seconds: float = 20.0
    # A sale leaves within this long of its claim's CreatedAt, or not at all: a claim slower to
    # write (DynamoDB takes milliseconds) sends nothing, and the next attempt asks.
    claim_grace_seconds: float = 1.0
    lambda_timeout_seconds: int = 95
    # Lambda's init phase (up to 10 s) is not part of its timeout: the state waits for it too, so that
    # an attempt Step Functions gave up on can never still be running when the retry begins.
    state_timeout_seconds: int = 110
    lambda_init_seconds: int = 10

    @property
    def wait_before_asking_seconds(self) -> float:
        """The earlier sale left within the grace of its claim; its client gave up a connect and a
        read later; one more read lets the processor file a sale it was still working on."""
        return self.claim_grace_seconds + self.connect_seconds + 2 * self.read_seconds

    @property
    def needed_by_a_retry_seconds(self) -> float:
        """The wait, a query and a sale, and a second for the function itself."""
        return self.wait_before_asking_seconds + 2 * (self.connect_seconds + self.read_seconds) + 1


PROCESSOR_TIME_BUDGET = ProcessorTimeBudget()

# The one Python every function runs on: Lambda's runtime, the local stack's, and the tests'.
LAMBDA_RUNTIME = "python3.12"

STATE_MACHINE_NAME = "PaymentWorkflow"
ASL_PATH = "statemachine/payment.asl.json"


@dataclass(frozen=True)
class WorkflowSpec:
    """One Standard state machine: its name, its ASL file, the steps (functions) it invokes."""

    name: str
    asl_path: str
    steps: tuple[str, ...]

    @property
    def functions(self) -> tuple[FunctionSpec, ...]:
        return tuple(function_by_step(step) for step in self.steps)


PAYMENT_WORKFLOW = WorkflowSpec(
    STATE_MACHINE_NAME,
    ASL_PATH,
    (
        "Tokenize",
        "LedgerInitiated",
        "LedgerPending",
        "CallProcessor",
        "Normalize",
        "LedgerSuccess",
        "LedgerFailed",
        "Audit",
    ),
)
# Capture, void and refund: one state machine, the Operation in its input says which.
OPERATION_WORKFLOW = WorkflowSpec(
    "PaymentOperationWorkflow",
    "statemachine/operation.asl.json",
    (
        "AdmitOperation",
        "OperationPending",
        "CallOperationProcessor",
        "Normalize",
        "OperationSuccess",
        "OperationFailed",
        "Audit",
    ),
)
STATUS_SYNC_WORKFLOW = WorkflowSpec(
    "PaymentStatusSync",
    "statemachine/status_sync.asl.json",
    ("FindUnresolved", "ResolveUnresolved", "Audit"),
)
# Daily reconciliation against the processor: scheduled once a day in AWS, `python -m local reconcile` locally.
RECONCILIATION_WORKFLOW = WorkflowSpec(
    "PaymentReconciliationWorkflow",
    "statemachine/reconciliation.asl.json",
    ("PlanReconciliation", "ListProcessorWindow", "MatchLedger"),
)
WORKFLOWS = (PAYMENT_WORKFLOW, OPERATION_WORKFLOW, STATUS_SYNC_WORKFLOW, RECONCILIATION_WORKFLOW)
# Where reconciliation keeps each day's listings and report (S3, encrypted with the storage key):
# reconciliation/<date>/report.json, and each run's window listings under reconciliation/<date>/runs/<run>/.
REPORT_BUCKET = "payment-reconciliation-reports"
RECONCILIATION_PREFIX = "reconciliation"
# The metrics reconciliation publishes (namespace METRICS_NAMESPACE), one per category, and the one the
# alarm watches: any mismatch, or a listing that could not be completed, pages.
RECONCILIATION_METRICS = {
    "MATCHED": "ReconciliationMatched",
    "MISSING_IN_LEDGER": "ReconciliationMissingInLedger",
    "MISSING_AT_PROCESSOR": "ReconciliationMissingAtProcessor",
    "AMOUNT_MISMATCH": "ReconciliationAmountMismatch",
    "STATUS_MISMATCH": "ReconciliationStatusMismatch",
    "SETTLED": "ReconciliationSettled",
    "DECLINED_AT_PROCESSOR": "ReconciliationDeclinedAtProcessor",
}
RECONCILIATION_ALARM_METRIC = "ReconciliationMismatches"


def function_by_step(step: str) -> FunctionSpec:
    return next(f for f in ALL_FUNCTIONS if f.step == step)
