"""What the Converge adapter makes of a txnquery listing and of a call: ours or not, approved or not, masked."""

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest

from payments.processors.converge import ConvergeCall, sale_of
from payments.processors.converge.client import _card_fields, _mask
from payments.processors.port import CardDetails, ExpectedSale
from payments.processors.registry import normalize

SALE = {
    "ssl_transaction_type": "SALE",
    "ssl_merchant_txn_id": "order-ab",
    "ssl_amount": "25.00",
    "ssl_transaction_currency": "USD",
    "ssl_card_number": "41**********1111",
    "ssl_result_message": "APPROVAL",
    "ssl_txn_id": "T-1",
}
OURS = ExpectedSale("order-ab", Decimal("25.00"), "USD", "1111")


def listing(*transactions):
    return ConvergeCall("txnquery", {}, {"ssl_txn_count": str(len(transactions))}, "t", 5, transactions=transactions)


def test_a_sale_tagged_with_another_transaction_id_or_none_is_not_ours():
    assert sale_of(listing(SALE), OURS) == SALE
    assert sale_of(listing(SALE | {"ssl_merchant_txn_id": "order-other"}), OURS) is None
    untagged = {k: v for k, v in SALE.items() if k != "ssl_merchant_txn_id"}
    assert sale_of(listing(untagged), OURS) is None


def test_only_a_sale_of_our_amount_currency_and_card_counts():
    assert sale_of(listing(SALE), dataclasses.replace(OURS, amount=Decimal("25.01"))) is None
    assert sale_of(listing(SALE | {"ssl_transaction_type": "RETURN"}), OURS) is None
    assert sale_of(listing(SALE | {"ssl_transaction_currency": "CAD"}), OURS) is None
    assert sale_of(listing(SALE | {"ssl_card_number": "55**********4444"}), OURS) is None
    assert sale_of(listing(SALE | {"ssl_card_number": ""}), OURS) is None


def test_an_approved_sale_wins_over_a_declined_one():
    declined = SALE | {"ssl_result_message": "DECLINED", "ssl_txn_id": "T-0"}

    assert sale_of(listing(declined, SALE), OURS)["ssl_txn_id"] == "T-1"
    assert sale_of(listing(declined), OURS)["ssl_txn_id"] == "T-0"


@pytest.mark.parametrize(
    ("name", "value", "masked"),
    [
        ("ssl_token", "4421912014039990", "44**********9990"),  # all digits: masked as a card number
        ("ssl_token", "ABCDEFGHJKLM", "ABCD****JKLM"),
        ("ssl_card_number", "411111111111", "41******1111"),
        ("ssl_card_number", "41**********1111", "41**********1111"),
    ],
)
def test_tokens_and_card_numbers_never_reach_the_audit_in_clear(name, value, masked):
    assert _mask(name, value) == masked


def test_the_card_goes_out_as_converge_reads_it():
    year = dt.date.today().year + 4
    card = CardDetails(number="4111111111111111", expiry_month=3, expiry_year=year, cvv="847", holder_name="Ada King")

    fields = _card_fields(card)

    assert fields == {
        "ssl_card_number": "4111111111111111",
        "ssl_exp_date": f"03{year % 100:02d}",
        "ssl_cvv2cvc2_indicator": "1",
        "ssl_cvv2cvc2": "847",
        "ssl_first_name": "Ada",
        "ssl_last_name": "King",
    }


@pytest.mark.parametrize("result", [{}, {"ssl_result": "7"}, {"ssl_result_message": "SOMETHING ELSE"}])
def test_a_result_that_says_neither_approved_nor_declined_is_an_error(result):
    outcome = normalize("elavon", result)

    assert outcome.Status == "ERROR" and outcome.ReasonCode == "UNRECOGNIZED_RESULT"
