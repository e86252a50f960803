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
Every resolution is a new ledger entry (the ledger stays append-only), applied by
payments.status_resolution (docs/architecture.md#status-sync-and-reconciliation).
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
    def TransactionID(self) -> str: ...  # noqa: N802 - the ledger's attribute names

    @property
    def Status(self) -> str: ...  # noqa: N802

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
    own = [e for e in history if operations.parse_status(e.Status) is None and e.Status != ledger.SETTLED]
    ended = next((e for e in own if e.Status in ledger.TERMINAL_STATUSES), None)
    if ended is None and own and now - _time(own[-1].CreatedAt) > pending_deadline:
        found.append(Unresolved(transaction_id, None, "PENDING_PAST_DEADLINE", _time(own[-1].CreatedAt)))
    elif ended is not None and ended.Status == ledger.FAILED and ended.ReasonCode in UNKNOWN_PAYMENT_REASONS:
        # Resolved by a later FAILED entry NOT_CHARGED, or by a reversal the processor approved. A
        # reversal on its way (REVERSING) leaves it unresolved: the next run sends or finds it.
        resolved = any(e.Status == ledger.REVERSED or e.ReasonCode == ledger.NOT_CHARGED for e in own)
        if not resolved:
            found.append(Unresolved(transaction_id, None, "OUTCOME_UNKNOWN", _time(own[-1].CreatedAt)))
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


def candidates_in(rows: Iterable[Entry], *, now: dt.datetime, pending_deadline: dt.timedelta) -> list[Unresolved]:
    """The unresolved endings the EntriesByStatus index shows (rows carry TransactionID too), grouped by
    payment in time order. A row set can miss a payment's older entries: the resolving step decides on
    the payment's whole history, read again."""
    by_payment: dict[str, list[Entry]] = {}
    for row in sorted(rows, key=lambda row: row.CreatedAt):
        by_payment.setdefault(row.TransactionID, []).append(row)
    return [
        found
        for transaction_id, history in by_payment.items()
        for found in unresolved_in(transaction_id, history, now=now, pending_deadline=pending_deadline)
    ]


@dataclass(frozen=True)
class SyncRequest:
    """What one sync run looks at: entries of the last `lookback`; pending ones older than `pending_deadline`."""

    pending_deadline: dt.timedelta
    lookback: dt.timedelta


# A payment or operation execution times out after an hour (its TimeoutSeconds): past that, and with
# its execution no longer running, nothing but status sync will end it.
DEFAULT_PENDING_DEADLINE = dt.timedelta(minutes=65)
DEFAULT_LOOKBACK = dt.timedelta(hours=48)
_LIMITS = {"PendingDeadlineSeconds": (0, 7 * 24 * 3600), "LookbackHours": (1, 31 * 24)}


class InvalidSyncRequest(ValueError):
    """A sync run's input is malformed: `field` names which (the value is never echoed)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field} {message}")
        self.field = field


def parse_sync_request(event: object) -> SyncRequest:
    """A run's input: {} (the schedule's), or bounds an operator sets, each an integer in range."""
    if not isinstance(event, dict):
        raise InvalidSyncRequest("[input]", "must be a JSON object")
    if set(event) - set(_LIMITS):
        raise InvalidSyncRequest("[unexpected field]", "is not part of a sync request")
    for name, (low, high) in _LIMITS.items():
        value = event.get(name)
        if value is not None and (type(value) is not int or not low <= value <= high):
            raise InvalidSyncRequest(name, f"must be a whole number from {low} to {high}")
    deadline = event.get("PendingDeadlineSeconds")
    hours = event.get("LookbackHours")
    return SyncRequest(
        DEFAULT_PENDING_DEADLINE if deadline is None else dt.timedelta(seconds=deadline),
        DEFAULT_LOOKBACK if hours is None else dt.timedelta(hours=hours),
    )
