"""ConvergeClient against the Converge sandbox: every transaction type, its errors and transport faults.

Each test checks what the client returns (or raises) and what the sandbox itself recorded.
"""

import dataclasses
import datetime as dt
import re
import socket
from decimal import Decimal
from urllib.parse import parse_qs

import pytest
import urllib3

from local.sandbox import FaultRule
from payments.cards import luhn_valid
from payments.errors import ProcessorRejected, ProcessorTimeout, ProcessorUnavailable
from payments.processors.converge import (
    CardDetails,
    ConvergeCall,
    ConvergeClient,
    ConvergeProcessor,
    from_xml,
    sale_of,
)
from payments.processors.port import ExpectedSale

VISA = "4111111111111111"
DECLINING = "4000000000000002"
CVV = "847"
AMOUNT = Decimal("25.00")


def card(number=VISA, cvv=CVV, holder_name="Ada Lovelace", year=2030):
    return CardDetails(number=number, expiry_month=12, expiry_year=year, cvv=cvv, holder_name=holder_name)


def sell(client, transaction_id, amount=AMOUNT, **kwargs):
    kwargs.setdefault("card", card())
    return client.sale(transaction_id=transaction_id, amount=amount, currency=kwargs.pop("currency", "USD"), **kwargs)


def authorize(client, transaction_id, amount=AMOUNT):
    return client.auth_only(transaction_id=transaction_id, amount=amount, currency="USD", card=card())


def ours(transaction_id, amount=AMOUNT, currency="USD", last4=VISA[-4:]):
    return ExpectedSale(transaction_id, amount, currency, last4)


def error_code(excinfo):
    call = excinfo.value.call
    assert isinstance(call, ConvergeCall), "a Converge error must carry the call"
    return call.response["errorCode"]


# -- ccsale ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "brand", "masked"),
    [
        ("4111111111111111", "VISA", "41**********1111"),
        ("5500000000000004", "MC", "55**********0004"),
        ("370000000000002", "AMEX", "37*********0002"),
        ("6011000000000012", "DISC", "60**********0012"),
    ],
)
def test_sale_with_each_approving_test_card_is_approved(client, record_of, transaction_id, number, brand, masked):
    call = sell(client, transaction_id, card=card(number))

    assert call.operation == "ccsale"
    assert call.result["ssl_result"] == "0"
    assert call.result["ssl_result_message"] == "APPROVAL"
    assert call.result["ssl_card_short_description"] == brand
    assert call.result["ssl_card_number"] == masked
    assert call.result["ssl_amount"] == "25.00"
    assert call.result["ssl_merchant_txn_id"] == transaction_id
    assert re.fullmatch(r"[A-Z]\d{5}", call.result["ssl_approval_code"])
    record = record_of(call.result["ssl_txn_id"])
    assert record["ssl_transaction_type"] == "SALE"
    assert record["ssl_merchant_txn_id"] == transaction_id
    assert record["ssl_amount"] == "25.00"
    assert record["ssl_result"] == "0"
    assert record["ssl_card_number"] == masked
    assert record["approved_charge"] is True


def test_a_declined_sale_is_returned_not_raised(client, record_of, transaction_id):
    call = sell(client, transaction_id, card=card(DECLINING))

    assert call.result["ssl_result"] == "1"
    assert call.result["ssl_result_message"] == "DECLINED"
    assert call.result["ssl_approval_code"] == ""
    record = record_of(call.result["ssl_txn_id"])
    assert record["ssl_result"] == "1"
    assert record["approved_charge"] is False


@pytest.mark.parametrize(
    ("amount", "result", "message", "avs", "cvv2"),
    [
        ("10.51", "1", "DECLINED: NSF", "N", "M"),
        ("10.52", "1", "CALL AUTH CENTER", "N", "M"),
        ("10.53", "1", "EXPIRED CARD", "N", "M"),
        ("10.54", "1", "PICK UP CARD", "N", "M"),
        ("10.55", "1", "DECLINE CVV2", "Y", "N"),
        ("10.56", "0", "APPROVAL", "N", "M"),
    ],
)
def test_amount_triggers(client, record_of, transaction_id, amount, result, message, avs, cvv2):
    call = sell(client, transaction_id, amount=Decimal(amount))

    assert call.result["ssl_result"] == result
    assert call.result["ssl_result_message"] == message
    assert call.result["ssl_avs_response"] == avs
    assert call.result["ssl_cvv2_response"] == cvv2
    record = record_of(call.result["ssl_txn_id"])
    assert record["ssl_amount"] == amount
    assert record["ssl_result_message"] == message
    assert record["approved_charge"] is (result == "0")


def test_a_card_past_its_expiry_is_declined(client, transaction_id):
    call = sell(client, transaction_id, card=card(year=2020))

    assert call.result["ssl_result"] == "1"
    assert call.result["ssl_result_message"] == "EXPIRED CARD"


# -- ccauthonly, cccomplete, ccdelete ---------------------------------------------------------------


def test_auth_only_takes_no_money_until_completed_in_full(client, record_of, transaction_id):
    # Given an authorization
    auth = authorize(client, transaction_id)
    txn_id = auth.result["ssl_txn_id"]
    assert auth.operation == "ccauthonly"
    assert auth.result["ssl_result"] == "0"
    assert record_of(txn_id)["ssl_transaction_type"] == "AUTHONLY"
    assert record_of(txn_id)["approved_charge"] is False

    # When it is completed without an amount
    completed = client.complete(txn_id)

    # Then the whole authorized amount is captured
    assert completed.result["ssl_result"] == "0"
    assert completed.result["ssl_txn_id"] == txn_id
    assert completed.result["ssl_amount"] == "25.00"
    record = record_of(txn_id)
    assert record["completed_amount"] == "25.00"
    assert record["approved_charge"] is True


def test_a_partial_completion_captures_less_than_the_authorization(client, record_of, transaction_id):
    txn_id = authorize(client, transaction_id).result["ssl_txn_id"]

    completed = client.complete(txn_id, Decimal("10.00"), "USD")

    assert completed.result["ssl_amount"] == "10.00"
    record = record_of(txn_id)
    assert record["ssl_amount"] == "25.00"
    assert record["completed_amount"] == "10.00"


def test_completing_twice_is_rejected(client, record_of, transaction_id):
    txn_id = authorize(client, transaction_id).result["ssl_txn_id"]
    client.complete(txn_id, Decimal("10.00"), "USD")

    with pytest.raises(ProcessorRejected) as excinfo:
        client.complete(txn_id)

    assert error_code(excinfo) == "5040"
    assert record_of(txn_id)["completed_amount"] == "10.00"


def test_completing_above_the_authorization_is_rejected(client, record_of, transaction_id):
    txn_id = authorize(client, transaction_id).result["ssl_txn_id"]

    with pytest.raises(ProcessorRejected) as excinfo:
        client.complete(txn_id, Decimal("25.01"), "USD")

    assert error_code(excinfo) == "5091"
    assert record_of(txn_id)["completed_amount"] is None


def test_delete_releases_an_authorization_once(client, record_of, transaction_id):
    txn_id = authorize(client, transaction_id).result["ssl_txn_id"]

    deleted = client.delete(txn_id)

    assert deleted.operation == "ccdelete"
    assert deleted.result["ssl_result"] == "0"
    assert deleted.result["ssl_transaction_type"] == "DELETE"
    record = record_of(txn_id)
    assert record["deleted"] is True
    assert record["approved_charge"] is False

    with pytest.raises(ProcessorRejected) as excinfo:
        client.delete(txn_id)
    assert error_code(excinfo) == "5040"


def test_a_deleted_authorization_cannot_be_completed(client, transaction_id):
    txn_id = authorize(client, transaction_id).result["ssl_txn_id"]
    client.delete(txn_id)

    with pytest.raises(ProcessorRejected) as excinfo:
        client.complete(txn_id)

    assert error_code(excinfo) == "5040"


# -- ccvoid -----------------------------------------------------------------------------------------


def test_void_cancels_a_sale_once(client, record_of, transaction_id):
    txn_id = sell(client, transaction_id).result["ssl_txn_id"]

    voided = client.void(txn_id)

    assert voided.operation == "ccvoid"
    assert voided.result["ssl_result"] == "0"
    assert voided.result["ssl_transaction_type"] == "VOID"
    record = record_of(txn_id)
    assert record["voided"] is True
    assert record["approved_charge"] is False

    # A second void: the transaction id no longer names something voidable
    with pytest.raises(ProcessorRejected) as excinfo:
        client.void(txn_id)
    assert excinfo.value.call.response["errorCode"] == "5040"
    assert excinfo.value.call.operation == "ccvoid"


def test_a_declined_sale_cannot_be_voided(client, transaction_id):
    txn_id = sell(client, transaction_id, card=card(DECLINING)).result["ssl_txn_id"]

    with pytest.raises(ProcessorRejected) as excinfo:
        client.void(txn_id)

    assert error_code(excinfo) == "5040"


# -- ccreturn ---------------------------------------------------------------------------------------


def test_a_full_refund_returns_the_whole_sale(client, sandbox, record_of, transaction_id):
    sale_id = sell(client, transaction_id).result["ssl_txn_id"]
    sandbox.settle()

    refund = client.refund(sale_id)

    assert refund.operation == "ccreturn"
    assert refund.result["ssl_result"] == "0"
    assert refund.result["ssl_transaction_type"] == "RETURN"
    assert refund.result["ssl_amount"] == "25.00"
    assert refund.result["ssl_txn_id"] != sale_id
    assert record_of(sale_id)["refunded_amount"] == "25.00"
    returned = record_of(refund.result["ssl_txn_id"])
    assert returned["ssl_transaction_type"] == "RETURN"
    assert returned["original_txn_id"] == sale_id
    assert returned["ssl_merchant_txn_id"] == transaction_id
    assert returned["ssl_amount"] == "25.00"


def test_two_partial_refunds_may_return_the_whole_sale_but_no_more(client, sandbox, record_of, transaction_id):
    sale_id = sell(client, transaction_id).result["ssl_txn_id"]
    sandbox.settle()

    first = client.refund(sale_id, Decimal("10.00"), "USD")
    assert record_of(sale_id)["refunded_amount"] == "10.00"

    # 15.00 remain: 15.01 is too much
    with pytest.raises(ProcessorRejected) as excinfo:
        client.refund(sale_id, Decimal("15.01"), "USD")
    assert error_code(excinfo) == "5091"
    assert record_of(sale_id)["refunded_amount"] == "10.00"

    second = client.refund(sale_id, Decimal("15.00"), "USD")

    assert [first.result["ssl_amount"], second.result["ssl_amount"]] == ["10.00", "15.00"]
    assert record_of(sale_id)["refunded_amount"] == "25.00"
    with pytest.raises(ProcessorRejected) as excinfo:
        client.refund(sale_id, Decimal("0.01"), "USD")
    assert error_code(excinfo) == "5091"


def test_a_refund_of_a_fully_refunded_sale_is_rejected(client, sandbox, records_for, transaction_id):
    # Given a settled sale refunded in full
    sale_id = sell(client, transaction_id).result["ssl_txn_id"]
    sandbox.settle()
    client.refund(sale_id)

    # When a refund without an amount ("whatever remains", here nothing) is sent
    with pytest.raises(ProcessorRejected):
        client.refund(sale_id)

    # Then no second RETURN (of 0.00) is recorded
    returns = [t for t in records_for(transaction_id) if t["ssl_transaction_type"] == "RETURN"]
    assert [t["ssl_amount"] for t in returns] == ["25.00"]


def test_a_completed_authorization_refunds_up_to_the_captured_amount(client, sandbox, transaction_id):
    auth_id = authorize(client, transaction_id).result["ssl_txn_id"]
    client.complete(auth_id, Decimal("10.00"), "USD")
    sandbox.settle()

    with pytest.raises(ProcessorRejected) as excinfo:
        client.refund(auth_id, Decimal("10.01"), "USD")
    assert error_code(excinfo) == "5091"

    assert client.refund(auth_id).result["ssl_amount"] == "10.00"


def test_voiding_a_refund_restores_what_may_be_refunded(client, sandbox, record_of, transaction_id):
    # Given a settled sale of 25.00 with a refund of 10.00, not yet settled itself
    sale_id = sell(client, transaction_id).result["ssl_txn_id"]
    sandbox.settle()
    refund_id = client.refund(sale_id, Decimal("10.00"), "USD").result["ssl_txn_id"]

    # When the refund is voided, so the customer gets nothing back after all
    voided = client.void(refund_id)

    # Then the refund is cancelled and the whole 25.00 may be refunded again
    assert voided.result["ssl_result"] == "0"
    assert record_of(refund_id)["voided"] is True
    assert record_of(sale_id)["refunded_amount"] == "0.00"
    assert client.refund(sale_id).result["ssl_amount"] == "25.00"


def test_an_authorization_not_completed_cannot_be_refunded(client, transaction_id):
    auth_id = authorize(client, transaction_id).result["ssl_txn_id"]

    with pytest.raises(ProcessorRejected) as excinfo:
        client.refund(auth_id)

    assert error_code(excinfo) == "5040"


def test_a_voided_sale_cannot_be_refunded(client, transaction_id):
    sale_id = sell(client, transaction_id).result["ssl_txn_id"]
    client.void(sale_id)

    with pytest.raises(ProcessorRejected) as excinfo:
        client.refund(sale_id)

    assert error_code(excinfo) == "5040"


# -- ccverify, ccgettoken ---------------------------------------------------------------------------


def test_verify_checks_the_card_without_charging(client, record_of):
    call = client.verify(card())

    assert call.operation == "ccverify"
    assert call.result["ssl_result"] == "0"
    assert call.result["ssl_avs_response"] == "Y"
    assert call.result["ssl_cvv2_response"] == "M"
    record = record_of(call.result["ssl_txn_id"])
    assert record["ssl_transaction_type"] == "CARDVERIFICATION"
    assert record["ssl_amount"] == "0.00"
    assert record["approved_charge"] is False


def test_verify_of_a_declining_card_is_a_decline(client):
    assert client.verify(card(DECLINING)).result["ssl_result"] == "1"


def test_a_token_pays_like_the_card_and_is_masked_everywhere(client, record_of, transaction_id):
    # Given a token for the Visa test card
    tokenized = client.get_token(card())
    token = tokenized.response["ssl_token"]
    assert re.fullmatch(r"\d{16}", token)
    assert not luhn_valid(token), "a token must never pass for a card number"
    assert tokenized.result["ssl_token_response"] == "SUCCESS"
    assert tokenized.result["ssl_token"] == f"{token[:2]}{'*' * 10}{token[-4:]}"
    assert tokenized.result["ssl_card_number"] == "41**********1111"

    # When a sale pays with the token
    call = sell(client, transaction_id, card=None, token=token)

    # Then it is approved as the card would be, and the token shows only masked
    assert call.result["ssl_result"] == "0"
    assert call.result["ssl_card_short_description"] == "VISA"
    assert call.result["ssl_card_number"] == "41**********1111"
    assert call.request["ssl_token"] == token
    assert token not in str(call.masked_request)
    assert call.masked_request["ssl_token"] == tokenized.result["ssl_token"]
    assert token not in str(tokenized.result)
    assert token not in str(tokenized.masked_request) + str(tokenized.masked_response)
    # And the sale echoes the token as Converge returns one; what is kept and audited holds it masked
    assert call.response["ssl_token"] == token
    assert call.result["ssl_token"] == tokenized.result["ssl_token"]
    view = ConvergeProcessor(client).audit_view(call)
    assert view.response["ssl_token"] == tokenized.result["ssl_token"]
    assert token not in repr(view)
    record = record_of(call.result["ssl_txn_id"])
    assert record["ssl_card_number"] == "41**********1111"
    assert record["approved_charge"] is True


def test_an_unknown_token_is_rejected(client, transaction_id):
    with pytest.raises(ProcessorRejected) as excinfo:
        sell(client, transaction_id, card=None, token="4421000000000001")

    assert error_code(excinfo) == "5087"


# -- txnquery ---------------------------------------------------------------------------------------


def test_query_by_txn_id_lists_that_transaction_without_ssl_result(client, transaction_id):
    sale = sell(client, transaction_id)
    txn_id = sale.result["ssl_txn_id"]

    call = client.query(txn_id=txn_id)

    assert call.operation == "txnquery"
    assert call.response["ssl_txn_count"] == "1"
    assert call.result_code == "1"
    (found,) = call.transactions
    assert found["ssl_txn_id"] == txn_id
    assert found["ssl_transaction_type"] == "SALE"
    assert found["ssl_result_message"] == "APPROVAL"
    assert found["ssl_amount"] == "25.00"
    assert found["ssl_trans_status"] == "OPN"
    assert "ssl_result" not in found
    assert call.masked_response["transactions"][0]["ssl_txn_id"] == txn_id


def test_query_of_a_voided_sale_shows_it_as_void(client, transaction_id):
    txn_id = sell(client, transaction_id).result["ssl_txn_id"]
    client.void(txn_id)

    (found,) = client.query(txn_id=txn_id).transactions

    assert found["ssl_transaction_type"] == "VOID"


def test_query_by_an_unknown_txn_id_is_rejected(client):
    with pytest.raises(ProcessorRejected) as excinfo:
        client.query(txn_id="010125A15-00000000-0000-0000-0000-000000000000")

    assert error_code(excinfo) == "5040"


def test_query_by_merchant_txn_id_over_the_default_dates(client, transaction_id, new_transaction_id):
    # Given a sale for this TransactionID and one for another
    txn_id = sell(client, transaction_id).result["ssl_txn_id"]
    sell(client, new_transaction_id())

    call = client.query(merchant_txn_id=transaction_id)

    # Then only this TransactionID's sale is listed, searched from yesterday to today
    assert [t["ssl_txn_id"] for t in call.transactions] == [txn_id]
    assert call.response["ssl_txn_count"] == "1"
    today = dt.datetime.now(dt.UTC).date()
    assert call.request["ssl_search_start_date"] == f"{today - dt.timedelta(days=1):%m/%d/%Y}"
    assert call.request["ssl_search_end_date"] == f"{today:%m/%d/%Y}"


def test_query_by_merchant_txn_id_within_a_date_range(client, transaction_id):
    txn_id = sell(client, transaction_id).result["ssl_txn_id"]
    today = dt.datetime.now(dt.UTC).date()

    call = client.query(merchant_txn_id=transaction_id, start=today, end=today)

    assert call.request["ssl_search_start_date"] == call.request["ssl_search_end_date"] == f"{today:%m/%d/%Y}"
    assert [t["ssl_txn_id"] for t in call.transactions] == [txn_id]


def test_query_outside_the_dates_of_the_sale_finds_nothing(client, transaction_id):
    sell(client, transaction_id)

    call = client.query(merchant_txn_id=transaction_id, start=dt.date(2020, 1, 1), end=dt.date(2020, 1, 31))

    assert call.transactions == ()
    assert call.response["ssl_txn_count"] == "0"
    assert sale_of(call, ours(transaction_id)) is None


def test_query_of_an_unused_merchant_txn_id_finds_nothing(client, transaction_id):
    call = client.query(merchant_txn_id=transaction_id)

    assert call.transactions == ()
    assert call.response["ssl_txn_count"] == "0"


def test_query_needs_an_id(client):
    with pytest.raises(ValueError, match="txn_id or merchant_txn_id"):
        client.query()


def test_sale_of_picks_the_approved_sale(client, sandbox, transaction_id):
    # Given a declined sale, then an approved one, settled, and its partial refund, all for one TransactionID
    sell(client, transaction_id, amount=Decimal("25.51"))
    approved_id = sell(client, transaction_id).result["ssl_txn_id"]
    sandbox.settle()
    client.refund(approved_id, Decimal("5.00"), "USD")

    call = client.query(merchant_txn_id=transaction_id)
    assert len(call.transactions) == 3

    found = sale_of(call, ours(transaction_id))

    assert found is not None
    assert found["ssl_txn_id"] == approved_id
    assert found["ssl_result_message"] == "APPROVAL"


def test_sale_of_falls_back_to_a_declined_sale(client, transaction_id):
    declined_id = sell(client, transaction_id, card=card(DECLINING)).result["ssl_txn_id"]

    found = sale_of(client.query(merchant_txn_id=transaction_id), ours(transaction_id, last4=DECLINING[-4:]))

    assert found is not None
    assert found["ssl_txn_id"] == declined_id


# -- Converge errors --------------------------------------------------------------------------------


def test_a_wrong_pin_is_rejected(client_for, records_for, transaction_id):
    client = client_for(pin="WRONG-PIN")

    with pytest.raises(ProcessorRejected) as excinfo:
        sell(client, transaction_id)

    assert error_code(excinfo) == "4025"
    assert excinfo.value.call.response["errorName"] == "Invalid Credentials"
    assert records_for(transaction_id) == []


def test_a_currency_the_terminal_does_not_take_is_rejected(client, records_for, transaction_id):
    with pytest.raises(ProcessorRejected) as excinfo:
        sell(client, transaction_id, currency="SEK")

    assert error_code(excinfo) == "5092"
    assert records_for(transaction_id) == []


def test_another_accepted_currency_is_recorded_as_sent(client, record_of, transaction_id):
    call = sell(client, transaction_id, currency="EUR")

    assert call.result["ssl_transaction_currency"] == "EUR"
    assert record_of(call.result["ssl_txn_id"])["ssl_transaction_currency"] == "EUR"


def test_a_card_number_failing_luhn_is_rejected_by_converge(client, records_for, transaction_id):
    # CardDetails does not validate: the number reaches Converge as given
    with pytest.raises(ProcessorRejected) as excinfo:
        sell(client, transaction_id, card=card("4111111111111112"))

    assert error_code(excinfo) == "5000"
    assert "4111111111111112" not in str(excinfo.value.call.masked_request)
    assert records_for(transaction_id) == []


# -- transport faults -------------------------------------------------------------------------------


def fault_for(sandbox, transaction_id, fault, **kwargs):
    return sandbox.faults.add(FaultRule(fault, match={"ssl_merchant_txn_id": transaction_id}, **kwargs))


def test_a_connection_dropped_before_the_charge(client, sandbox, records_for, transaction_id):
    fault_for(sandbox, transaction_id, "drop_before_charge")

    with pytest.raises(ProcessorTimeout) as excinfo:
        sell(client, transaction_id)

    assert excinfo.value.call is None
    assert records_for(transaction_id) == []
    assert [(e.fault, e.answered) for e in sandbox.exchanges() if e.merchant_txn_id == transaction_id] == [
        ("drop_before_charge", False)
    ]


def test_a_timeout_after_the_charge_leaves_a_sale_that_query_finds(client, sandbox, records_for, transaction_id):
    # Given Converge charges but its answer never arrives
    fault_for(sandbox, transaction_id, "timeout_after_charge")

    with pytest.raises(ProcessorTimeout) as excinfo:
        sell(client, transaction_id)

    # Then the sale happened
    assert excinfo.value.call is None
    (record,) = records_for(transaction_id)
    assert record["ssl_transaction_type"] == "SALE"
    assert record["approved_charge"] is True

    # And asking by TransactionID finds it, so that it is not sent again
    found = sale_of(client.query(merchant_txn_id=transaction_id), ours(transaction_id))
    assert found is not None
    assert found["ssl_txn_id"] == record["ssl_txn_id"]


def test_http_500_is_an_unknown_outcome(client, sandbox, records_for, transaction_id):
    fault_for(sandbox, transaction_id, "http_500")

    with pytest.raises(ProcessorTimeout, match="HTTP 500"):
        sell(client, transaction_id)

    assert records_for(transaction_id) == []


def test_error_4022_means_unavailable_and_carries_the_call(client, sandbox, records_for, transaction_id):
    fault_for(sandbox, transaction_id, "error_4022")

    with pytest.raises(ProcessorUnavailable) as excinfo:
        sell(client, transaction_id)

    assert error_code(excinfo) == "4022"
    assert records_for(transaction_id) == []


@pytest.mark.parametrize(("fault", "code"), [("error_3000", "3000"), ("error_4017", "4017")])
def test_gateway_errors_are_an_unknown_outcome_and_carry_the_call(client, sandbox, transaction_id, fault, code):
    fault_for(sandbox, transaction_id, fault)

    with pytest.raises(ProcessorTimeout) as excinfo:
        sell(client, transaction_id)

    assert error_code(excinfo) == code
    assert excinfo.value.call.result["errorCode"] == code


def test_a_fault_fires_only_as_often_as_its_rule_says(client, sandbox, transaction_id):
    fault_for(sandbox, transaction_id, "error_4022", times=1)

    with pytest.raises(ProcessorUnavailable):
        sell(client, transaction_id)

    assert sell(client, transaction_id).result["ssl_result"] == "0"


def test_latency_within_the_read_timeout_is_still_an_answer(client, sandbox, transaction_id):
    fault_for(sandbox, transaction_id, "latency", delay_ms=200)

    call = sell(client, transaction_id)

    assert call.result["ssl_result"] == "0"
    assert call.latency_ms >= 200


def test_latency_beyond_the_read_timeout_is_an_unknown_outcome(client, sandbox, records_for, transaction_id):
    fault_for(sandbox, transaction_id, "latency", delay_ms=800)

    with pytest.raises(ProcessorTimeout, match="no answer"):
        sell(client, transaction_id)

    # The sandbox decided before it waited: the sale is there
    assert [t["ssl_result"] for t in records_for(transaction_id)] == ["0"]


def test_nothing_listening_is_unavailable(client_for, transaction_id):
    # Given a port that was free a moment ago
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = client_for(url=f"http://127.0.0.1:{port}/VirtualMerchantDemo/processxml.do")

    with pytest.raises(ProcessorUnavailable, match="could not connect") as excinfo:
        sell(client, transaction_id)

    assert excinfo.value.call is None


# -- what goes on the wire, and what is kept --------------------------------------------------------


class RecordingPool(urllib3.PoolManager):
    """A PoolManager that keeps the bodies it sends."""

    def __init__(self):
        super().__init__(retries=False)
        self.bodies = []

    def request(self, method, url, body=None, **kwargs):
        self.bodies.append(body)
        return super().request(method, url, body=body, **kwargs)


@pytest.mark.parametrize(
    "holder_name",
    ["</ssl_first_name><ssl_amount>0.01", "Ada </ssl_last_name><ssl_amount>0.01", "Tom & <Jerry>"],
)
def test_markup_in_a_holder_name_is_sent_as_text(client, record_of, transaction_id, holder_name):
    # Given a holder name that tries to close its element and set the amount
    pool = RecordingPool()
    recording = ConvergeClient(client.settings, http=pool)

    call = sell(recording, transaction_id, card=card(holder_name=holder_name))

    # Then the sandbox parsed one amount, the real one, and approved it
    assert call.result["ssl_result"] == "0"
    assert call.result["ssl_amount"] == "25.00"
    assert record_of(call.result["ssl_txn_id"])["ssl_amount"] == "25.00"
    # And the name went out as escaped text, in the one document we built
    (body,) = pool.bodies
    (xml,) = parse_qs(body)["xmldata"]
    assert xml.count("<ssl_amount>") == 1
    assert "&lt;" in xml
    assert from_xml(xml) == call.request  # what Converge reads is exactly what we meant to send


def test_masked_request_holds_no_pan_cvv_or_pin(client, sandbox, transaction_id):
    pin = sandbox.credentials.ssl_pin
    calls = [
        sell(client, transaction_id),
        client.auth_only(transaction_id=transaction_id, amount=AMOUNT, currency="USD", card=card()),
        client.verify(card()),
        client.get_token(card()),
    ]

    for call in calls:
        assert call.request["ssl_card_number"] == VISA  # the request itself had them
        assert call.request["ssl_cvv2cvc2"] == CVV
        masked = call.masked_request
        text = str(masked) + repr(call) + str(call.result)
        assert VISA not in text, call.operation
        assert pin not in text, call.operation
        assert "ssl_cvv2cvc2" not in masked
        assert "ssl_pin" not in masked
        assert masked["ssl_card_number"] == "41**********1111"
        assert CVV not in masked.values()


def test_sale_of_ignores_a_sale_of_another_amount_currency_or_card(client, transaction_id):
    sell(client, transaction_id, amount=Decimal("10.00"))
    call = client.query(merchant_txn_id=transaction_id)

    assert sale_of(call, ours(transaction_id, amount=Decimal("10.00"))) is not None
    assert sale_of(call, ours(transaction_id, amount=Decimal("25.00"))) is None
    assert sale_of(call, ours(transaction_id, amount=Decimal("10.00"), currency="CAD")) is None
    assert sale_of(call, ours(transaction_id, amount=Decimal("10.00"), last4="4444")) is None


@pytest.mark.parametrize(
    "missing", ["ssl_merchant_txn_id", "ssl_transaction_currency", "ssl_card_number", "ssl_amount"]
)
def test_sale_of_fails_closed_on_a_transaction_that_does_not_echo_what_makes_it_ours(client, transaction_id, missing):
    # A queried transaction lacking any of these could be another customer's: never adopted
    sell(client, transaction_id)
    call = client.query(merchant_txn_id=transaction_id)
    assert sale_of(call, ours(transaction_id)) is not None
    [transaction] = call.transactions
    stripped = dataclasses.replace(call, transactions=({k: v for k, v in transaction.items() if k != missing},))

    assert sale_of(stripped, ours(transaction_id)) is None


def test_sale_of_a_stored_token_payment_needs_no_card_digits(client, transaction_id):
    sell(client, transaction_id)

    assert sale_of(client.query(merchant_txn_id=transaction_id), ours(transaction_id, last4=None)) is not None
