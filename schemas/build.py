"""`python -m schemas.build [--check]`: write the JSON Schema of each payments event, or check the committed ones.

One file per detail type, schemas/events/<DetailType>.json, describing the event as EventBridge
delivers it (`source`, `detail-type`, `detail`). The detail admits no property it does not name: no
SecureToken, nothing of the card but its brand and last four, can ever validate.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from payments import events, operations

EVENTS_DIR = Path(__file__).resolve().parent / "events"
_AMOUNT = {"type": "string", "pattern": r"^[0-9]{1,8}(\.[0-9]{1,3})?$"}
_ID = {"type": "string", "pattern": r"^[A-Za-z0-9_-]{1,36}$"}
_OPERATION_DETAIL_TYPES = {"PaymentCaptured", "PaymentVoided", "PaymentRefunded"}


def statuses_of(detail_type: str) -> list[str]:
    if detail_type == events.RECONCILED:
        return list(events.RECONCILED_STATUSES)
    return sorted(status for status, kind in events.DETAIL_TYPES.items() if kind == detail_type)


def schema(detail_type: str) -> dict[str, Any]:
    required = ["EventID", "TransactionID", "Status", "Amount", "Currency", "ProcessorID", "EntryNumber", "OccurredAt"]
    if detail_type in _OPERATION_DETAIL_TYPES:
        required += ["OperationID", "Operation"]
    if detail_type == events.RECONCILED:
        required += ["Resolution"]
    detail = {
        "type": "object",
        "additionalProperties": False,
        "required": required,
        "properties": {
            "EventID": {"type": "string", "pattern": r"^[A-Za-z0-9_-]{1,36}#[1-9][0-9]*$"},
            "TransactionID": _ID,
            "OperationID": _ID,
            "Operation": {"enum": list(operations.KINDS)},
            "Status": {"enum": statuses_of(detail_type)},
            "Amount": _AMOUNT,
            "Currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
            "ProcessorID": {"type": "string", "minLength": 1},
            "ProcessorTransactionID": {"type": "string", "minLength": 1},
            "ApprovalCode": {"type": "string"},
            "Captured": _AMOUNT | {"description": "the payment's captured total once this entry stands"},
            "Refunded": _AMOUNT | {"description": "the payment's refunded total once this entry stands"},
            "EntryNumber": {"type": "integer", "minimum": 1},
            "OccurredAt": {"type": "string", "format": "date-time"},
            "Reason": {
                "type": "object",
                "additionalProperties": False,
                "required": ["Code", "Message"],
                "properties": {"Code": {"type": "string", "minLength": 1}, "Message": {"type": "string"}},
            },
            "Card": {
                "type": "object",
                "additionalProperties": False,
                "required": ["Brand", "Last4"],
                "properties": {"Brand": {"type": "string"}, "Last4": {"type": "string", "pattern": "^[0-9]{4}$"}},
            },
        },
    }
    if detail_type == events.RECONCILED:
        detail["properties"]["Resolution"] = {
            "enum": list(events.RESOLUTIONS),
            "description": "what status sync or reconciliation found at the processor and recorded",
        }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://payments.example/schemas/events/{detail_type}.json",
        "title": detail_type,
        "description": f"One terminal ledger entry ({', '.join(statuses_of(detail_type))}) on the payments bus.",
        "type": "object",
        "required": ["source", "detail-type", "detail"],
        "properties": {
            "source": {"const": events.EVENT_SOURCE},
            "detail-type": {"const": detail_type},
            "detail": detail,
        },
    }


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def stale_files(directory: Path = EVENTS_DIR) -> list[str]:
    expected = {f"{name}.json": render(schema(name)) for name in events.EVENT_TYPES}
    present = {path.name for path in directory.glob("*.json")}
    stale = [n for n, text in expected.items() if not (directory / n).exists() or (directory / n).read_text() != text]
    return sorted(stale + sorted(present - set(expected)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m schemas.build", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed schema is out of date")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        for name in stale:
            print(f"schemas/events/{name} differs from the builder's output; run `make schemas`", file=sys.stderr)
        return 1 if stale else 0
    EVENTS_DIR.mkdir(exist_ok=True)
    for name in events.EVENT_TYPES:
        (EVENTS_DIR / f"{name}.json").write_text(render(schema(name)))
        print(f"wrote schemas/events/{name}.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
