"""Follow-on operations (capture, void, refund) through ConvergeProcessor against the sandbox: each goes
out tagged with its OperationID, is found again by it (and only as what it is), and the sandbox holds
exactly one follow-on transaction per OperationID. Settlement is read with txnquery by ssl_txn_id."""

import dataclasses
import datetime as dt
import json
import urllib.request
from decimal import Decimal

import pytest

from local.payment_requests import new_transaction_id as new_id
from local.sandbox import follow_ons_of
from payments.cards import identifier_contains_card_number
from payments.errors import ProcessorRejected, ProcessorTimeout
from payments.processors.converge import CardDetails, ConvergeProcessor, sale_of
from payments.processors.port import ExpectedSale, OperationInstruction

CARD = CardDetails(number="4111111111111111", expiry_month=12, expiry_year=2031, cvv="847")
AMOUNT = Decimal("25.00")


@pytest.fixture
def adapter(client):
    return ConvergeProcessor(client)


@pytest.fixture
def new_operation_id():
    """OperationIDs of letters only: none can pass for a card number in a scan of the sandbox's record."""

    def fresh():
        operation_id = new_id("op", 24)
        assert not identifier_contains_card_number(operation_id)
        return operation_id

    return fresh


@pytest.fixture
def operation_id(new_operation_id):
    return new_operation_id()


def sell(client, transaction_id, amount=AMOUNT, currency="USD"):
    return client.sale(transaction_id=transaction_id, amount=amount, currency=currency, card=CARD).result["ssl_txn_id"]


def authorize(client, transaction_id, amount=AMOUNT, currency="USD"):
    call = client.auth_only(transaction_id=transaction_id, amount=amount, currency=currency, card=CARD)
    return call.result["ssl_txn_id"]


def look_up(adapter, operation_id):
    return adapter.find_by_merchant_transaction_id(operation_id, since=dt.datetime.now(dt.UTC).date())


def follow_ons(sandbox, operation_id):
    return follow_ons_of(sandbox.transactions(), operation_id)


def settled_sale(client, sandbox, transaction_id):
    txn_id = sell(client, transaction_id)
    sandbox.settle()
    return txn_id


# What each operation acts on, built fresh: (kind, of_authorization, amount, how to make the original).
CASES = {
    "capture": ("capture", False, Decimal("10.00"), lambda client, sandbox, tid: authorize(client, tid)),
    "refund": ("refund", False, Decimal("5.00"), settled_sale),
    "void": ("void", False, None, lambda client, sandbox, tid: sell(client, tid)),
    "delete": ("void", True, None, lambda client, sandbox, tid: authorize(client, tid)),
}


def instruction_for(case, client, sandbox, transaction_id, operation_id):
    kind, of_authorization, amount, prepare = CASES[case]
    txn_id = prepare(client, sandbox, transaction_id)
    return OperationInstruction(operation_id, kind, txn_id, amount, "USD", of_authorization=of_authorization)


@pytest.mark.parametrize(
    ("case", "operation", "reply_type"),
    [
        ("capture", "cccomplete", "FORCE"),
        ("refund", "ccreturn", "RETURN"),
        ("void", "ccvoid", "VOID"),
        ("delete", "ccdelete", "DELETE"),
    ],
)
def test_an_operation_is_sent_once_and_found_again_by_its_operation_id(
    adapter, client, sandbox, transaction_id, operation_id, case, operation, reply_type
):
    # Given the payment's transaction, and an operation on it sent tagged with its OperationID
    instruction = instruction_for(case, client, sandbox, transaction_id, operation_id)
    sent = adapter.send_operation(instruction)
    assert (sent.operation, sent.request["ssl_merchant_txn_id"]) == (operation, operation_id)
    assert (sent.result["ssl_result"], sent.result["ssl_transaction_type"]) == ("0", reply_type)
    direct = adapter.normalize(sent.result)

    # When a retry asks Converge by the OperationID, then it finds that operation and adopts it
    lookup = look_up(adapter, operation_id)
    assert adapter.audit_view(lookup).outcome == "FOUND"
    found = adapter.operation_found(lookup, instruction)
    assert found is not None and "ssl_result" not in found
    adopted = adapter.normalize(found)
    assert adopted.Status == direct.Status == "APPROVED"
    assert adopted.ProcessorTransactionID == direct.ProcessorTransactionID

    # And Converge holds exactly one follow-on transaction for the OperationID
    [held] = follow_ons(sandbox, operation_id)
    assert held["ssl_txn_id"] in (instruction.processor_transaction_id, sent.result["ssl_txn_id"])


def test_an_operation_never_sent_is_not_found(adapter, operation_id):
    instruction = OperationInstruction(operation_id, "refund", "T-NONE", Decimal("5.00"), "USD")

    lookup = look_up(adapter, operation_id)

    assert adapter.audit_view(lookup).outcome == "NOT_FOUND"
    assert adapter.operation_found(lookup, instruction) is None


@pytest.mark.parametrize(
    ("case", "changes"),
    [
        ("refund", {"amount": Decimal("6.00")}),
        ("capture", {"amount": Decimal("25.00")}),
        ("refund", {"currency": "CAD"}),
        ("refund", {"kind": "capture"}),
        ("void", {"of_authorization": True}),
        ("delete", {"of_authorization": False}),
        ("capture", {"kind": "refund"}),
    ],
)
def test_a_listing_that_is_not_the_operation_leaves_the_outcome_unknown(
    adapter, client, sandbox, transaction_id, operation_id, case, changes
):
    # Given an operation Converge holds under the OperationID
    instruction = instruction_for(case, client, sandbox, transaction_id, operation_id)
    adapter.send_operation(instruction)

    # When a lookup is judged against an instruction that differs in amount, currency or type
    lookup = look_up(adapter, operation_id)

    # Then what is listed is neither adopted nor taken for nothing
    with pytest.raises(ProcessorTimeout, match="none shown to be our"):
        adapter.operation_found(lookup, dataclasses.replace(instruction, **changes))


def test_a_yen_capture_is_found_by_its_whole_yen_amount(adapter, client, sandbox, transaction_id, operation_id):
    auth_id = authorize(client, transaction_id, amount=Decimal("3000"), currency="JPY")
    instruction = OperationInstruction(operation_id, "capture", auth_id, Decimal("1200"), "JPY", of_authorization=True)

    sent = adapter.send_operation(instruction)

    assert (sent.request["ssl_amount"], sent.result["ssl_amount"]) == ("1200", "1200")
    found = adapter.operation_found(look_up(adapter, operation_id), instruction)
    assert found is not None and (found["ssl_amount"], found["ssl_txn_id"]) == ("1200", auth_id)


def test_a_capture_days_after_its_authorization_is_found_from_the_day_it_was_sent(
    adapter, client, sandbox, transaction_id, operation_id
):
    # Given an authorization taken three days ago, captured now
    auth_id = authorize(client, transaction_id)
    [auth] = [t for t in sandbox.terminal.transactions if t.ssl_txn_id == auth_id]
    auth.created -= dt.timedelta(days=3)
    instruction = OperationInstruction(operation_id, "capture", auth_id, AMOUNT, "USD", of_authorization=True)
    adapter.send_operation(instruction)

    # Then a lookup from today lists the completion (dated when it completed, not when authorized)
    found = adapter.operation_found(look_up(adapter, operation_id), instruction)

    assert found is not None and found["ssl_transaction_type"] == "FORCE" and found["ssl_txn_id"] == auth_id


def test_a_void_tagged_with_its_operation_id_leaves_the_payment_s_own_listing_to_the_voided_sale(
    adapter, client, sandbox, transaction_id, operation_id
):
    sale_id = sell(client, transaction_id)
    adapter.send_operation(OperationInstruction(operation_id, "void", sale_id, None, "USD"))

    # The payment's TransactionID lists only the sale, as what ended it; the VOID is the operation's
    listing = client.query(merchant_txn_id=transaction_id)
    assert [(t["ssl_txn_id"], t["ssl_transaction_type"]) for t in listing.transactions] == [(sale_id, "VOID")]
    assert sale_of(listing, ExpectedSale(transaction_id, AMOUNT, "USD", "1111")) is None
    [void] = client.query(merchant_txn_id=operation_id).transactions
    assert void["ssl_transaction_type"] == "VOID" and void["ssl_txn_id"] != sale_id


def test_a_follow_on_sent_without_a_merchant_txn_id_is_still_filed_under_the_original_s(
    client, sandbox, transaction_id, records_for
):
    sale_id = sell(client, transaction_id)
    void_id = client.void(sale_id).result["ssl_txn_id"]
    other_sale = sell(client, transaction_id)
    sandbox.settle()
    refund_id = client.refund(other_sale, Decimal("5.00"), "USD").result["ssl_txn_id"]

    filed = {r["ssl_txn_id"]: r["ssl_transaction_type"] for r in records_for(transaction_id)}

    assert (filed[void_id], filed[refund_id]) == ("VOID", "RETURN")


def test_a_completion_and_a_delete_are_recorded_on_the_original_under_their_operation_ids(
    adapter, client, sandbox, transaction_id, new_operation_id, record_of
):
    captured_id, released_id = authorize(client, transaction_id), authorize(client, transaction_id)
    capture_id, release_id = new_operation_id(), new_operation_id()
    adapter.send_operation(OperationInstruction(capture_id, "capture", captured_id, AMOUNT, "USD", True))
    adapter.send_operation(OperationInstruction(release_id, "void", released_id, None, "USD", True))

    captured, released = record_of(captured_id), record_of(released_id)

    assert (captured["completion_merchant_txn_id"], captured["delete_merchant_txn_id"]) == (capture_id, "")
    assert (released["completion_merchant_txn_id"], released["delete_merchant_txn_id"]) == ("", release_id)
    assert captured["ssl_merchant_txn_id"] == released["ssl_merchant_txn_id"] == transaction_id
    # And the payment's own listing still shows the authorizations as before
    listing = client.query(merchant_txn_id=transaction_id).transactions
    assert sorted(t["ssl_transaction_type"] for t in listing) == ["AUTHONLY", "DELETE"]
    # And the delete is listed under its OperationID as the ccdelete reply carried it
    [deleted] = client.query(merchant_txn_id=release_id).transactions
    assert deleted["ssl_transaction_type"] == "DELETE" and "ssl_approval_code" not in deleted


def test_a_second_operation_on_the_same_transaction_is_held_under_its_own_operation_id(
    adapter, client, sandbox, transaction_id, new_operation_id
):
    # Given a settled sale refunded twice, by two operations
    sale_id = sell(client, transaction_id)
    sandbox.settle()
    first, second = new_operation_id(), new_operation_id()
    adapter.send_operation(OperationInstruction(first, "refund", sale_id, Decimal("5.00"), "USD"))
    adapter.send_operation(OperationInstruction(second, "refund", sale_id, Decimal("7.50"), "USD"))

    # Then each OperationID holds its own refund, and finds only it
    assert [len(follow_ons(sandbox, first)), len(follow_ons(sandbox, second))] == [1, 1]
    found = adapter.operation_found(
        look_up(adapter, second), OperationInstruction(second, "refund", sale_id, Decimal("7.50"), "USD")
    )
    assert found is not None and found["ssl_amount"] == "7.50"


# -- settlement_of ----------------------------------------------------------------------------------


def test_a_sale_is_unsettled_until_its_batch_closes(adapter, client, sandbox, transaction_id):
    sale_id = sell(client, transaction_id)

    call, settled = adapter.settlement_of(sale_id)
    assert (call.operation, call.request["ssl_txn_id"], settled) == ("txnquery", sale_id, False)

    sandbox.settle()

    assert adapter.settlement_of(sale_id)[1] is True


def test_a_completed_authorization_settles_with_the_batch_over_http(adapter, client, sandbox, transaction_id):
    auth_id = authorize(client, transaction_id)
    client.complete(auth_id)
    assert adapter.settlement_of(auth_id)[1] is False

    with urllib.request.urlopen(
        urllib.request.Request(sandbox.base_url + "/_sandbox/settle", method="POST"), timeout=5
    ) as reply:
        assert auth_id in json.loads(reply.read())["settled"]

    assert adapter.settlement_of(auth_id)[1] is True


@pytest.mark.parametrize("ended_by", ["void", "delete"])
def test_a_voided_or_deleted_sale_never_settles(adapter, client, sandbox, transaction_id, ended_by):
    sale_id = sell(client, transaction_id)
    getattr(client, ended_by)(sale_id)

    assert sale_id not in sandbox.settle()

    assert adapter.settlement_of(sale_id)[1] is False


def test_the_settlement_of_a_transaction_converge_does_not_hold_is_rejected(adapter):
    with pytest.raises(ProcessorRejected) as excinfo:
        adapter.settlement_of("010125A15-NOT-A-TRANSACTION")

    assert excinfo.value.call.response["errorCode"] == "5040"
