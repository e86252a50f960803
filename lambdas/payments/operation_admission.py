"""An operation's first ledger entry: admitted against the payment's history and appended in one step.

The history is read consistently, the operation judged against it (payments.operations.admit),
and its INITIATED entry appended at the next entry number, on condition that the number is free.
If another writer took that number first, the history has changed: it is read again and the
operation judged again, so two operations can never both be admitted against the same history.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from payments import ledger, operations
from payments.ledger import EntryAlreadyExists, LedgerEntry, LedgerRepository
from payments.operation_recording import facts_of, history_of, operation_response, with_balances
from payments.operation_state import ADMITTED
from payments.operations import InvalidOperationRequest, OperationRefused, OperationRequest

# Each lost race is another writer's entry appended: a payment sees a handful of operations at most.
MAX_RACES = 20


def admission_step(
    repository: LedgerRepository, raw_request: Any, execution_name: str, execution_arn: str
) -> dict[str, Any]:
    """AdmitOperation: the state the later steps read, or the recorded refusal (the operation ends there).

    Raises InvalidOperationRequest for a malformed input, OperationRefused for a refusal with no
    ledger to record it in (an unknown payment, an OperationID used by another execution).
    """
    request = operations.parse_operation(raw_request)
    if request.OperationID != execution_name:
        raise InvalidOperationRequest("OperationID", "must be the name of the execution that runs the operation")
    try:
        initiated = admit_operation(repository, request, execution_arn)
    except OperationRefused as refusal:
        entries = repository.entries(request.TransactionID)
        declined = next((e for e in entries if e.OperationID == request.OperationID), None)
        # Nothing of this request recorded (no payment, a payment still running, another request): raise.
        if declined is None or not _records(declined, request, refusal, execution_arn):
            raise
        return {"Admission": {"Status": declined.Status, "Response": operation_response(declined)}}
    facts = facts_of(request, initiated, repository.entries(request.TransactionID))
    return {
        "Operation": facts.to_dict(),
        "Ledger": {"LastEntry": initiated.EntryNumber},
        "Admission": {"Status": ADMITTED},
    }


def admit_operation(repository: LedgerRepository, request: OperationRequest, execution_arn: str) -> LedgerEntry:
    """The operation's INITIATED entry, appended; or OperationRefused, nothing sent.

    A refusal of an operation on a payment the ledger holds is recorded too, as the operation's one
    entry, `<KIND>-DECLINED` with the refusal's reason: the operation ends there. A retried admission
    of the same operation (its answer was lost) finds its own entry: the INITIATED one is returned,
    the recorded refusal raised again.
    """
    for _ in range(MAX_RACES):
        entries = repository.entries(request.TransactionID)
        mine = next((e for e in entries if e.OperationID == request.OperationID), None)
        if mine is not None:
            # The same name again gives the same execution ARN (after Step Functions forgets an execution,
            # a new one may take its name): the request must be the same too.
            if mine.ExecutionArn != execution_arn or not _same_request(mine, request):
                raise OperationRefused("DUPLICATE_OPERATION_ID", "this OperationID was used for another operation")
            if mine.Status == operations.status(request.Operation, operations.DECLINED):
                raise OperationRefused(mine.ReasonCode or "REFUSED", mine.ReasonMessage or "refused")
            return mine
        balances = operations.balances_of(history_of(entries))
        currency = entries[0].Currency if entries else None
        try:
            amount = operations.admit(request, balances, payment_found=bool(entries), currency=currency)
            entry = _entry(entries, request, operations.INITIATED, amount, execution_arn)
        except OperationRefused as refusal:
            if not entries or balances.payment_status is None:
                # No payment, no ledger of it to write to; or a payment still running, whose own entries
                # come next: nothing may take their numbers.
                raise
            amount = request.Amount if request.Amount is not None else Decimal(0)
            entry = _entry(entries, request, operations.DECLINED, amount, execution_arn, refusal)
        try:
            written = repository.append_entry(entry)
        except EntryAlreadyExists:
            continue  # another writer appended first: judge again against the history as it is now
        if written.Status != operations.status(request.Operation, operations.INITIATED):
            raise OperationRefused(written.ReasonCode or "REFUSED", written.ReasonMessage or "refused")
        return written
    raise OperationRefused("LEDGER_BUSY", f"the payment's ledger changed {MAX_RACES} times while admitting")


def _records(entry: LedgerEntry, request: OperationRequest, refusal: OperationRefused, execution_arn: str) -> bool:
    """Whether `entry` is this execution's recorded refusal of this request, for this reason."""
    return (
        entry.ExecutionArn == execution_arn
        and entry.Status == operations.status(request.Operation, operations.DECLINED)
        and entry.ReasonCode == refusal.reason
    )


def _same_request(entry: LedgerEntry, request: OperationRequest) -> bool:
    """Whether the operation's first entry was written for this request: same kind, same amount if given."""
    parsed = operations.parse_status(entry.Status)
    same_kind = parsed is not None and parsed[0] == request.Operation
    return same_kind and (request.Amount is None or Decimal(entry.Amount) == request.Amount)


def _entry(
    entries: list[LedgerEntry],
    request: OperationRequest,
    stage: str,
    amount: Decimal,
    arn: str,
    refusal: OperationRefused | None = None,
) -> LedgerEntry:
    payment = entries[0]
    entry = LedgerEntry(
        TransactionID=request.TransactionID,
        EntryNumber=max(e.EntryNumber for e in entries) + 1,
        Status=operations.status(request.Operation, stage),
        SecureToken=payment.SecureToken,
        Amount=f"{amount}",
        Currency=payment.Currency,
        ProcessorID=payment.ProcessorID,
        ExecutionArn=arn,
        CreatedAt=ledger.now_iso(),
        OperationID=request.OperationID,
        CardBrand=payment.CardBrand,  # the payment's card facts, for the operation's event
        CardLast4=payment.CardLast4,
        ReasonCode=refusal.reason if refusal else None,
        ReasonMessage=refusal.message if refusal else None,
    )
    return with_balances(entries, entry)
