"""Send one money-moving request at most once, through the processor port, and audit every call.

Processors need not offer an idempotency key, so exactly-once is ours (docs/architecture.md#the-exactly-once-protocol).
Every request carries our own reference (a sale: the TransactionID; a capture, void or refund: the
OperationID), and before it leaves, the sender claims the next attempt record in the audit trail
(payments.sale_attempts). With no attempt on record it just sends. With one on record — whoever runs
the step now: a Step Functions retry, a redrive, a person invoking the function — it first lets that
request land, then asks the processor what it holds under the reference, and if it finds the request
it uses that answer and sends nothing. What is on record decides, never `$$.State.RetryCount`, which a
redrive starts again at 0.

Each completed call is written to the audit trail as soon as it completes (write-ahead), by the
function that made it: a call followed by an error or a crash cannot hand its record to the Audit
step, which only sees what a successful attempt returns.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar, cast

from aws_lambda_powertools.metrics import MetricUnit

from payments import topology
from payments.audit import AuditRecord, AuditRepository, ProcessorCallRecord
from payments.errors import ProcessorError, ProcessorRejected, ProcessorTimeout
from payments.observability import logger, metrics
from payments.processors.port import AuditView, Processor, ProcessorCall, ProcessorTimeouts
from payments.sale_attempts import SaleAttempts, SaleAttemptTaken

CLAIM_GRACE_SECONDS = topology.PROCESSOR_TIME_BUDGET.claim_grace_seconds
Seal = Callable[[dict[str, Any]], str]  # encrypts one audit payload of this payment
Clock = Callable[[], dt.datetime]
Prepared = TypeVar("Prepared")


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


def send_once(
    *,
    processor: Processor,
    reference: str,
    attempts: SaleAttempts,
    recorder: CallRecorder,
    retried: bool,
    adopt: Callable[[ProcessorCall], dict[str, str] | None],
    prepare: Callable[[], Prepared],
    send: Callable[[Prepared], ProcessorCall],
    still_pending: Callable[[], None] = lambda: None,
    seconds_left: Callable[[], float] = lambda: 900.0,
    sleep: Callable[[float], None] | None = None,
    clock: Clock | None = None,
    calls_after_wait: int = 2,
    rejected_resend_is_unknown: bool = False,
) -> ChargeResult:
    """Send once; with an earlier attempt on record (or `retried`), first wait for it and ask about it.

    `adopt` picks our request out of a lookup by `reference` (None: nothing listed); `prepare` runs
    just before the claim (reading the CVV, a last check) and may refuse; `send` sends what it
    prepared. `still_pending` raises if the payment or operation ended meanwhile (asked again after
    a wait); `seconds_left` is the time this invocation has left, now; `calls_after_wait` how many
    calls follow a wait. With `rejected_resend_is_unknown`, a request sent again after a lookup found
    nothing and then rejected leaves the outcome unknown (ProcessorTimeout): the processor may refuse
    it because the first one did land, where the lookup could not show it.
    """
    sleep = sleep or time.sleep
    clock = clock or _utc_now
    try:
        on_record = attempts.on_record()
        latest = max(on_record, key=lambda attempt: attempt.number, default=None)
        if latest is not None or retried:
            if latest is not None:
                lands_by = latest.started_at + landing_time(processor.timeouts)
            else:
                # Retried with no claim on record: the earlier attempt failed before claiming, or ran a
                # version that sent without claims. It ended before this attempt began, so one read
                # timeout from now lets anything it sent land.
                lands_by = clock() + dt.timedelta(seconds=processor.timeouts.read)
            wait_until(lands_by, processor.timeouts, seconds_left(), sleep, clock, calls_after_wait)
            since = min((attempt.started_at for attempt in on_record), default=clock()).date()
            lookup = ask_before_resending(processor, reference, since)
            recorder.record(lookup)
            found = adopt(lookup)
            if found is not None:
                logger.info("earlier request found; not sending another")
                return ChargeResult(found, recorder.calls, lookup.latency_ms, True, frozenset(recorder.persisted))
            still_pending()  # the wait was long: the payment may have ended meanwhile
        prepared = prepare()
        claimed_at = clock()
        try:
            attempts.claim(1 if latest is None else latest.number + 1, claimed_at)
        except SaleAttemptTaken as taken:
            # Another attempt is sending this very request now: its outcome is unknown until asked.
            raise ProcessorTimeout(f"{taken}; asking later") from None
        late = (clock() - claimed_at).total_seconds()
        if late > CLAIM_GRACE_SECONDS:
            # Whoever asks about this claim waits from its CreatedAt: a request sent later could land after they ask.
            raise ProcessorTimeout(f"the attempt took {late:.1f}s to record; sending nothing, asking later")
        try:
            call = send(prepared)
        except ProcessorRejected as rejected:
            if rejected_resend_is_unknown and (latest is not None or retried):
                raise ProcessorTimeout(
                    f"sent again and rejected, the first may have landed; {rejected}", rejected.call
                ) from None
            raise
        recorder.record(call)
        return ChargeResult(call.result, recorder.calls, call.latency_ms, False, frozenset(recorder.persisted))
    except ProcessorError as error:
        if error.call is not None:
            recorder.record(cast(ProcessorCall, error.call))
        raise


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def landing_time(timeouts: ProcessorTimeouts) -> dt.timedelta:
    """How long after its claim a sale has surely landed, if it was sent at all.

    It left within CLAIM_GRACE_SECONDS of its claim's CreatedAt, or not at all; its client gave
    up at most a connect and a read timeout later. Giving the processor one more read timeout to
    file a sale it was still working on means a lookup that finds nothing then proves nothing
    was sold. A claim older than that (a retry after a long backoff, a redrive days later) needs
    no wait at all.
    """
    return dt.timedelta(seconds=CLAIM_GRACE_SECONDS + timeouts.connect + 2 * timeouts.read)


def wait_until(
    lands_by: dt.datetime,
    timeouts: ProcessorTimeouts,
    seconds_left: float,
    sleep: Callable[[float], None],
    clock: Clock,
    calls_after_wait: int = 2,
) -> None:
    """Do not ask too soon: the earlier attempt's request may still be on its way. After the wait,
    `calls_after_wait` calls (the lookup, the request, any question between) must still fit."""
    wait = max(0.0, (lands_by - clock()).total_seconds())
    budget = seconds_left - calls_after_wait * (timeouts.connect + timeouts.read) - 1
    if wait > budget:
        raise ProcessorTimeout(f"not enough time left to wait {wait:.0f}s for an earlier attempt; asking later")
    if wait > 0:
        logger.info("waiting for an earlier attempt to land before asking", extra={"seconds": round(wait, 3)})
        sleep(wait)


def ask_before_resending(processor: Processor, reference: str, since: dt.date) -> ProcessorCall:
    try:
        return processor.find_by_merchant_transaction_id(reference, since)
    except ProcessorError as error:
        # Whatever stopped the question (unavailable, rejected, no answer), an earlier attempt may
        # have charged: its outcome is still unknown, and that is what the retries must resolve.
        raise ProcessorTimeout(f"outcome of an earlier attempt unknown; {error}", error.call) from None


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
