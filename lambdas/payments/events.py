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
EVENT_TYPES = tuple(sorted(set(DETAIL_TYPES.values())))
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


def detail_type_of(status: str) -> str | None:
    return DETAIL_TYPES.get(status)


def event_of(entry: dict[str, Any]) -> dict[str, Any] | None:
    """The event of one ledger entry (plain values, as the stream's NewImage deserializes), or None
    when the entry is not terminal (INITIATED, PENDING)."""
    status = str(entry.get("Status", ""))
    detail_type = detail_type_of(status)
    if detail_type is None:
        return None
    detail: dict[str, Any] = {"EventID": f"{entry['TransactionID']}#{int(entry['EntryNumber'])}"}
    detail |= {name: _plain(entry[name]) for name in _COPIED if entry.get(name) is not None}
    detail["EntryNumber"] = int(entry["EntryNumber"])
    detail["OccurredAt"] = str(entry["CreatedAt"])
    parsed = operations.parse_status(status)
    if parsed is not None:
        detail["Operation"] = parsed[0]
    if entry.get("ReasonCode"):
        detail["Reason"] = {"Code": str(entry["ReasonCode"]), "Message": str(entry.get("ReasonMessage") or "")}
    if entry.get("CardBrand") and entry.get("CardLast4"):
        detail["Card"] = {"Brand": str(entry["CardBrand"]), "Last4": str(entry["CardLast4"])}
    return {"Source": EVENT_SOURCE, "DetailType": detail_type, "Detail": detail}


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal | int) else value
