"""An operation's later ledger entries: PENDING before its processor call, then exactly one terminal entry.

Operations of one payment can run at once (two refunds), so an entry's number is not known in
advance: each is appended at the next free number, conditionally, and a lost slot is simply tried
again at the next one. Each entry is written once per operation: a retried step finds the entry
its execution already wrote and returns it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from payments import ledger, operations
from payments.errors import ChargeRefused, LedgerConflict
from payments.ledger import EntryAlreadyExists, LedgerEntry, LedgerRepository
from payments.operation_state import OperationFacts
from payments.operations import OperationKind, OperationRequest
from payments.recording import FAILURE_REASONS
from payments.state import APPROVED, DECLINED, CaughtError, ProcessorOutcome

MAX_RACES = 20
_TERMINAL_STAGES = (operations.SUCCESS, operations.DECLINED, operations.FAILED)
# The reason on an operation that failed before anything was sent: its hold is released.
NOT_SENT = "NOT_SENT"


def stage_of(entry: LedgerEntry) -> str | None:
    parsed = operations.parse_status(entry.Status)
    return parsed[1] if parsed else None


def facts_of(request: OperationRequest, initiated: LedgerEntry, entries: list[LedgerEntry]) -> OperationFacts:
    """What the later steps need to know, from the admitted entry and the payment's own terminal entry."""
    payment = next(entry for entry in entries if entry.is_terminal)
    return OperationFacts(
        Operation=request.Operation,
        OperationID=request.OperationID,
        TransactionID=request.TransactionID,
        Amount=initiated.Amount,
        Currency=initiated.Currency,
        ProcessorID=initiated.ProcessorID,
        ProcessorTransactionID=payment.ProcessorTransactionID or "",
        OfAuthorization=of_authorization(entries, request.OperationID),
    )


def of_authorization(entries: list[LedgerEntry], operation_id: str) -> bool:
    """Whether the operation found an authorization never captured (a void then releases it): judged
    from the history before its INITIATED entry, as admission judged it."""
    initiated = next(
        (e.EntryNumber for e in entries if e.OperationID == operation_id and stage_of(e) == operations.INITIATED),
        None,
    )
    before = [e for e in entries if initiated is None or e.EntryNumber < initiated]
    balances = operations.balances_of(history_of(before))
    return balances.is_authorization and balances.captured == 0 and balances.held_for_capture == 0


def history_of(entries: list[LedgerEntry]) -> list[operations.HistoryEntry]:
    return [operations.HistoryEntry(e.Status, e.Amount, e.OperationID, e.ReasonCode) for e in entries]


def with_balances(entries: list[LedgerEntry], entry: LedgerEntry) -> LedgerEntry:
    """`entry` carrying the payment's balances once it stands after `entries` (the whole history before
    its number): the conditional put that appends it at that number writes them with it."""
    balances = operations.balances_of(history_of([*entries, entry]))
    return replace(entry, Captured=f"{balances.captured}", Refunded=f"{balances.refunded}")


def operation_entries(entries: list[LedgerEntry], operation_id: str) -> list[LedgerEntry]:
    return [entry for entry in entries if entry.OperationID == operation_id]


def append_once(repository: LedgerRepository, entry: LedgerEntry) -> LedgerEntry:
    """Append `entry` (an entry of one operation) at the next free number, unless its execution already
    wrote this stage, or a terminal entry, for the operation: then that entry is returned.

    A PENDING entry asked for after the operation ended is refused (ChargeRefused): an ended
    operation never goes back to pending, and its processor step must then send nothing.
    """
    operation_id = entry.OperationID or ""
    stage = stage_of(entry)

    def written_already(entries: list[LedgerEntry]) -> LedgerEntry | None:
        mine = operation_entries(entries, operation_id)
        if any(existing.ExecutionArn != entry.ExecutionArn for existing in mine):
            raise LedgerConflict("the ledger holds this OperationID from another execution")
        if not any(stage_of(existing) == operations.INITIATED for existing in mine):
            raise ChargeRefused("the ledger holds no INITIATED entry for this operation; nothing was sent")
        same = next((existing for existing in mine if existing.Status == entry.Status), None)
        if same is not None:
            return same
        ended = next((existing for existing in mine if stage_of(existing) in _TERMINAL_STAGES), None)
        if ended is not None and stage == operations.PENDING:
            raise ChargeRefused("the operation has already ended; nothing was sent")
        return ended

    return append_next(repository, entry, written_already)


def append_next(
    repository: LedgerRepository,
    entry: LedgerEntry,
    written_already: Callable[[list[LedgerEntry]], LedgerEntry | None],
) -> LedgerEntry:
    """Append `entry` after the payment's last entry, carrying its card facts and its balances, unless
    `written_already` finds in the payment's entries the one that stands for it (then that one is
    returned) or raises. A slot taken meanwhile is read again and the next one tried."""
    for _ in range(MAX_RACES):
        entries = repository.entries(entry.TransactionID)
        existing = written_already(entries)
        if existing is not None:
            return existing
        try:
            number = max(e.EntryNumber for e in entries) + 1
            payment = entries[0]  # every entry of a payment carries its SecureToken and card facts
            candidate = replace(
                entry,
                EntryNumber=number,
                SecureToken=payment.SecureToken,
                CardBrand=payment.CardBrand,
                CardLast4=payment.CardLast4,
            )
            return repository.append_entry(with_balances(entries, candidate))
        except EntryAlreadyExists:
            continue
    raise LedgerConflict(f"the payment's ledger changed {MAX_RACES} times while appending an entry")


def _entry(facts: OperationFacts, stage: str, execution_arn: str, **fields: str | None) -> LedgerEntry:
    return LedgerEntry(
        TransactionID=facts.TransactionID,
        EntryNumber=0,  # set by append_once
        Status=operations.status(facts.Operation, stage),
        SecureToken="",  # set by append_once
        Amount=facts.Amount,
        Currency=facts.Currency,
        ProcessorID=facts.ProcessorID,
        ExecutionArn=execution_arn,
        CreatedAt=ledger.now_iso(),
        OperationID=facts.OperationID,
        **fields,
    )


def record_pending(repository: LedgerRepository, facts: OperationFacts, execution_arn: str) -> dict[str, Any]:
    written = append_once(repository, _entry(facts, operations.PENDING, execution_arn))
    return {"EntryNumber": written.EntryNumber, "Status": written.Status}


def record_success(
    repository: LedgerRepository, facts: OperationFacts, outcome: ProcessorOutcome, execution_arn: str
) -> dict[str, Any]:
    if outcome.Status != APPROVED:
        raise ValueError(f"OperationSuccess reached with outcome {outcome.Status}")
    entry = _entry(
        facts,
        operations.SUCCESS,
        execution_arn,
        ProcessorTransactionID=outcome.ProcessorTransactionID,
        ApprovalCode=outcome.ApprovalCode,
    )
    return operation_response(append_once(repository, entry))


def record_unsuccessful(
    repository: LedgerRepository,
    facts: OperationFacts,
    stage: str,
    execution_arn: str,
    *,
    outcome: ProcessorOutcome | None,
    result: dict[str, str] | None,
    failure: CaughtError | None,
    sent: bool,
) -> dict[str, Any]:
    """OperationDeclined and OperationFailed. An approval the processor gave stands whatever failed
    after it: it is recorded as SUCCESS. `sent` says whether a processor call of this operation may
    have left (an attempt is on record): a failure after that leaves the outcome unknown, and the
    operation's hold stays until it is reconciled."""
    approval = _approval_in(facts, outcome, result)
    if approval is not None:
        return record_success(repository, facts, approval, execution_arn)
    code, message = _reason(stage, outcome, failure, sent)
    entry = _entry(
        facts,
        stage,
        execution_arn,
        ProcessorTransactionID=outcome.ProcessorTransactionID if outcome else None,
        ReasonCode=code,
        ReasonMessage=message,
    )
    return operation_response(append_once(repository, entry))


def _approval_in(
    facts: OperationFacts, outcome: ProcessorOutcome | None, result: dict[str, str] | None
) -> ProcessorOutcome | None:
    if outcome is not None:
        return outcome if outcome.Status == APPROVED else None
    if result is not None:
        from payments.processors.registry import normalize

        normalized = normalize(facts.ProcessorID, result)
        return normalized if normalized.Status == APPROVED else None
    return None


def _reason(stage: str, outcome: ProcessorOutcome | None, failure: CaughtError | None, sent: bool) -> tuple[str, str]:
    if stage == operations.DECLINED:
        if failure is not None and failure.Error == "OperationRefused":
            return _refusal_of(failure.Cause)
        if outcome is None or outcome.Status != DECLINED:
            raise ValueError("OperationDeclined reached without a declined outcome or a refusal")
        return outcome.ReasonCode or "DO_NOT_HONOR", outcome.ReasonMessage or "DECLINED"
    if failure is not None:
        code = FAILURE_REASONS.get(failure.Error, "SYSTEM_ERROR")
        message = _message_of(failure)
        if not sent:
            return NOT_SENT, message
        if code not in ledger.NOTHING_SENT_REASONS:
            return "PROCESSOR_OUTCOME_UNKNOWN", message
        return code, message
    if outcome is not None:
        return outcome.ReasonCode or "PROCESSOR_ERROR", outcome.ReasonMessage or "processor error"
    return (NOT_SENT if not sent else "SYSTEM_ERROR"), "the operation failed without a recorded cause"


def _refusal_of(cause: str | None) -> tuple[str, str]:
    """OperationRefused's message is `REASON: message`, from our own code (never caller text)."""
    message = _detail(cause)
    reason, _, text = message.partition(": ")
    return (reason, text) if reason.isupper() and text else ("REFUSED", message or "refused")


def _message_of(failure: CaughtError) -> str:
    detail = _detail(failure.Cause)
    return f"{failure.Error}: {detail}"[:500] if detail else failure.Error


def _detail(cause: str | None) -> str:
    try:
        detail = json.loads(cause or "").get("errorMessage", "")
    except (ValueError, AttributeError):
        detail = ""
    return str(detail)


def operation_response(entry: LedgerEntry) -> dict[str, Any]:
    """What an operation's execution answers, built from its ledger entry: the ledger is the truth."""
    parsed = operations.parse_status(entry.Status)
    kind: OperationKind = parsed[0] if parsed else "refund"
    stage = parsed[1] if parsed else ""
    response: dict[str, Any] = {
        "TransactionID": entry.TransactionID,
        "OperationID": entry.OperationID,
        "Operation": kind,
        "Status": entry.Status,
        "Amount": entry.Amount,
        "Currency": entry.Currency,
        "ProcessorID": entry.ProcessorID,
    }
    if stage == operations.SUCCESS:
        response["ProcessorTransactionID"] = entry.ProcessorTransactionID
        response["ApprovalCode"] = entry.ApprovalCode
    elif stage == operations.DECLINED:
        response["Decline"] = {"Code": entry.ReasonCode, "Message": entry.ReasonMessage}
    elif stage == operations.FAILED:
        response["Failure"] = {"Code": entry.ReasonCode, "Message": entry.ReasonMessage}
    return response
