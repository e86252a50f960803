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


@pytest.mark.parametrize("message", ["APPROVAL", "APPROVED", "APPROBAT", "PARTIAL APPROVAL"])
def test_every_approval_message_wins_over_a_decline(message):
    declined = SALE | {"ssl_result_message": "DECLINED", "ssl_txn_id": "T-0"}
    approved = SALE | {"ssl_result_message": message}

    assert sale_of(listing(declined, approved), OURS)["ssl_txn_id"] == "T-1"


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


def queried(message, **extra):
    """A sale as txnquery lists it: no ssl_result, only its message and status."""
    return {k: v for k, v in SALE.items() if k != "ssl_result_message"} | {
        "ssl_result_message": message,
        "ssl_trans_status": "OPN",
        **extra,
    }


@pytest.mark.parametrize(
    ("message", "reason_code"),
    [
        ("DECLINED", "DO_NOT_HONOR"),
        ("SERV NOT ALLOWED", "DO_NOT_HONOR"),
        ("REQ. EXCEEDS BAL.", "INSUFFICIENT_FUNDS"),
        ("DECLINE CVV2", "CVV_MISMATCH"),
        ("PICK UP CARD", "PICK_UP_CARD"),
        ("CALL AUTH. CENTER", "CALL_ISSUER"),
        ("EXPIRED CARD", "EXPIRED_CARD"),
        ("INVALID CARD", "DO_NOT_HONOR"),
        ("AMOUNT ERROR", "DO_NOT_HONOR"),
        ("DECLINED-HELP 9999", "DO_NOT_HONOR"),
        ("SEQ ERR PLS CALL", "DO_NOT_HONOR"),  # call support, not the issuer
        ("DECLINED: NSF", "INSUFFICIENT_FUNDS"),  # the sandbox's own wording, by its words
        ("req. exceeds  bal. ", "INSUFFICIENT_FUNDS"),
    ],
)
def test_a_declined_sale_found_by_txnquery_is_a_decline_with_its_reason(message, reason_code):
    # A retried payment whose first sale was declined must end declined, not failed
    outcome = normalize("elavon", queried(message))

    assert outcome.Status == "DECLINED"
    assert outcome.ReasonCode == reason_code
    assert outcome.ReasonMessage == message
    assert outcome.ProcessorTransactionID == "T-1"


@pytest.mark.parametrize(
    ("message", "reason_code"),
    [
        ("REQ. EXCEEDS BAL.", "INSUFFICIENT_FUNDS"),
        ("SERV NOT ALLOWED", "DO_NOT_HONOR"),
        ("CALL AUTH. CENTER", "CALL_ISSUER"),
    ],
)
def test_a_declined_sale_answered_directly_has_the_same_reason(message, reason_code):
    outcome = normalize("elavon", {"ssl_result": "1", "ssl_result_message": message, "ssl_txn_id": "T-1"})

    assert (outcome.Status, outcome.ReasonCode) == ("DECLINED", reason_code)


@pytest.mark.parametrize("message", ["APPROVAL", "APPROBAT", "PARTIAL APPROVAL"])
def test_an_approved_sale_found_by_txnquery_is_an_approval(message):
    outcome = normalize("elavon", queried(message, ssl_approval_code="CMC142"))

    assert (outcome.Status, outcome.ProcessorTransactionID, outcome.ApprovalCode) == ("APPROVED", "T-1", "CMC142")


@pytest.mark.parametrize("status", ["PST", "FPR", "PRE"])
def test_an_approval_that_a_fraud_or_auth_rule_failed_is_a_decline(status):
    assert normalize("elavon", queried("APPROVAL", ssl_trans_status=status)).Status == "DECLINED"


def test_a_settled_approval_is_still_an_approval():
    assert normalize("elavon", queried("APPROVAL", ssl_trans_status="STL")).Status == "APPROVED"
