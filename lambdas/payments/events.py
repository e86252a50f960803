"""Ledger entries as events for upstream services: every terminal entry, payment or operation, is one event.

The ledger is the outbox: the stream consumer (lambdas/ledger_events) turns each terminal entry its
table's stream shows into one event on the `payments` bus, so an event exists if and only if its
entry does. The detail is built from an allowlist of the entry's fields: never the SecureToken,
never anything of the card but its brand and last four. `EventID` (<TransactionID>#<EntryNumber>)
names the entry, so a consumer can tell a redelivery from a new event.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from payments import ledger, operations

EVENT_SOURCE = "payments.ledger"
# Each terminal Status, and the event it becomes. An operation's refusal or failure is a
# PaymentDeclined or PaymentFailed of that operation (its Operation and OperationID say which).
DETAIL_TYPES = {
    ledger.SUCCESS: "PaymentSucceeded",
    ledger.AUTHORIZED: "PaymentAuthorized",
    ledger.DECLINED: "PaymentDeclined",
    ledger.FAILED: "PaymentFailed",
    operations.status("capture", operations.SUCCESS): "PaymentCaptured",
    operations.status("void", operations.SUCCESS): "PaymentVoided",
    operations.status("refund", operations.SUCCESS): "PaymentRefunded",
    **{operations.status(kind, operations.DECLINED): "PaymentDeclined" for kind in operations.KINDS},
    **{operations.status(kind, operations.FAILED): "PaymentFailed" for kind in operations.KINDS},
}
# An entry written by status sync or reconciliation (it carries a Resolution) is a PaymentReconciled,
# whatever its Status: upstream learns that the payment's record changed after the fact, and how.
# PAYMENT-REVERSING is no event: the reversal it announces is one once PAYMENT-REVERSED.
RECONCILED = "PaymentReconciled"
RECONCILED_STATUSES = tuple(sorted({*DETAIL_TYPES, ledger.REVERSED, ledger.SETTLED} - {ledger.REVERSING}))
RESOLUTIONS = ("COMPLETE", "REVERSE", "RECORD_SUCCESS", "FAIL_NOT_CHARGED", "RECORD_NOT_CHARGED", "SETTLED")
EVENT_TYPES = tuple(sorted({*DETAIL_TYPES.values(), RECONCILED}))
# What of an entry an event carries, and under which name; nothing else leaves the ledger.
_COPIED = (
    "TransactionID",
    "OperationID",
    "Status",
    "Amount",
    "Currency",
    "ProcessorID",
    "ProcessorTransactionID",
    "ApprovalCode",
    "Captured",
    "Refunded",
)


def detail_type_of(status: str, resolution: str | None = None) -> str | None:
    if resolution is not None:
        return RECONCILED if status in RECONCILED_STATUSES else None
    return DETAIL_TYPES.get(status)


def event_of(entry: dict[str, Any]) -> dict[str, Any] | None:
    """The event of one ledger entry (plain values, as the stream's NewImage deserializes), or None
    when the entry is not terminal (INITIATED, PENDING, REVERSING)."""
    status = str(entry.get("Status", ""))
    resolution = entry.get("Resolution")
    detail_type = detail_type_of(status, str(resolution) if resolution else None)
    if detail_type is None:
        return None
    detail: dict[str, Any] = {"EventID": f"{entry['TransactionID']}#{int(entry['EntryNumber'])}"}
    detail |= {name: _plain(entry[name]) for name in _COPIED if entry.get(name) is not None}
    detail["EntryNumber"] = int(entry["EntryNumber"])
    detail["OccurredAt"] = str(entry["CreatedAt"])
    parsed = operations.parse_status(status)
    if parsed is not None:
        detail["Operation"] = parsed[0]
    if resolution:
        detail["Resolution"] = str(resolution)
    if entry.get("ReasonCode"):
        detail["Reason"] = {"Code": str(entry["ReasonCode"]), "Message": str(entry.get("ReasonMessage") or "")}
    if entry.get("CardBrand") and entry.get("CardLast4"):
        detail["Card"] = {"Brand": str(entry["CardBrand"]), "Last4": str(entry["CardLast4"])}
    return {"Source": EVENT_SOURCE, "DetailType": detail_type, "Detail": detail}


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal | int) else value
