"""An operation's first ledger entry: admitted against the payment's history and appended in one step.

The history is read consistently, the operation judged against it (payments.operations.admit),
and its INITIATED entry appended at the next entry number, on condition that the number is free.
If another writer took that number first, the history has changed: it is read again and the
operation judged again, so two operations can never both be admitted against the same history.
"""

from __future__ import annotations

from decimal import Decimal

from payments import ledger, operations
from payments.ledger import EntryAlreadyExists, LedgerEntry, LedgerRepository
from payments.operations import OperationRefused, OperationRequest

# Each lost race is another writer's entry appended: a payment sees a handful of operations at most.
MAX_RACES = 20


def history_of(entries: list[LedgerEntry]) -> list[operations.HistoryEntry]:
    return [operations.HistoryEntry(e.Status, e.Amount, e.OperationID, e.ReasonCode) for e in entries]


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
            if mine.ExecutionArn != execution_arn:
                raise OperationRefused("DUPLICATE_OPERATION_ID", "this OperationID was used by another execution")
            if mine.Status == operations.status(request.Operation, operations.DECLINED):
                raise OperationRefused(mine.ReasonCode or "REFUSED", mine.ReasonMessage or "refused")
            return mine
        balances = operations.balances_of(history_of(entries))
        currency = entries[0].Currency if entries else None
        try:
            amount = operations.admit(request, balances, payment_found=bool(entries), currency=currency)
            entry = _entry(entries, request, operations.INITIATED, amount, execution_arn)
        except OperationRefused as refusal:
            if not entries:
                raise  # no payment, no ledger of it to write to
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


def _entry(
    entries: list[LedgerEntry],
    request: OperationRequest,
    stage: str,
    amount: Decimal,
    arn: str,
    refusal: OperationRefused | None = None,
) -> LedgerEntry:
    payment = entries[0]
    return LedgerEntry(
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
        ReasonCode=refusal.reason if refusal else None,
        ReasonMessage=refusal.message if refusal else None,
    )
