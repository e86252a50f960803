"""Status sync, the applying half: settle one unresolved payment or operation so the ledger matches the money.

payments.status_sync decides which endings are unresolved and what resolves each; this module asks
the processor what it holds under the reference (the lookup the retries use), and appends the
resolution as new ledger entries, each marked with its Resolution and this sync execution's ARN:

- COMPLETE: the terminal entry the execution would have written (SUCCESS or AUTHORIZED; DECLINED
  when the processor declined it), for a payment or operation whose execution stopped for good;
- FAIL_NOT_CHARGED / RECORD_NOT_CHARGED: a FAILED entry with reason NOT_CHARGED;
- RECORD_SUCCESS: an operation whose money did move after all, its SUCCESS entry;
- REVERSE: a charge approved after its payment ended FAILED (the caller was told it failed) is
  voided while its batch is open, returned in full once settled: PAYMENT-REVERSING is written
  first (with the way chosen), the void or return is sent through the exactly-once protocol
  (payments.exactly_once) under a reference of its own, and PAYMENT-REVERSED records its approval.
  A later run that finds REVERSING sends nothing new: it asks by the reversal's reference first.

Every processor call is written to the audit trail as it completes (the payment's trail, or the
operation's), as CallProcessor's are.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from payments import ledger, operations, status_sync
from payments.errors import ProcessorRejected, ProcessorTimeout
from payments.exactly_once import CallRecorder, ChargeResult, ask_before_resending, landing_time, send_once
from payments.ledger import LedgerEntry, LedgerRepository
from payments.operation_calls import instruction_of
from payments.operation_recording import append_next, of_authorization, operation_entries
from payments.operation_state import OperationFacts
from payments.processors.port import ExpectedSale, OperationInstruction, Processor, ProcessorCall, SaleKind
from payments.sale_attempts import OPERATION_ATTEMPT, SALE_ATTEMPT, SaleAttempt, SaleAttempts
from payments.state import APPROVED, DECLINED, ProcessorOutcome

Outcome = Literal["RESOLVED", "ALREADY_RESOLVED", "STILL_RUNNING", "NOT_YET", "LEFT_FOR_AN_OPERATOR"]
# How a reversal went, on PAYMENT-REVERSED (its ReasonCode): chosen by the settlement just before each send.
BY_VOID, BY_RETURN = "REVERSE_BY_VOID", "REVERSE_BY_RETURN"
# An unknown outcome stays findable this long (a pending one, the run's LookbackHours): past it, only the
# StatusSyncLeftForAnOperator alarm and reconciliation's mismatches still name it.
UNKNOWN_LOOKBACK = dt.timedelta(days=35)
_REFERENCE_LETTERS = str.maketrans("0123456789abcdef", "ghijklmnopqrstuv")
# What the index is read for. Within the pending lookback: every Status a payment or operation passes
# through, so one that never ended shows as an INITIATED or PENDING row with no terminal row after it.
# Within UNKNOWN_LOOKBACK: the FAILED rows (the unknown ones and NOT_CHARGED, which resolves them) and
# the reversals, so an unknown outcome is found for weeks at the cost of the failures alone.
_OPERATION_STAGES = (operations.INITIATED, operations.PENDING, operations.SUCCESS, operations.DECLINED)
PENDING_STATUSES = (
    ledger.INITIATED,
    ledger.PENDING,
    ledger.SUCCESS,
    ledger.AUTHORIZED,
    ledger.DECLINED,
    *(operations.status(kind, stage) for kind in operations.KINDS for stage in _OPERATION_STAGES),
)
UNKNOWN_STATUSES = (
    ledger.FAILED,
    ledger.REVERSING,
    ledger.REVERSED,
    *(operations.status(kind, operations.FAILED) for kind in operations.KINDS),
)


@dataclass(frozen=True)
class IndexRow:
    """An entry as the EntriesByStatus index carries it: what status_sync reads."""

    TransactionID: str
    Status: str
    CreatedAt: str
    OperationID: str | None = None
    ReasonCode: str | None = None


def find_unresolved(
    repository: LedgerRepository, *, now: dt.datetime, pending_deadline: dt.timedelta, lookback: dt.timedelta
) -> list[status_sync.Unresolved]:
    """The unresolved endings the index shows: pending ones among the entries of the last `lookback`,
    unknown ones among the failures of the last UNKNOWN_LOOKBACK."""
    until = _iso(now + dt.timedelta(seconds=1))
    windows = (
        (PENDING_STATUSES, _iso(now - lookback)),
        (UNKNOWN_STATUSES, _iso(now - max(lookback, UNKNOWN_LOOKBACK))),
    )
    rows = [
        IndexRow(
            TransactionID=row["TransactionID"],
            Status=row["Status"],
            CreatedAt=row["CreatedAt"],
            OperationID=row.get("OperationID"),
            ReasonCode=row.get("ReasonCode"),
        )
        for statuses, since in windows
        for status in statuses
        for row in repository.entries_with_status(status, since, until)
    ]
    return status_sync.candidates_in(rows, now=now, pending_deadline=pending_deadline)


def reversal_reference(transaction_id: str) -> str:
    """The reversal's own reference at the processor (Converge: ssl_merchant_txn_id): one per payment,
    so every run asks by the same one; letters only, so it never reads as a card number."""
    digest = hashlib.sha256(f"reversal:{transaction_id}".encode()).hexdigest()
    return "rev-" + digest[:32].translate(_REFERENCE_LETTERS)


@dataclass(frozen=True)
class Resolved:
    TransactionID: str
    OperationID: str | None
    Outcome: Outcome
    Resolution: str | None = None
    Status: str | None = None  # the entry written (or found) that resolves it
    Detail: str | None = None  # why it is left for an operator
    Calls: list[dict[str, Any]] = field(default_factory=list)

    def to_state(self) -> dict[str, Any]:
        return {
            "TransactionID": self.TransactionID,
            "OperationID": self.OperationID,
            "Outcome": self.Outcome,
            "Resolution": self.Resolution,
            "Status": self.Status,
            "Detail": self.Detail,
            # The audit trail the calls belong to: the payment's, or the operation's own.
            "AuditTrail": self.TransactionID
            if self.OperationID is None
            else f"{self.TransactionID}/{self.OperationID}",
            "Processor": {"Calls": self.Calls},
        }


@dataclass
class Resolver:
    """Resolves one payment or operation at a time; every collaborator is injected."""

    ledger: LedgerRepository
    processor_for: Callable[[str], Processor]
    normalize: Callable[[str, dict[str, str]], ProcessorOutcome]
    recorder_for: Callable[[str, Processor], CallRecorder]  # by audit trail
    attempts_for: Callable[[str, Callable[[], dict[str, Any]]], SaleAttempts]  # the reversal's, by audit trail
    claims_of: Callable[[str, str], list[SaleAttempt]]  # (audit trail, kind): the attempts on record
    # When the execution that wrote the ending could no longer act: None while it runs (payments.status_sync).
    execution_quiet_at: Callable[[str], dt.datetime | None]
    execution_arn: str
    now: Callable[[], dt.datetime]
    pending_deadline: dt.timedelta
    seconds_left: Callable[[], float] = lambda: 900.0
    sleep: Callable[[float], None] | None = None

    def resolve(self, transaction_id: str, operation_id: str | None) -> Resolved:
        entries = self.ledger.entries(transaction_id)
        found = self._unresolved(entries, transaction_id, operation_id, self.pending_deadline)
        if found is None:
            return Resolved(transaction_id, operation_id, "ALREADY_RESOLVED")
        ending = operation_entries(entries, operation_id) if operation_id else _own(entries)
        if found.why == "PENDING_PAST_DEADLINE":
            quiet_at = self.execution_quiet_at(ending[-1].ExecutionArn)
            if quiet_at is None:
                return Resolved(transaction_id, operation_id, "STILL_RUNNING")
            if self.now() < quiet_at:
                return Resolved(transaction_id, operation_id, "NOT_YET", Detail=_STOPPED_RECENTLY)
        if operation_id is None:
            return self._resolve_payment(found, entries)
        return self._resolve_operation(found, entries)

    def _too_early(self, processor: Processor, trail: str, kind: str) -> bool:
        """Whether the last request sent under this reference may still be on its way: asking now could
        find nothing where a charge is about to land. The retries wait for the same moment."""
        latest = max((claim.started_at for claim in self.claims_of(trail, kind)), default=None)
        return latest is not None and self.now() < latest + landing_time(processor.timeouts)

    def _resolve_payment(self, found: status_sync.Unresolved, entries: list[LedgerEntry]) -> Resolved:
        payment = entries[0]
        processor = self.processor_for(payment.ProcessorID)
        recorder = self.recorder_for(payment.TransactionID, processor)
        reversing = next((entry for entry in entries if entry.Status == ledger.REVERSING), None)
        if reversing is not None:
            return self._reverse(found, entries, reversing, processor, recorder)
        if self._too_early(processor, payment.TransactionID, SALE_ATTEMPT):
            return Resolved(found.transaction_id, None, "NOT_YET", Detail=_SENT_RECENTLY)
        try:
            lookup = self._ask(processor, recorder, payment.TransactionID, payment.CreatedAt)
            kind: SaleKind = "authorization" if payment.Capture == "manual" else "sale"
            expected = ExpectedSale(
                payment.TransactionID, Decimal(payment.Amount), payment.Currency, payment.CardLast4, kind
            )
            result = processor.sale_found(lookup, expected)
        except ProcessorTimeout as unclear:
            return self._left(found, recorder, f"the processor's answer does not settle it: {unclear}")
        outcome = self.normalize(payment.ProcessorID, result) if result is not None else None
        resolution = status_sync.resolution_for(found, approved_at_processor=_approved(outcome))
        if resolution == "REVERSE":
            assert outcome is not None
            written = self._append(
                found,
                self._entry(
                    payment,
                    ledger.REVERSING,
                    resolution,
                    OperationID=reversal_reference(payment.TransactionID),
                    ProcessorTransactionID=outcome.ProcessorTransactionID,
                    ApprovalCode=outcome.ApprovalCode,
                    ReasonMessage="approved by the processor after the payment ended failed; reversing it",
                ),
                # Another run got there first: its REVERSING is ours to carry on; its NOT_CHARGED (it asked
                # before the charge was listed) is final for the ledger, and the mismatch is reconciliation's.
                until=lambda entries: next(
                    (e for e in _own(entries) if e.Status == ledger.REVERSING or e.ReasonCode == ledger.NOT_CHARGED),
                    None,
                ),
            )
            if written.Status != ledger.REVERSING:
                return Resolved(found.transaction_id, None, "ALREADY_RESOLVED", Calls=_calls(recorder))
            return self._reverse(found, self.ledger.entries(payment.TransactionID), written, processor, recorder)
        if resolution == "COMPLETE" and outcome is not None:
            status = (
                (ledger.AUTHORIZED if payment.Capture == "manual" else ledger.SUCCESS)
                if outcome.Status == APPROVED
                else ledger.DECLINED
            )
            entry = self._entry(
                payment,
                status,
                resolution,
                ProcessorTransactionID=outcome.ProcessorTransactionID,
                ApprovalCode=outcome.ApprovalCode,
                ReasonCode=outcome.ReasonCode if outcome.Status == DECLINED else None,
                ReasonMessage=outcome.ReasonMessage if outcome.Status == DECLINED else None,
            )
        elif resolution == "FAIL_NOT_CHARGED" and outcome is not None and outcome.Status == DECLINED:
            entry = self._entry(
                payment,
                ledger.DECLINED,
                "COMPLETE",
                ProcessorTransactionID=outcome.ProcessorTransactionID,
                ReasonCode=outcome.ReasonCode,
                ReasonMessage=outcome.ReasonMessage,
            )
        else:
            entry = self._not_charged(payment, ledger.FAILED, resolution)
        written = self._append(found, entry)
        return self._done(found, written, recorder)

    def _reverse(
        self,
        found: status_sync.Unresolved,
        entries: list[LedgerEntry],
        reversing: LedgerEntry,
        processor: Processor,
        recorder: CallRecorder,
    ) -> Resolved:
        """Give back the charge REVERSING names, exactly once: a void while its batch is open, a return of
        the whole amount once settled, decided by asking just before each send (a batch can close
        between two runs). Whatever an earlier run sent under the reversal's reference is asked for
        first, as a void or as a return, and adopted."""
        payment = entries[0]
        reference = reversing.OperationID or reversal_reference(payment.TransactionID)

        def instruction(by_void: bool) -> OperationInstruction:
            return OperationInstruction(
                operation_id=reference,
                kind="void" if by_void else "refund",
                processor_transaction_id=reversing.ProcessorTransactionID or "",
                amount=None if by_void else Decimal(reversing.Amount),
                currency=reversing.Currency,
                of_authorization=payment.Capture == "manual",
            )

        chosen: list[OperationInstruction] = []

        def adopt(lookup: ProcessorCall) -> dict[str, str] | None:
            unclear: ProcessorTimeout | None = None
            for candidate in (instruction(True), instruction(False)):
                try:
                    result = processor.operation_found(lookup, candidate)
                except ProcessorTimeout as error:  # listed, but not as this kind: try the other
                    unclear = error
                    continue
                if result is not None:
                    chosen.append(candidate)
                    return result
            if unclear is not None:
                raise unclear
            return None

        def prepare() -> OperationInstruction:
            if payment.Capture == "manual":
                return instruction(True)  # an authorization is in no batch: it is released
            call, settled = processor.settlement_of(reversing.ProcessorTransactionID or "")
            recorder.record(call)
            return instruction(not settled)

        def send(prepared: OperationInstruction) -> ProcessorCall:
            chosen.append(prepared)
            return processor.send_operation(prepared)

        try:
            sent = send_once(
                processor=processor,
                reference=reference,
                attempts=self.attempts_for(payment.TransactionID, lambda: _sealed_reversal(reversing)),
                recorder=recorder,
                retried=False,
                adopt=adopt,
                prepare=prepare,
                send=send,
                seconds_left=self.seconds_left,
                sleep=self.sleep,
                clock=self.now,
                calls_after_wait=3,  # the lookup, the settlement question, the reversal
                rejected_resend_is_unknown=True,
            )
        except ProcessorTimeout as unknown:
            return self._left(found, recorder, f"the reversal's outcome is unknown; the next run asks: {unknown}")
        except ProcessorRejected:
            return self._left(found, recorder, "the processor refused the reversal")
        outcome = self.normalize(payment.ProcessorID, sent.result)
        if outcome.Status != APPROVED:
            return self._left(found, recorder, f"the processor did not approve the reversal ({outcome.ReasonCode})")
        entry = self._entry(
            payment,
            ledger.REVERSED,
            "REVERSE",
            OperationID=reference,
            ProcessorTransactionID=outcome.ProcessorTransactionID,
            ApprovalCode=outcome.ApprovalCode,
            ReasonCode=BY_VOID if chosen[-1].kind == "void" else BY_RETURN,
            Amount=reversing.Amount,
        )
        written = self._append(
            found, entry, until=lambda entries: next((e for e in entries if e.Status == ledger.REVERSED), None)
        )
        return self._done(found, written, recorder)

    def _resolve_operation(self, found: status_sync.Unresolved, entries: list[LedgerEntry]) -> Resolved:
        operation_id = found.operation_id or ""
        mine = operation_entries(entries, operation_id)
        initiated = mine[0]
        parsed = operations.parse_status(initiated.Status)
        assert parsed is not None
        payment = next(entry for entry in entries if entry.is_terminal)
        facts = OperationFacts(
            Operation=parsed[0],
            OperationID=operation_id,
            TransactionID=found.transaction_id,
            Amount=initiated.Amount,
            Currency=initiated.Currency,
            ProcessorID=initiated.ProcessorID,
            ProcessorTransactionID=payment.ProcessorTransactionID or "",
            OfAuthorization=of_authorization(entries, operation_id),
        )
        processor = self.processor_for(facts.ProcessorID)
        if self._too_early(processor, facts.audit_partition, OPERATION_ATTEMPT):
            return Resolved(found.transaction_id, operation_id, "NOT_YET", Detail=_SENT_RECENTLY)
        recorder = self.recorder_for(facts.audit_partition, processor)
        try:
            lookup = self._ask(processor, recorder, operation_id, initiated.CreatedAt)
            result = processor.operation_found(lookup, instruction_of(facts))
        except ProcessorTimeout as unclear:
            return self._left(found, recorder, f"the processor's answer does not settle it: {unclear}")
        outcome = self.normalize(facts.ProcessorID, result) if result is not None else None
        resolution = status_sync.resolution_for(found, approved_at_processor=_approved(outcome))
        fields: dict[str, Any] = {"OperationID": operation_id, "Amount": initiated.Amount}
        if outcome is not None and outcome.Status == APPROVED:
            status = operations.status(facts.Operation, operations.SUCCESS)
            fields |= {"ProcessorTransactionID": outcome.ProcessorTransactionID, "ApprovalCode": outcome.ApprovalCode}
        elif outcome is not None and outcome.Status == DECLINED and found.why == "PENDING_PAST_DEADLINE":
            status, resolution = operations.status(facts.Operation, operations.DECLINED), "COMPLETE"
            fields |= {"ReasonCode": outcome.ReasonCode, "ReasonMessage": outcome.ReasonMessage}
        else:
            status = operations.status(facts.Operation, operations.FAILED)
            fields |= {"ReasonCode": ledger.NOT_CHARGED, "ReasonMessage": _NOT_CHARGED_MESSAGE}
        written = self._append(found, self._entry(initiated, status, resolution, **fields))
        return self._done(found, written, recorder)

    def _ask(self, processor: Processor, recorder: CallRecorder, reference: str, created_at: str) -> ProcessorCall:
        since = (status_sync._time(created_at) - dt.timedelta(days=1)).date()  # the processor's day may lag ours
        lookup = ask_before_resending(processor, reference, since)
        recorder.record(lookup)
        return lookup

    def _unresolved(
        self, entries: list[LedgerEntry], transaction_id: str, operation_id: str | None, deadline: dt.timedelta
    ) -> status_sync.Unresolved | None:
        found = status_sync.unresolved_in(transaction_id, entries, now=self.now(), pending_deadline=deadline)
        return next((item for item in found if item.operation_id == operation_id), None)

    def _append(
        self,
        found: status_sync.Unresolved,
        entry: LedgerEntry,
        until: Callable[[list[LedgerEntry]], LedgerEntry | None] | None = None,
    ) -> LedgerEntry:
        """Append while it is still unresolved; once resolved (by this run's earlier attempt, or by the
        execution itself), the entry that ended it is returned and nothing is written."""

        def written_already(entries: list[LedgerEntry]) -> LedgerEntry | None:
            if until is not None:
                return until(entries)
            reversing = next((e for e in entries if e.Status == ledger.REVERSING), None)
            if found.operation_id is None and reversing is not None:
                return reversing  # another run is giving the charge back: nothing else ends it now
            if self._unresolved(entries, found.transaction_id, found.operation_id, dt.timedelta(0)) is None:
                ending = operation_entries(entries, found.operation_id) if found.operation_id else _own(entries)
                return ending[-1]
            return None

        return append_next(self.ledger, entry, written_already)

    def _entry(self, base: LedgerEntry, status: str, resolution: str, **fields: Any) -> LedgerEntry:
        return LedgerEntry(
            TransactionID=base.TransactionID,
            EntryNumber=0,  # set by append_next
            Status=status,
            SecureToken="",  # set by append_next
            Amount=fields.pop("Amount", base.Amount),
            Currency=base.Currency,
            ProcessorID=base.ProcessorID,
            ExecutionArn=self.execution_arn,
            CreatedAt=ledger.now_iso(),
            Capture=base.Capture if operations.parse_status(status) is None else None,
            Resolution=resolution,
            **fields,
        )

    def _not_charged(self, payment: LedgerEntry, status: str, resolution: str) -> LedgerEntry:
        return self._entry(
            payment, status, resolution, ReasonCode=ledger.NOT_CHARGED, ReasonMessage=_NOT_CHARGED_MESSAGE
        )

    def _left(self, found: status_sync.Unresolved, recorder: CallRecorder, detail: str) -> Resolved:
        return Resolved(
            found.transaction_id, found.operation_id, "LEFT_FOR_AN_OPERATOR", Detail=detail, Calls=_calls(recorder)
        )

    def _done(
        self,
        found: status_sync.Unresolved,
        written: LedgerEntry,
        recorder: CallRecorder,
    ) -> Resolved:
        if written.Status == ledger.REVERSING:
            return Resolved(found.transaction_id, None, "NOT_YET", Detail="another run is reversing the charge")
        return Resolved(
            found.transaction_id,
            found.operation_id,
            "RESOLVED",
            Resolution=written.Resolution,
            Status=written.Status,
            Calls=_calls(recorder),
        )


_NOT_CHARGED_MESSAGE = "the processor holds no approval under this reference: no money moved"
_SENT_RECENTLY = "a request under this reference may still be on its way to the processor; the next run asks"
_STOPPED_RECENTLY = "its execution stopped moments ago; a step it started may still be at work"


def _sealed_reversal(reversing: LedgerEntry) -> dict[str, Any]:
    return {"Operation": "reversal", "Amount": reversing.Amount, "Currency": reversing.Currency}


def _approved(outcome: ProcessorOutcome | None) -> bool:
    return outcome is not None and outcome.Status == APPROVED


def _own(entries: list[LedgerEntry]) -> list[LedgerEntry]:
    return [entry for entry in entries if operations.parse_status(entry.Status) is None]


def _calls(recorder: CallRecorder) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = ChargeResult(
        {}, recorder.calls, 0, persisted=frozenset(recorder.persisted)
    ).to_state()["Calls"]
    return calls


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
