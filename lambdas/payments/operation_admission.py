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
    """The operation's INITIATED entry, appended; OperationRefused (nothing written) if the history forbids it.

    A retried admission of the same operation (its answer was lost) finds its own entry and returns it.
    """
    for _ in range(MAX_RACES):
        entries = repository.entries(request.TransactionID)
        mine = next((e for e in entries if e.OperationID == request.OperationID), None)
        if mine is not None:
            if mine.ExecutionArn != execution_arn:
                raise OperationRefused("DUPLICATE_OPERATION_ID", "this OperationID was used by another execution")
            return mine
        balances = operations.balances_of(history_of(entries))
        currency = entries[0].Currency if entries else "USD"  # no payment: refused before currency matters
        amount = operations.admit(request, balances, payment_found=bool(entries), currency=currency)
        entry = _initiated(entries, request, amount, execution_arn)
        try:
            return repository.append_entry(entry)
        except EntryAlreadyExists:
            continue  # another writer appended first: judge again against the history as it is now
    raise OperationRefused("LEDGER_BUSY", f"the payment's ledger changed {MAX_RACES} times while admitting")


def _initiated(entries: list[LedgerEntry], request: OperationRequest, amount: Decimal, arn: str) -> LedgerEntry:
    payment = entries[0]
    return LedgerEntry(
        TransactionID=request.TransactionID,
        EntryNumber=max(e.EntryNumber for e in entries) + 1,
        Status=operations.status(request.Operation, operations.INITIATED),
        SecureToken=payment.SecureToken,
        Amount=f"{amount}",
        Currency=payment.Currency,
        ProcessorID=payment.ProcessorID,
        ExecutionArn=arn,
        CreatedAt=ledger.now_iso(),
        OperationID=request.OperationID,
    )
