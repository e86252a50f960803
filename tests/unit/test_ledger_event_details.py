"""Every terminal ledger entry becomes one event of its detail type, valid against its published JSON
Schema, carrying nothing of the card but its brand and last four; progress entries become none."""

import json

import jsonschema
import pytest

from payments import events
from schemas import build

PAYMENT = {
    "TransactionID": "order-8812-1",
    "Amount": "100.00",
    "Currency": "USD",
    "ProcessorID": "elavon",
    "SecureToken": "AYADeJ-ciphertext-of-the-card",
    "ExecutionArn": "arn:aws:states:us-east-1:123456789012:execution:PaymentWorkflow:order-8812-1",
    "CreatedAt": "2026-11-27T16:00:00.000000Z",
    "CardBrand": "VISA",
    "CardLast4": "1111",
    "PrevHash": "0" * 64,
    "EntryHash": "f" * 64,
}


def entry(number, status, **extra):
    return PAYMENT | {"EntryNumber": number, "Status": status} | extra


TERMINAL = [
    entry(3, "PAYMENT-SUCCESS", ProcessorTransactionID="271126A15-X", ApprovalCode="A12345"),
    entry(3, "PAYMENT-AUTHORIZED", ProcessorTransactionID="271126A15-X", ApprovalCode="A12345", Capture="manual"),
    entry(3, "PAYMENT-DECLINED", ReasonCode="INSUFFICIENT_FUNDS", ReasonMessage="DECLINED: NSF"),
    entry(3, "PAYMENT-FAILED", ReasonCode="PROCESSOR_OUTCOME_UNKNOWN", ReasonMessage="ProcessorTimeout"),
    *(
        entry(6, f"{kind}-SUCCESS", OperationID="order-8812-1-op", Amount="40.00", Captured="40.00", Refunded="0")
        for kind in ("CAPTURE", "VOID", "REFUND")
    ),
    entry(4, "REFUND-DECLINED", OperationID="order-8812-1-r2", ReasonCode="EXCEEDS_REFUNDABLE", ReasonMessage="more"),
    entry(6, "VOID-FAILED", OperationID="order-8812-1-v", ReasonCode="NOT_SENT", ReasonMessage="StorageUnavailable"),
]
# Entries status sync or reconciliation wrote: each a PaymentReconciled, saying how.
RESOLUTIONS = [
    entry(4, "PAYMENT-FAILED", ReasonCode="NOT_CHARGED", ReasonMessage="nothing held", Resolution="RECORD_NOT_CHARGED"),
    entry(5, "PAYMENT-REVERSED", OperationID="rev-ghij", ProcessorTransactionID="V-1", Resolution="REVERSE"),
    entry(3, "PAYMENT-SUCCESS", ProcessorTransactionID="271126A15-X", ApprovalCode="A1", Resolution="COMPLETE"),
    entry(7, "REFUND-SUCCESS", OperationID="order-8812-1-r", Amount="5.00", Resolution="RECORD_SUCCESS"),
    entry(8, "PAYMENT-SETTLED", ProcessorTransactionID="271126A15-X", Resolution="SETTLED"),
]


@pytest.mark.parametrize("ledger_entry", TERMINAL + RESOLUTIONS, ids=lambda e: e["Status"] + e.get("Resolution", ""))
def test_a_terminal_entry_becomes_one_event_valid_against_its_schema(ledger_entry):
    event = events.event_of(ledger_entry)
    delivered = {"source": event["Source"], "detail-type": event["DetailType"], "detail": event["Detail"]}

    jsonschema.validate(delivered, build.schema(event["DetailType"]))
    assert event["Detail"]["EventID"] == f"order-8812-1#{ledger_entry['EntryNumber']}"
    assert event["Detail"]["Card"] == {"Brand": "VISA", "Last4": "1111"}
    text = json.dumps(event)
    assert "ciphertext" not in text and "SecureToken" not in text and "Hash" not in text and "arn:" not in text


def test_each_terminal_status_has_its_detail_type():
    assert [events.event_of(e)["DetailType"] for e in TERMINAL] == [
        "PaymentSucceeded",
        "PaymentAuthorized",
        "PaymentDeclined",
        "PaymentFailed",
        "PaymentCaptured",
        "PaymentVoided",
        "PaymentRefunded",
        "PaymentDeclined",
        "PaymentFailed",
    ]


def test_a_resolution_is_a_payment_reconciled_saying_how():
    reconciled = [events.event_of(e)["Detail"] for e in RESOLUTIONS]

    assert {events.event_of(e)["DetailType"] for e in RESOLUTIONS} == {"PaymentReconciled"}
    assert [(d["Status"], d["Resolution"]) for d in reconciled] == [(e["Status"], e["Resolution"]) for e in RESOLUTIONS]


@pytest.mark.parametrize("status", ["PAYMENT-INITIATED", "PAYMENT-PENDING", "REFUND-INITIATED", "CAPTURE-PENDING"])
def test_a_progress_entry_becomes_no_event(status):
    assert events.event_of(entry(1, status)) is None


def test_a_reversal_on_its_way_is_no_event_until_it_is_recorded():
    assert events.event_of(entry(4, "PAYMENT-REVERSING", ReasonCode="REVERSE_BY_VOID", Resolution="REVERSE")) is None


def test_a_schema_refuses_a_detail_with_anything_more():
    event = events.event_of(TERMINAL[0])
    delivered = {"source": event["Source"], "detail-type": event["DetailType"], "detail": event["Detail"]}
    delivered["detail"]["SecureToken"] = "AYADeJ"

    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(delivered, build.schema("PaymentSucceeded"))


def test_the_committed_schemas_are_the_builders_output():
    assert build.stale_files() == [], "run `make schemas` and commit the result"
