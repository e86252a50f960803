"""Converge follow-on operations behind the port: what goes on the wire, what a lookup by OperationID
adopts (fail closed, as for a sale), how a listed operation normalizes, and how settlement is read."""

import dataclasses
from decimal import Decimal

import pytest

from payments.errors import ProcessorRejected, ProcessorTimeout
from payments.processors.converge import ConvergeCall, ConvergeClient, ConvergeCredentials, ConvergeProcessor
from payments.processors.converge.client import ConvergeSettings, operation_listing_type
from payments.processors.port import OperationInstruction
from payments.processors.registry import normalize

OPERATION_ID = "op-capture-ab"
CAPTURE = OperationInstruction(OPERATION_ID, "capture", "T-AUTH", Decimal("10.00"), "USD", of_authorization=True)
REFUND = OperationInstruction("op-refund-ab", "refund", "T-SALE", Decimal("5.00"), "USD")
VOID = OperationInstruction("op-void-ab", "void", "T-SALE", None, "USD")
DELETE = OperationInstruction("op-delete-ab", "void", "T-AUTH", None, "USD", of_authorization=True)


def processor():
    settings = ConvergeSettings("http://127.0.0.1:9/processxml.do", ConvergeCredentials("0017340", "apiuser", "PIN0"))
    return ConvergeProcessor(ConvergeClient(settings))


def sent_by(adapter, monkeypatch):
    """What the adapter's client would put on the wire, without any wire."""
    sent = {}
    monkeypatch.setattr(adapter.client, "_send", lambda operation, fields: sent.update(operation=operation, **fields))
    return sent


def listing(*transactions):
    return ConvergeCall("txnquery", {}, {"ssl_txn_count": str(len(transactions))}, "t", 5, transactions=transactions)


def listed(instruction, **changes):
    """The transaction `instruction` creates, as a txnquery by its OperationID lists it."""
    fields = {
        "ssl_txn_id": "T-NEW",
        "ssl_transaction_type": operation_listing_type(instruction),
        "ssl_merchant_txn_id": instruction.operation_id,
        "ssl_amount": str(instruction.amount or "25.00"),
        "ssl_transaction_currency": instruction.currency,
        "ssl_card_number": "41**********1111",
        "ssl_result_message": "APPROVAL",
        "ssl_trans_status": "OPN",
    }
    return fields | changes


# -- send_operation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instruction", "operation", "amount"),
    [
        (CAPTURE, "cccomplete", "10.00"),
        (REFUND, "ccreturn", "5.00"),
        (VOID, "ccvoid", None),
        (DELETE, "ccdelete", None),
    ],
)
def test_each_operation_goes_out_as_its_transaction_type_tagged_with_its_operation_id(
    monkeypatch, instruction, operation, amount
):
    adapter = processor()
    sent = sent_by(adapter, monkeypatch)

    adapter.send_operation(instruction)

    assert sent["operation"] == operation
    assert sent["ssl_txn_id"] == instruction.processor_transaction_id
    assert sent["ssl_merchant_txn_id"] == instruction.operation_id
    assert sent.get("ssl_amount") == amount
    assert "ssl_transaction_currency" not in sent  # Converge takes the original's


@pytest.mark.parametrize("kind", ["capture", "refund"])
def test_an_operation_s_amount_is_written_in_its_currency_s_decimals(monkeypatch, kind):
    adapter = processor()
    sent = sent_by(adapter, monkeypatch)

    adapter.send_operation(OperationInstruction("op-yen", kind, "T-1", Decimal("1200"), "JPY"))

    assert sent["ssl_amount"] == "1200"


def test_a_capture_of_the_whole_authorization_sends_no_amount(monkeypatch):
    adapter = processor()
    sent = sent_by(adapter, monkeypatch)

    adapter.send_operation(dataclasses.replace(CAPTURE, amount=None))

    assert "ssl_amount" not in sent and sent["ssl_merchant_txn_id"] == OPERATION_ID


@pytest.mark.parametrize("operation_id", ["", "x" * 37, "op id", "op/1", "op-ä"])
def test_an_operation_id_converge_cannot_search_by_is_refused_before_anything_is_sent(monkeypatch, operation_id):
    adapter = processor()
    sent = sent_by(adapter, monkeypatch)

    with pytest.raises(ValueError, match="OperationID"):
        adapter.send_operation(dataclasses.replace(VOID, operation_id=operation_id))

    assert sent == {}


@pytest.mark.parametrize("method", ["complete", "void", "delete", "refund"])
def test_a_follow_on_sent_without_a_merchant_txn_id_carries_none(monkeypatch, method):
    adapter = processor()
    sent = sent_by(adapter, monkeypatch)

    getattr(adapter.client, method)("T-1")

    assert "ssl_merchant_txn_id" not in sent
    getattr(adapter.client, method)("T-1", merchant_txn_id="op-1")
    assert sent["ssl_merchant_txn_id"] == "op-1"


# -- operation_found --------------------------------------------------------------------------------


@pytest.mark.parametrize("instruction", [CAPTURE, REFUND, VOID, DELETE])
def test_the_operation_listed_under_its_operation_id_is_adopted(instruction):
    found = processor().operation_found(listing(listed(instruction)), instruction)

    assert found is not None and found["ssl_txn_id"] == "T-NEW"
    assert found["ssl_card_number"] == "41**********1111"


def test_the_listing_types_per_operation():
    assert [operation_listing_type(i) for i in (CAPTURE, REFUND, VOID, DELETE)] == [
        "FORCE",
        "RETURN",
        "VOID",
        "DELETE",
    ]


def test_nothing_listed_for_the_operation_id_is_a_miss():
    assert processor().operation_found(listing(), REFUND) is None


@pytest.mark.parametrize(
    ("instruction", "changes"),
    [
        (REFUND, {"ssl_amount": "5.01"}),
        (CAPTURE, {"ssl_amount": "25.00"}),  # the authorization's amount, not the completion's
        (REFUND, {"ssl_transaction_currency": "CAD"}),
        (REFUND, {"ssl_transaction_type": "SALE"}),
        (CAPTURE, {"ssl_transaction_type": "AUTHONLY"}),
        (VOID, {"ssl_transaction_type": "DELETE"}),
        (DELETE, {"ssl_transaction_type": "VOID"}),
        (VOID, {"ssl_merchant_txn_id": "op-other"}),
        (VOID, {"ssl_merchant_txn_id": ""}),
    ],
)
def test_a_listed_transaction_not_shown_to_be_the_operation_is_an_unknown_outcome(instruction, changes):
    lookup = listing(listed(instruction, **changes))

    with pytest.raises(ProcessorTimeout, match="none shown to be our"):
        processor().operation_found(lookup, instruction)


def test_an_untagged_listing_is_not_adopted():
    untagged = {k: v for k, v in listed(REFUND).items() if k != "ssl_merchant_txn_id"}

    with pytest.raises(ProcessorTimeout):
        processor().operation_found(listing(untagged), REFUND)


def test_a_void_is_adopted_whatever_amount_it_moved():
    assert processor().operation_found(listing(listed(VOID, ssl_amount="10.00")), VOID) is not None


def test_an_approved_operation_wins_over_a_declined_one():
    declined = listed(REFUND, ssl_result_message="DECLINED", ssl_txn_id="T-0")

    assert processor().operation_found(listing(declined, listed(REFUND)), REFUND)["ssl_txn_id"] == "T-NEW"


@pytest.mark.parametrize("instruction", [CAPTURE, REFUND, VOID, DELETE])
@pytest.mark.parametrize("status", ["OPN", "STL"])
def test_an_adopted_operation_normalizes_as_an_approval_with_its_transaction_id(instruction, status):
    found = processor().operation_found(listing(listed(instruction, ssl_trans_status=status)), instruction)

    assert "ssl_result" not in found
    outcome = normalize("elavon", found)
    assert (outcome.Status, outcome.ProcessorTransactionID) == ("APPROVED", "T-NEW")


# -- settlement_of ----------------------------------------------------------------------------------


def answering(adapter, monkeypatch, *transactions):
    asked = {}

    def query(**fields):
        asked.update(fields)
        return ConvergeCall("txnquery", {"ssl_txn_id": fields.get("txn_id", "")}, {}, "t", 5, transactions=transactions)

    monkeypatch.setattr(adapter.client, "query", query)
    return asked


@pytest.mark.parametrize(("status", "settled"), [("STL", True), ("OPN", False), ("PEN", False), ("", False)])
def test_a_transaction_is_settled_only_when_converge_lists_it_stl(monkeypatch, status, settled):
    adapter = processor()
    asked = answering(adapter, monkeypatch, {"ssl_txn_id": "T-SALE", "ssl_trans_status": status})

    call, answer = adapter.settlement_of("T-SALE")

    assert asked == {"txn_id": "T-SALE"}
    assert answer is settled
    assert adapter.audit_view(call).outcome == "FOUND"


def test_a_settlement_query_that_lists_nothing_is_rejected(monkeypatch):
    adapter = processor()
    answering(adapter, monkeypatch)

    with pytest.raises(ProcessorRejected) as excinfo:
        adapter.settlement_of("T-SALE")

    assert excinfo.value.call is not None


def test_a_settlement_query_that_lists_only_another_transaction_is_an_unknown_answer(monkeypatch):
    adapter = processor()
    answering(adapter, monkeypatch, {"ssl_txn_id": "T-OTHER", "ssl_trans_status": "STL"})

    with pytest.raises(ProcessorTimeout, match="settlement unknown"):
        adapter.settlement_of("T-SALE")
