"""CallProcessor: charge exactly once through the processor port, and audit every call.

Processors need not offer an idempotency key, so exactly-once is ours (docs/architecture.md#the-exactly-once-protocol):
every sale carries our TransactionID, and before a sale leaves, CallProcessor claims the next
sale attempt in the audit trail (payments.sale_attempts). With no attempt on record it just sends
the sale. With one on record — whoever runs it now: a Step Functions retry, a redrive, a person
invoking the function — it first lets that sale land, then asks the processor whether a sale for
this TransactionID exists, and if so uses it and sends nothing. What is on record decides, never
`$$.State.RetryCount`, which a redrive starts again at 0.

Each completed call is written to the audit trail as soon as it completes (write-ahead), by
the function that made it: a call followed by an error or a crash cannot hand its record to
the Audit step, which only sees what a successful attempt returns.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any, cast

from aws_lambda_powertools.metrics import MetricUnit

from payments import aws, crypto, ledger, settings, topology
from payments.audit import AuditRecord, AuditRepository, ProcessorCallRecord
from payments.errors import CardNotVaulted, ChargeRefused, ProcessorError, ProcessorRejected, ProcessorTimeout
from payments.ledger import LedgerEntry, LedgerRepository
from payments.models import AUTOMATIC, MANUAL
from payments.observability import logger, metrics
from payments.processors import registry
from payments.processors.port import (
    AuditView,
    CardDetails,
    ExpectedSale,
    PaymentInstruction,
    Processor,
    ProcessorCall,
    ProcessorTimeouts,
    SaleKind,
    StoredToken,
)
from payments.sale_attempts import AuditedSaleAttempts, SaleAttempts, SaleAttemptTaken
from payments.state import ChargeEvent, PaymentFacts
from payments.tokenization import token_binding
from payments.vault import CardVault, remove_after_outcome, vault_from_environment

CLAIM_GRACE_SECONDS = topology.PROCESSOR_TIME_BUDGET.claim_grace_seconds
Seal = Callable[[dict[str, Any]], str]  # encrypts one audit payload of this payment
PaymentSource = Callable[[], CardDetails | StoredToken]  # reads the CVV only when a sale is sent
Clock = Callable[[], dt.datetime]


@dataclass
class CallRecorder:
    """Turns each completed call into an encrypted audit record and stores it at once."""

    transaction_id: str
    execution_arn: str
    attempt: int
    actor: str
    processor: Processor
    seal: Seal
    audit: AuditRepository | None
    calls: list[ProcessorCallRecord] = field(default_factory=list)
    persisted: set[str] = field(default_factory=set)  # AuditIDs written ahead

    def record(self, call: ProcessorCall) -> None:
        """Best effort: a processor result already known must never be lost to an audit failure."""
        try:
            record = call_record(
                self.processor.audit_view(call), attempt=self.attempt, actor=self.actor, seal=self.seal
            )
        except Exception as error:
            logger.error("audit record lost", extra={"operation": call.operation, "error": type(error).__name__})
            metrics.add_metric(name="AuditRecordsLost", unit=MetricUnit.Count, value=1)
            return
        self.calls.append(record)
        if self.audit is None:
            return
        try:
            self.audit.append_record(AuditRecord(self.transaction_id, self.execution_arn, record))
            self.persisted.add(record.AuditID)
        except Exception as error:  # the record still travels in the state to the Audit step
            logger.warning(
                "audit write-ahead failed", extra={"audit_id": record.AuditID, "error": type(error).__name__}
            )


@dataclass(frozen=True)
class ChargeResult:
    result: dict[str, str]
    calls: list[ProcessorCallRecord]
    latency_ms: int
    found_by_query: bool = False
    persisted: frozenset[str] = frozenset()

    def to_state(self) -> dict[str, Any]:
        """The calls travel to the Audit step; those already written are marked, so it skips them."""
        calls = [asdict(call) | {"Persisted": call.AuditID in self.persisted} for call in self.calls]
        return {"Result": self.result, "Calls": calls}


def call_processor(event: ChargeEvent, *, actor: str, seconds_left: Callable[[], float]) -> ChargeResult:
    """The CallProcessor step with its real adapters: the payment's processor, KMS, the vault, the audit table.

    Once the processor has answered the sale (approved, declined, or rejected our request), the
    CVV is removed from the vault: from then on it exists nowhere. An attempt that got no answer
    keeps it for the retry, which needs it if the processor never took the sale.
    """
    payment = event.Payment
    key_arn = settings.kms_key_arn()
    audit_key_arn = settings.audit_kms_key_arn()
    processor = registry.processor_for(payment.ProcessorID)
    vault = vault_from_environment()

    def seal(payload: dict[str, Any]) -> str:
        return crypto.encrypt_audit_payload(payload, key_arn=audit_key_arn, transaction_id=payment.TransactionID)

    ledger_repository = LedgerRepository(settings.ledger_table_name())

    def still_pending() -> None:
        refuse_unless_pending(ledger_repository.entries(payment.TransactionID), event)

    still_pending()
    audit = AuditRepository(settings.audit_table_name())
    attempts = AuditedSaleAttempts(
        audit,
        aws.client("dynamodb"),
        payment.TransactionID,
        event.ExecutionArn,
        event.RetryCount + 1,
        actor,
        lambda: seal({"Amount": payment.Amount, "Currency": payment.Currency, "ProcessorID": payment.ProcessorID}),
    )
    # Opened before any processor call: a SecureToken made for another charge is refused here.
    secret = open_secure_token(
        payment, key_arn, earlier_attempt=lambda: event.RetryCount > 0 or bool(attempts.on_record())
    )
    recorder = CallRecorder(
        payment.TransactionID, event.ExecutionArn, event.RetryCount + 1, actor, processor, seal, audit
    )
    try:
        charged = charge(
            event,
            processor=processor,
            source=lambda: payment_source(secret, payment.TransactionID, vault),
            card_last4=secret.get("Number", "")[-4:] or None,
            recorder=recorder,
            attempts=attempts,
            still_pending=still_pending,
            seconds_left=seconds_left,
        )
    except ProcessorRejected:
        remove_after_outcome("CVV", lambda: vault.remove_cvv(payment.TransactionID))
        raise
    remove_after_outcome("CVV", lambda: vault.remove_cvv(payment.TransactionID))
    return charged


def refuse_unless_pending(entries: list[LedgerEntry], event: ChargeEvent) -> None:
    """Charge only a payment the ledger holds as pending, for exactly this request, not yet ended.

    CallProcessor can be invoked by more than its state machine (an account administrator can);
    an input replayed from a settled payment's history, or forged with another amount or token,
    must never reach the processor.
    """
    payment = event.Payment
    if any(entry.is_terminal for entry in entries):
        raise ChargeRefused("the payment has already ended; nothing was sent")
    pending = next((entry for entry in entries if entry.Status == ledger.PENDING), None)
    if pending is None:
        raise ChargeRefused("the ledger holds no PAYMENT-PENDING entry for this payment; nothing was sent")
    recorded = (
        pending.Amount,
        pending.Currency,
        pending.ProcessorID,
        pending.SecureToken,
        pending.ExecutionArn,
        pending.Capture or AUTOMATIC,
    )
    asked = (
        payment.Amount,
        payment.Currency,
        payment.ProcessorID,
        payment.SecureToken,
        event.ExecutionArn,
        payment.Capture,
    )
    if recorded != asked:
        raise ChargeRefused("the request differs from the ledger's PAYMENT-PENDING entry; nothing was sent")


def charge(
    event: ChargeEvent,
    *,
    processor: Processor,
    source: PaymentSource,
    card_last4: str | None,
    recorder: CallRecorder,
    attempts: SaleAttempts,
    still_pending: Callable[[], None] = lambda: None,
    seconds_left: Callable[[], float] = lambda: 900.0,
    sleep: Callable[[float], None] | None = None,
    clock: Clock | None = None,
) -> ChargeResult:
    """Send the sale once; with an earlier attempt on record, first wait for it and ask about it.

    `still_pending` raises ChargeRefused if the payment ended meanwhile (it is asked again after a
    wait, just before a new claim); `seconds_left` is the time this invocation has left, now.
    """
    payment = event.Payment
    amount = Decimal(payment.Amount)
    sleep = sleep or time.sleep
    clock = clock or _utc_now
    try:
        on_record = attempts.on_record()
        latest = max(on_record, key=lambda attempt: attempt.number, default=None)
        if latest is not None or event.RetryCount > 0:
            if latest is not None:
                lands_by = latest.started_at + _landing_time(processor.timeouts)
            else:
                # Retried with no claim on record: the earlier attempt failed before claiming, or ran a
                # version that sent sales without claims. It ended before this attempt began, so one
                # read timeout from now lets any sale of it land.
                lands_by = clock() + dt.timedelta(seconds=processor.timeouts.read)
            _wait_until(lands_by, processor.timeouts, seconds_left(), sleep, clock)
            since = min((attempt.started_at for attempt in on_record), default=clock()).date()
            lookup = _ask_before_resending(processor, payment.TransactionID, since)
            recorder.record(lookup)
            expected = ExpectedSale(payment.TransactionID, amount, payment.Currency, card_last4, _kind(payment))
            found = processor.sale_found(lookup, expected)
            if found is not None:
                logger.info("earlier sale found; not sending another")
                return ChargeResult(found, recorder.calls, lookup.latency_ms, True, frozenset(recorder.persisted))
            still_pending()  # the wait was long: the payment may have ended meanwhile
        method = source()
        claimed_at = clock()
        try:
            attempts.claim(1 if latest is None else latest.number + 1, claimed_at)
        except SaleAttemptTaken as taken:
            # Another attempt is sending this very sale now: its outcome is unknown until asked.
            raise ProcessorTimeout(f"{taken}; asking later") from None
        late = (clock() - claimed_at).total_seconds()
        if late > CLAIM_GRACE_SECONDS:
            # Whoever asks about this claim waits from its CreatedAt: a sale sent later could land after they ask.
            raise ProcessorTimeout(f"the sale attempt took {late:.1f}s to record; sending nothing, asking later")
        instruction = PaymentInstruction(payment.TransactionID, amount, payment.Currency, method, payment.Description)
        call = processor.authorize(instruction) if payment.Capture == MANUAL else processor.sale(instruction)
        recorder.record(call)
        return ChargeResult(call.result, recorder.calls, call.latency_ms, False, frozenset(recorder.persisted))
    except ProcessorError as error:
        if error.call is not None:
            recorder.record(cast(ProcessorCall, error.call))
        raise


def _kind(payment: PaymentFacts) -> SaleKind:
    return "authorization" if payment.Capture == MANUAL else "sale"


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _landing_time(timeouts: ProcessorTimeouts) -> dt.timedelta:
    """How long after its claim a sale has surely landed, if it was sent at all.

    It left within CLAIM_GRACE_SECONDS of its claim's CreatedAt, or not at all; its client gave
    up at most a connect and a read timeout later. Giving the processor one more read timeout to
    file a sale it was still working on means a lookup that finds nothing then proves nothing
    was sold. A claim older than that (a retry after a long backoff, a redrive days later) needs
    no wait at all.
    """
    return dt.timedelta(seconds=CLAIM_GRACE_SECONDS + timeouts.connect + 2 * timeouts.read)


def _wait_until(
    lands_by: dt.datetime,
    timeouts: ProcessorTimeouts,
    seconds_left: float,
    sleep: Callable[[float], None],
    clock: Clock,
) -> None:
    """Do not ask too soon: the earlier attempt's sale may still be on its way."""
    wait = max(0.0, (lands_by - clock()).total_seconds())
    budget = seconds_left - 2 * (timeouts.connect + timeouts.read) - 1
    if wait > budget:
        raise ProcessorTimeout(f"not enough time left to wait {wait:.0f}s for an earlier sale; asking later")
    if wait > 0:
        logger.info("waiting for an earlier sale to land before asking", extra={"seconds": round(wait, 3)})
        sleep(wait)


def _ask_before_resending(processor: Processor, transaction_id: str, since: dt.date) -> ProcessorCall:
    try:
        return processor.find_by_merchant_transaction_id(transaction_id, since)
    except ProcessorError as error:
        # Whatever stopped the question (unavailable, rejected, no answer), an earlier attempt may
        # have charged: its outcome is still unknown, and that is what the retries must resolve.
        raise ProcessorTimeout(f"outcome of an earlier sale unknown; {error}", error.call) from None


def open_secure_token(payment: PaymentFacts, key_arn: str, earlier_attempt: Callable[[], bool]) -> dict[str, Any]:
    """The SecureToken's content, if it was made for exactly this payment, amount, currency and processor.

    A token that will not open is refused; but if an earlier attempt may have sent a sale (a retry, a
    claim on record), what it did is unknown, and saying "nothing was sent" could hide a charge (a
    token sealed by another version of Tokenize, say): the outcome is then unknown instead.
    """
    try:
        return crypto.decrypt_token(payment.SecureToken, key_arn=key_arn, binding=token_binding(payment))
    except crypto.BoundToAnotherUse:
        if earlier_attempt():
            raise ProcessorTimeout(
                "the SecureToken does not open for this charge, and an earlier attempt may have sent a sale"
            ) from None
        raise ChargeRefused("the SecureToken was made for another charge; nothing was sent") from None


def payment_source(secret: dict[str, Any], transaction_id: str, vault: CardVault) -> CardDetails | StoredToken:
    """The card (or processor token) from the SecureToken, and the CVV from the vault, in memory only."""
    if secret["Type"] != "card":
        return StoredToken(secret["Token"])
    cvv = vault.cvv(transaction_id)
    if cvv is None:
        raise CardNotVaulted("the card's CVV is no longer in the vault (expired or removed); no sale was sent")
    return CardDetails(
        number=secret["Number"],
        expiry_month=secret["ExpiryMonth"],
        expiry_year=secret["ExpiryYear"],
        cvv=cvv,
        holder_name=secret.get("HolderName"),
    )


def call_record(view: AuditView, *, attempt: int, actor: str, seal: Seal) -> ProcessorCallRecord:
    """The audit record of one call: the adapter's masked view, sealed for the audit purpose."""
    return ProcessorCallRecord(
        AuditID=f"{view.started_at}#{view.operation}#{attempt}",
        Operation=view.operation,
        Attempt=attempt,
        Outcome=view.outcome,
        ResultCode=view.result_code,
        LatencyMs=view.latency_ms,
        EncryptedQuery=seal(view.query),
        EncryptedResponse=seal(view.response),
        Actor=actor,
        CreatedAt=view.started_at,
    )
