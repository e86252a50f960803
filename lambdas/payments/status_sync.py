"""Status sync, the decision half: which payments and operations are unresolved, and what resolves each.

A payment or an operation is unresolved when its ledger cannot say what happened to the money:
it ended FAILED with its outcome unknown (PROCESSOR_OUTCOME_UNKNOWN, or for an operation any failure
after which a request may have left), or it is still INITIATED or PENDING past a deadline (its
execution stopped for good). What resolves it is decided by what the processor holds under its
reference (TransactionID or OperationID), asked with the same lookup the retries use:

| unresolved                          | an approval at the processor | nothing there      |
|-------------------------------------|------------------------------|--------------------|
| payment PENDING past the deadline   | COMPLETE                     | FAIL_NOT_CHARGED   |
| payment FAILED, outcome unknown     | REVERSE                      | RECORD_NOT_CHARGED |
| operation PENDING past the deadline | COMPLETE                     | FAIL_NOT_CHARGED   |
| operation FAILED, outcome unknown   | RECORD_SUCCESS               | RECORD_NOT_CHARGED |

COMPLETE writes the terminal entry it would have written; REVERSE voids or returns a charge whose
payment the caller was told had failed; RECORD_SUCCESS says that an operation's money did move.
Every resolution is a new ledger entry (the ledger stays append-only); the workflow that applies
them, and the reversal, are still to be built (docs/architecture.md#status-sync-and-reconciliation).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

from payments import ledger, operations

Why = Literal["OUTCOME_UNKNOWN", "PENDING_PAST_DEADLINE"]
Resolution = Literal["COMPLETE", "REVERSE", "RECORD_SUCCESS", "FAIL_NOT_CHARGED", "RECORD_NOT_CHARGED"]
UNKNOWN_PAYMENT_REASONS = frozenset({"PROCESSOR_OUTCOME_UNKNOWN"})
_ENDED = (operations.SUCCESS, operations.DECLINED, operations.FAILED)


class Entry(Protocol):
    @property
    def Status(self) -> str: ...  # noqa: N802 - the ledger's attribute names

    @property
    def OperationID(self) -> str | None: ...  # noqa: N802

    @property
    def ReasonCode(self) -> str | None: ...  # noqa: N802

    @property
    def CreatedAt(self) -> str: ...  # noqa: N802


@dataclass(frozen=True)
class Unresolved:
    transaction_id: str
    operation_id: str | None  # None: the payment itself
    why: Why
    since: dt.datetime  # when its last entry was written

    @property
    def reference(self) -> str:
        """What the processor keeps it under (Converge: ssl_merchant_txn_id)."""
        return self.operation_id or self.transaction_id


def unresolved_in(
    transaction_id: str, entries: Iterable[Entry], *, now: dt.datetime, pending_deadline: dt.timedelta
) -> list[Unresolved]:
    """The payment's and its operations' unresolved endings, from its ledger entries in order."""
    found: list[Unresolved] = []
    history = list(entries)
    own = [e for e in history if operations.parse_status(e.Status) is None]
    if own:
        last = own[-1]
        if last.Status == ledger.FAILED and last.ReasonCode in UNKNOWN_PAYMENT_REASONS:
            found.append(Unresolved(transaction_id, None, "OUTCOME_UNKNOWN", _time(last.CreatedAt)))
        elif last.Status not in ledger.TERMINAL_STATUSES and now - _time(last.CreatedAt) > pending_deadline:
            found.append(Unresolved(transaction_id, None, "PENDING_PAST_DEADLINE", _time(last.CreatedAt)))
    by_operation: dict[str, list[Entry]] = {}
    for entry in history:
        if entry.OperationID and operations.parse_status(entry.Status) is not None:
            by_operation.setdefault(entry.OperationID, []).append(entry)
    for operation_id, trail in by_operation.items():
        last = trail[-1]
        stage = operations.parse_status(last.Status)[1]  # type: ignore[index]
        if stage == operations.FAILED and last.ReasonCode not in ledger.NOTHING_SENT_REASONS:
            found.append(Unresolved(transaction_id, operation_id, "OUTCOME_UNKNOWN", _time(last.CreatedAt)))
        elif stage not in _ENDED and now - _time(last.CreatedAt) > pending_deadline:
            found.append(Unresolved(transaction_id, operation_id, "PENDING_PAST_DEADLINE", _time(last.CreatedAt)))
    return found


def resolution_for(unresolved: Unresolved, *, approved_at_processor: bool) -> Resolution:
    """What settles it, given whether the processor holds an approval under its reference."""
    if not approved_at_processor:
        return "FAIL_NOT_CHARGED" if unresolved.why == "PENDING_PAST_DEADLINE" else "RECORD_NOT_CHARGED"
    if unresolved.why == "PENDING_PAST_DEADLINE":
        return "COMPLETE"
    return "REVERSE" if unresolved.operation_id is None else "RECORD_SUCCESS"


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
