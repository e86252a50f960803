"""The pure rules of the ledger: what counts as the same entry, the DynamoDB item shape, terminal statuses."""

import dataclasses

import pytest

from payments import ledger
from payments.ledger import LedgerEntry

EXECUTION_ARN = "arn:aws:states:us-east-1:123456789012:execution:PaymentWorkflow:order-8812-1"


def entry(**changes):
    values = {
        "TransactionID": "order-8812-1",
        "EntryNumber": 3,
        "Status": ledger.SUCCESS,
        "SecureToken": "AYADeJ-ciphertext",
        "Amount": "25.00",
        "Currency": "USD",
        "ProcessorID": "elavon",
        "ExecutionArn": EXECUTION_ARN,
        "CreatedAt": "2026-11-26T06:00:00.000000Z",
        "CardBrand": "VISA",
        "CardLast4": "1111",
        "ProcessorTransactionID": "261125A15-0C2B3E5F",
        "ApprovalCode": "CMC142",
    }
    return LedgerEntry(**{**values, **changes})


def test_a_retry_with_a_new_timestamp_is_the_same_entry():
    assert entry().same_content_as(entry(CreatedAt="2026-11-26T06:00:07.123456Z"))


@pytest.mark.parametrize(
    "change",
    [
        {"Status": ledger.DECLINED},
        {"ExecutionArn": EXECUTION_ARN.replace("order-8812-1", "order-8812-1-retry")},
        {"Amount": "25.01"},
        {"Currency": "EUR"},
        {"EntryNumber": 4},
        {"SecureToken": "AYADeJ-other-ciphertext"},
        {"ApprovalCode": None},
        {"ReasonCode": "DO_NOT_HONOR"},
    ],
    ids=lambda change: next(iter(change)),
)
def test_any_other_difference_is_a_different_entry(change):
    assert not entry().same_content_as(entry(**change))
    assert not entry(**change).same_content_as(entry())


def test_to_item_is_a_typed_dynamodb_item_without_empty_attributes():
    item = entry().to_item()

    assert item["TransactionID"] == {"S": "order-8812-1"}
    assert item["EntryNumber"] == {"N": "3"}
    assert item["Amount"] == {"S": "25.00"}
    assert "ReasonCode" not in item
    assert "ReasonMessage" not in item
    assert set(item) == {
        field.name for field in dataclasses.fields(LedgerEntry) if getattr(entry(), field.name) is not None
    }


@pytest.mark.parametrize(
    "original",
    [
        entry(),
        entry(
            EntryNumber=1,
            Status=ledger.INITIATED,
            CardBrand=None,
            CardLast4=None,
            ProcessorTransactionID=None,
            ApprovalCode=None,
        ),
        entry(Status=ledger.DECLINED, ApprovalCode=None, ReasonCode="CVV_MISMATCH", ReasonMessage="DECLINED CVV2"),
    ],
    ids=["success", "initiated-token-payment", "declined"],
)
def test_an_entry_survives_the_round_trip_through_an_item(original):
    restored = LedgerEntry.from_item(original.to_item())

    assert restored == original
    assert type(restored.EntryNumber) is int


def test_from_item_ignores_attributes_it_does_not_know():
    item = {**entry().to_item(), "ExpiresAt": {"N": "1790000000"}}

    assert LedgerEntry.from_item(item) == entry()


@pytest.mark.parametrize(
    ("status", "terminal"),
    [
        (ledger.INITIATED, False),
        (ledger.PENDING, False),
        (ledger.SUCCESS, True),
        (ledger.DECLINED, True),
        (ledger.FAILED, True),
    ],
)
def test_is_terminal(status, terminal):
    assert entry(Status=status).is_terminal is terminal
