"""Converge behind the port: the audit view never holds the card, the CVV or the PIN."""

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest

from payments.errors import ProcessorTimeout
from payments.processors.converge import (
    ConvergeCall,
    ConvergeClient,
    ConvergeCredentials,
    ConvergeProcessor,
    ConvergeSettings,
)
from payments.processors.port import CardDetails, ExpectedSale, PaymentInstruction

PAN = "4111111111111111"
CVV = "847"
PIN = "PIN0SECRET"


def sale_call(**response):
    request = {
        "ssl_merchant_id": "0017340",
        "ssl_user_id": "apiuser",
        "ssl_pin": PIN,
        "ssl_transaction_type": "ccsale",
        "ssl_amount": "25.00",
        "ssl_card_number": PAN,
        "ssl_exp_date": "1230",
        "ssl_cvv2cvc2_indicator": "1",
        "ssl_cvv2cvc2": CVV,
        "ssl_merchant_txn_id": "order-ab",
        "ssl_description": "test payment",
    }
    answer = {"ssl_result": "0", "ssl_result_message": "APPROVAL", "ssl_txn_id": "T-1", "ssl_card_number": PAN}
    return ConvergeCall("ccsale", request, answer | response, "2026-11-27T06:00:00.000000Z", 41)


def processor():
    settings = ConvergeSettings("http://127.0.0.1:9/processxml.do", ConvergeCredentials("0017340", "apiuser", PIN))
    return ConvergeProcessor(ConvergeClient(settings))


def test_the_audit_query_masks_the_card_and_drops_the_cvv_and_pin():
    view = processor().audit_view(sale_call())

    text = repr(view)
    assert PAN not in text and PIN not in text
    assert "ssl_cvv2cvc2" not in view.query and "ssl_pin" not in view.query
    assert view.query["ssl_card_number"] == "41**********1111"
    assert view.response["ssl_card_number"] == "41**********1111"
    assert (view.operation, view.outcome, view.result_code, view.latency_ms) == ("ccsale", "APPROVED", "0", 41)


def test_a_decline_and_an_error_are_told_apart():
    assert processor().audit_view(sale_call(ssl_result="1")).outcome == "DECLINED"
    assert processor().audit_view(sale_call(errorCode="4025")).outcome == "ERROR"


def test_a_lookup_reports_whether_it_found_anything():
    lookup = ConvergeCall("txnquery", {"ssl_merchant_txn_id": "order-ab"}, {"ssl_txn_count": "0"}, "t", 5)

    assert processor().audit_view(lookup).outcome == "NOT_FOUND"


def test_a_sale_found_by_lookup_is_ours_only_with_our_id_amount_currency_and_card():
    found = {
        "ssl_transaction_type": "SALE",
        "ssl_merchant_txn_id": "order-ab",
        "ssl_amount": "25.00",
        "ssl_transaction_currency": "USD",
        "ssl_result_message": "APPROVAL",
        "ssl_txn_id": "T",
    }
    lookup = ConvergeCall(
        "txnquery", {}, {"ssl_txn_count": "1"}, "t", 5, transactions=(found | {"ssl_card_number": PAN},)
    )
    ours = ExpectedSale("order-ab", Decimal("25.00"), "USD", PAN[-4:])

    result = processor().sale_found(lookup, ours)

    assert result is not None and result["ssl_txn_id"] == "T" and PAN not in repr(result)
    for other in (dataclasses.replace(ours, amount=Decimal("25.01")), dataclasses.replace(ours, transaction_id="x")):
        with pytest.raises(ProcessorTimeout):
            processor().sale_found(lookup, other)


def test_a_listed_transaction_not_shown_to_be_ours_is_an_unknown_outcome_not_a_miss():
    # No echoed merchant id: it may be our sale. Sending another could charge twice.
    listed = {"ssl_transaction_type": "SALE", "ssl_amount": "25.00", "ssl_txn_id": "T", "ssl_card_number": PAN}
    lookup = ConvergeCall("txnquery", {}, {"ssl_txn_count": "1"}, "t", 5, transactions=(listed,))
    nothing = ConvergeCall("txnquery", {}, {"ssl_txn_count": "0"}, "t", 5)
    ours = ExpectedSale("order-ab", Decimal("25.00"), "USD", PAN[-4:])

    with pytest.raises(ProcessorTimeout, match="none shown to be our sale"):
        processor().sale_found(lookup, ours)
    assert processor().sale_found(nothing, ours) is None


def test_the_lookup_searches_from_the_day_before_the_first_claim_to_tomorrow(monkeypatch):
    sent = {}
    adapter = processor()
    monkeypatch.setattr(adapter.client, "_send", lambda operation, fields: sent.update(operation=operation, **fields))

    adapter.find_by_merchant_transaction_id("order-ab", since=dt.date(2026, 11, 20))

    tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    assert sent["operation"] == "txnquery" and sent["ssl_merchant_txn_id"] == "order-ab"
    assert sent["ssl_search_start_date"] == "11/19/2026"
    assert sent["ssl_search_end_date"] == f"{tomorrow:%m/%d/%Y}"


def test_a_card_instruction_becomes_a_ccsale_with_our_transaction_id(monkeypatch):
    sent = {}
    adapter = processor()
    monkeypatch.setattr(adapter.client, "_send", lambda operation, fields: sent.update(operation=operation, **fields))
    card = CardDetails(number=PAN, expiry_month=12, expiry_year=dt.date.today().year + 4, cvv=CVV)

    adapter.sale(PaymentInstruction("order-ab", Decimal("25.00"), "USD", card, "test payment"))

    assert sent["operation"] == "ccsale"
    assert (sent["ssl_merchant_txn_id"], sent["ssl_amount"], sent["ssl_card_number"]) == ("order-ab", "25.00", PAN)


def sent_by(adapter, monkeypatch):
    """What the adapter's client would put on the wire, without any wire."""
    sent = {}
    monkeypatch.setattr(adapter.client, "_send", lambda operation, fields: sent.update(operation=operation, **fields))
    return sent


@pytest.mark.parametrize(("amount", "currency", "wire"), [("2500", "JPY", "2500"), ("25", "USD", "25.00")])
def test_a_sale_amount_goes_out_with_its_currency_s_decimals(monkeypatch, amount, currency, wire):
    adapter = processor()
    sent = sent_by(adapter, monkeypatch)
    card = CardDetails(number=PAN, expiry_month=12, expiry_year=dt.date.today().year + 4, cvv=CVV)

    adapter.sale(PaymentInstruction("order-ab", Decimal(amount), currency, card, None))

    assert (sent["ssl_amount"], sent["ssl_transaction_currency"]) == (wire, currency)


@pytest.mark.parametrize("operation", ["capture", "refund"])
def test_a_partial_capture_or_refund_is_written_in_the_original_s_currency(monkeypatch, operation):
    adapter = processor()
    sent = sent_by(adapter, monkeypatch)

    getattr(adapter, operation)("T-1", Decimal("1200"), "JPY")

    assert sent["ssl_amount"] == "1200"
    assert "ssl_transaction_currency" not in sent  # Converge takes the original's


@pytest.mark.parametrize("operation", ["capture", "refund"])
def test_a_partial_amount_without_its_currency_is_refused_before_anything_is_sent(monkeypatch, operation):
    adapter = processor()
    sent = sent_by(adapter, monkeypatch)

    with pytest.raises(ValueError, match="needs its currency"):
        getattr(adapter, operation)("T-1", Decimal("12"))

    assert sent == {}
    getattr(adapter, operation)("T-1")  # in full: nothing to write
    assert "ssl_amount" not in sent


def test_a_jpy_sale_found_by_lookup_matches_our_amount():
    found = {
        "ssl_transaction_type": "SALE",
        "ssl_merchant_txn_id": "order-ab",
        "ssl_amount": "2500",
        "ssl_transaction_currency": "JPY",
        "ssl_result_message": "APPROVAL",
        "ssl_txn_id": "T",
        "ssl_card_number": "41**********1111",
    }
    lookup = ConvergeCall("txnquery", {}, {"ssl_txn_count": "1"}, "t", 5, transactions=(found,))

    assert processor().sale_found(lookup, ExpectedSale("order-ab", Decimal("2500"), "JPY", "1111")) is not None
