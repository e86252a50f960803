"""A payment's life after the sale, through ConvergeClient: the open batch, settlement, and what each
transaction type may still do to a transaction before and after it settles.

Converge (Integration Guide): ccvoid removes a sale, completion or return from the open batch and
"can only be performed before the batch is settled"; ccdelete deletes an authorization (or an
unsettled sale); cccomplete converts an authorization into a sale, once, in full or for less; a
ccreturn refunds a settled sale, in parts, never more than was taken.
"""

from decimal import Decimal

import pytest

from payments.errors import ProcessorRejected
from payments.processors.converge import CardDetails, sale_of
from payments.processors.port import ExpectedSale

VISA = "4111111111111111"
CARD = CardDetails(number=VISA, expiry_month=12, expiry_year=2031, cvv="847")


def sell(client, transaction_id, amount="25.00", currency="USD"):
    return client.sale(transaction_id=transaction_id, amount=Decimal(amount), currency=currency, card=CARD)


def authorize(client, transaction_id, amount="25.00", currency="USD"):
    return client.auth_only(transaction_id=transaction_id, amount=Decimal(amount), currency=currency, card=CARD)


def refused(operation, *args):
    """The Converge error code of an operation that must be refused."""
    with pytest.raises(ProcessorRejected) as excinfo:
        operation(*args)
    return excinfo.value.call.response["errorCode"]


# -- settlement -------------------------------------------------------------------------------------


def test_settlement_moves_sales_completions_and_returns_only(client, sandbox, record_of, transaction_id):
    # Given a sale, a completed authorization, an authorization never completed, and a voided sale
    sale_id = sell(client, transaction_id).result["ssl_txn_id"]
    completed_id = authorize(client, transaction_id).result["ssl_txn_id"]
    client.complete(completed_id)
    open_auth_id = authorize(client, transaction_id).result["ssl_txn_id"]
    voided_id = sell(client, transaction_id).result["ssl_txn_id"]
    client.void(voided_id)

    settled = sandbox.settle()

    # Then the money that moves settles; an authorization holds funds but is in no batch
    assert {sale_id, completed_id} <= set(settled)
    assert not {open_auth_id, voided_id} & set(settled)
    assert record_of(sale_id)["ssl_trans_status"] == "STL"
    assert record_of(open_auth_id)["ssl_trans_status"] == "OPN"
    # And a return joins the next batch
    refund_id = client.refund(sale_id, Decimal("5.00"), "USD").result["ssl_txn_id"]
    assert record_of(refund_id)["ssl_trans_status"] == "OPN"
    assert refund_id in sandbox.settle()


def test_txnquery_reports_open_then_settled(client, sandbox, transaction_id):
    txn_id = sell(client, transaction_id).result["ssl_txn_id"]
    assert client.query(txn_id=txn_id).transactions[0]["ssl_trans_status"] == "OPN"

    sandbox.settle()

    assert client.query(txn_id=txn_id).transactions[0]["ssl_trans_status"] == "STL"


# -- ccvoid -----------------------------------------------------------------------------------------


def test_a_void_answers_with_a_new_transaction_id(client, record_of, transaction_id):
    sale_id = sell(client, transaction_id).result["ssl_txn_id"]

    voided = client.void(sale_id)

    assert voided.result["ssl_result"] == "0"
    assert voided.result["ssl_transaction_type"] == "VOID"
    assert voided.result["ssl_txn_id"] != sale_id
    assert voided.result["ssl_amount"] == "25.00"
    assert record_of(voided.result["ssl_txn_id"])["original_txn_id"] == sale_id
    assert record_of(sale_id)["approved_charge"] is False


def test_a_completion_is_voided_as_the_sale_it_became(client, record_of, transaction_id):
    auth_id = authorize(client, transaction_id).result["ssl_txn_id"]
    client.complete(auth_id, Decimal("10.00"), "USD")

    voided = client.void(auth_id)

    assert (voided.result["ssl_result"], voided.result["ssl_amount"]) == ("0", "10.00")
    assert record_of(auth_id)["voided"] is True
    assert record_of(auth_id)["approved_charge"] is False


def test_an_authorization_is_deleted_not_voided(client, record_of, transaction_id):
    auth_id = authorize(client, transaction_id).result["ssl_txn_id"]

    assert refused(client.void, auth_id) == "5040"
    assert record_of(auth_id)["voided"] is False


@pytest.mark.parametrize("settled_one", ["sale", "completion", "return"])
def test_a_settled_transaction_cannot_be_voided(client, sandbox, record_of, transaction_id, settled_one):
    # Given a sale, a completed authorization, or a return, each settled
    sale_id = sell(client, transaction_id).result["ssl_txn_id"]
    if settled_one == "completion":
        sale_id = authorize(client, transaction_id).result["ssl_txn_id"]
        client.complete(sale_id)
    sandbox.settle()
    txn_id = sale_id
    if settled_one == "return":
        txn_id = client.refund(sale_id, Decimal("5.00"), "USD").result["ssl_txn_id"]
        sandbox.settle()

    # When it is voided, then Converge refuses: after settlement only a return gives money back
    assert refused(client.void, txn_id) == "5040"
    assert record_of(txn_id)["voided"] is False
    assert record_of(sale_id)["approved_charge"] is True


# -- ccdelete ---------------------------------------------------------------------------------------


def test_an_unsettled_sale_may_be_deleted(client, record_of, transaction_id):
    sale_id = sell(client, transaction_id).result["ssl_txn_id"]

    deleted = client.delete(sale_id)

    assert (deleted.result["ssl_result"], deleted.result["ssl_transaction_type"]) == ("0", "DELETE")
    assert record_of(sale_id)["approved_charge"] is False
    # And a retry asking about the payment can never take the deleted sale for a live one
    listing = client.query(merchant_txn_id=transaction_id)
    assert [t["ssl_transaction_type"] for t in listing.transactions] == ["DELETE"]
    assert sale_of(listing, ExpectedSale(transaction_id, Decimal("25.00"), "USD", "1111")) is None


def test_a_settled_sale_cannot_be_deleted(client, sandbox, record_of, transaction_id):
    sale_id = sell(client, transaction_id).result["ssl_txn_id"]
    sandbox.settle()

    assert refused(client.delete, sale_id) == "5040"
    assert record_of(sale_id)["approved_charge"] is True


# -- cccomplete -------------------------------------------------------------------------------------


def test_a_partial_completion_releases_the_rest(client, sandbox, record_of, transaction_id):
    # Given an authorization of 25.00 completed for 10.00
    auth_id = authorize(client, transaction_id).result["ssl_txn_id"]
    client.complete(auth_id, Decimal("10.00"), "USD")

    # Then the other 15.00 can be neither completed nor refunded: the authorization is used up
    assert refused(client.complete, auth_id, Decimal("15.00"), "USD") == "5040"
    assert record_of(auth_id)["completed_amount"] == "10.00"
    # And it is listed as the authorization it was, settled with the batch like a sale
    sandbox.settle()
    [listed] = client.query(txn_id=auth_id).transactions
    assert (listed["ssl_transaction_type"], listed["ssl_trans_status"]) == ("AUTHONLY", "STL")
    assert refused(client.refund, auth_id, Decimal("10.01"), "USD") == "5091"


def test_a_deleted_authorization_cannot_be_completed(client, transaction_id):
    auth_id = authorize(client, transaction_id).result["ssl_txn_id"]
    client.delete(auth_id)

    assert refused(client.complete, auth_id) == "5040"


# -- ccreturn ---------------------------------------------------------------------------------------


def test_a_sale_still_in_the_open_batch_is_voided_not_returned(client, record_of, transaction_id):
    sale_id = sell(client, transaction_id).result["ssl_txn_id"]

    assert refused(client.refund, sale_id) == "5040"
    assert record_of(sale_id)["refunded_amount"] == "0.00"


def test_returns_may_come_in_parts_but_never_above_what_was_taken(client, sandbox, record_of, transaction_id):
    sale_id = sell(client, transaction_id).result["ssl_txn_id"]
    sandbox.settle()

    amounts = [client.refund(sale_id, Decimal(a), "USD").result["ssl_amount"] for a in ("5.00", "7.50", "2.50")]

    assert amounts == ["5.00", "7.50", "2.50"]
    assert refused(client.refund, sale_id, Decimal("10.01"), "USD") == "5091"
    assert client.refund(sale_id).result["ssl_amount"] == "10.00"  # the rest
    assert record_of(sale_id)["refunded_amount"] == "25.00"
    assert refused(client.refund, sale_id) == "5091"


# -- zero-decimal currencies ------------------------------------------------------------------------


def test_a_yen_payment_s_life_is_written_in_whole_yen(client, sandbox, record_of, transaction_id):
    # A sale of 2500 yen goes out, comes back and is found as 2500, never 2500.00
    sale = sell(client, transaction_id, amount="2500", currency="JPY")
    assert (sale.request["ssl_amount"], sale.result["ssl_amount"]) == ("2500", "2500")
    found = sale_of(
        client.query(merchant_txn_id=transaction_id), ExpectedSale(transaction_id, Decimal("2500"), "JPY", "1111")
    )
    assert found is not None and found["ssl_txn_id"] == sale.result["ssl_txn_id"]

    # An authorization of 3000 yen completed for 1200, settled, and returned in part
    auth_id = authorize(client, transaction_id, amount="3000", currency="JPY").result["ssl_txn_id"]
    completed = client.complete(auth_id, Decimal("1200"), "JPY")
    assert (completed.request["ssl_amount"], completed.result["ssl_amount"]) == ("1200", "1200")
    sandbox.settle()
    refund = client.refund(auth_id, Decimal("200"), "JPY")
    assert (refund.request["ssl_amount"], refund.result["ssl_amount"]) == ("200", "200")
    assert refused(client.refund, auth_id, Decimal("1001"), "JPY") == "5091"
    assert (record_of(auth_id)["completed_amount"], record_of(auth_id)["refunded_amount"]) == ("1200", "200")


def test_a_yen_amount_sent_with_decimals_is_refused(client, record_of, transaction_id):
    # A client that writes yen as dollars (1200.00) meets Invalid Amount, and nothing completes
    auth_id = authorize(client, transaction_id, amount="3000", currency="JPY").result["ssl_txn_id"]

    assert refused(client.complete, auth_id, Decimal("1200"), "USD") == "5021"
    assert record_of(auth_id)["completed_amount"] is None


def test_a_lookup_tells_an_authorization_from_a_sale(client, transaction_id, new_transaction_id):
    # Given an authorization for one payment and a sale for another, both of 25.00 on the same card
    auth_id = authorize(client, transaction_id).result["ssl_txn_id"]
    other = new_transaction_id()
    sell(client, other)

    as_authorization = ExpectedSale(transaction_id, Decimal("25.00"), "USD", "1111", kind="authorization")
    as_sale = ExpectedSale(transaction_id, Decimal("25.00"), "USD", "1111")

    # Then the authorization is found as one, and never taken for a sale (nor the sale for one)
    found = sale_of(client.query(merchant_txn_id=transaction_id), as_authorization)
    assert found is not None and found["ssl_txn_id"] == auth_id
    assert sale_of(client.query(merchant_txn_id=transaction_id), as_sale) is None
    other_listing = client.query(merchant_txn_id=other)
    assert sale_of(other_listing, ExpectedSale(other, Decimal("25.00"), "USD", "1111", kind="authorization")) is None
