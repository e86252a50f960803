"""What a payment's history allows: captures, voids and refunds judged before any processor call."""

from decimal import Decimal

import pytest

from payments.operations import (
    HistoryEntry,
    InvalidOperationRequest,
    OperationRefused,
    OperationRequest,
    admit,
    balances_of,
    parse_operation,
    status,
)

SALE = [
    HistoryEntry("PAYMENT-INITIATED", "100.00"),
    HistoryEntry("PAYMENT-PENDING", "100.00"),
    HistoryEntry("PAYMENT-SUCCESS", "100.00"),
]
AUTHORIZATION = [*SALE[:2], HistoryEntry("PAYMENT-AUTHORIZED", "100.00")]


def operation(kind, stage, amount, operation_id, reason=None):
    return HistoryEntry(status(kind, stage), amount, operation_id, reason)


def done(kind, amount, operation_id, stage="SUCCESS", reason=None):
    """An operation's whole trail: INITIATED, PENDING and its terminal entry."""
    return [
        operation(kind, "INITIATED", amount, operation_id),
        operation(kind, "PENDING", amount, operation_id),
        operation(kind, stage, amount, operation_id, reason),
    ]


def request(kind, amount=None, operation_id="op-1"):
    return OperationRequest(kind, operation_id, "order-1", None if amount is None else Decimal(amount))


def admitted(kind, history, amount=None, currency="USD"):
    return admit(request(kind, amount), balances_of(history), payment_found=bool(history), currency=currency)


def refusal(kind, history, amount=None, currency="USD"):
    with pytest.raises(OperationRefused) as refused:
        admitted(kind, history, amount, currency)
    return refused.value.reason


# --- the money rules ------------------------------------------------------------------------------


def test_two_refunds_of_60_on_a_100_sale_admit_one_and_refuse_the_other_before_any_call():
    # The first is admitted and appends its INITIATED entry; the second is judged after it
    assert admitted("refund", SALE, "60.00") == Decimal("60.00")
    with_first_held = [*SALE, operation("refund", "INITIATED", "60.00", "op-1")]

    assert refusal("refund", with_first_held, "60.00") == "EXCEEDS_REFUNDABLE"


def test_partial_refunds_add_up_to_what_was_charged_and_no_more():
    history = [*SALE, *done("refund", "30.00", "r1"), *done("refund", "50.00", "r2")]

    assert balances_of(history).refundable == Decimal("20.00")
    assert admitted("refund", history) == Decimal("20.00")  # no amount: the rest
    assert refusal("refund", history, "20.01") == "EXCEEDS_REFUNDABLE"
    assert refusal("refund", [*history, *done("refund", "20.00", "r3")]) == "EXCEEDS_REFUNDABLE"


def test_a_declined_refund_or_one_that_failed_before_sending_gives_its_amount_back():
    history = [
        *SALE,
        *done("refund", "80.00", "r1", "DECLINED"),
        *done("refund", "80.00", "r2", "FAILED", "PROCESSOR_REJECTED"),
    ]

    assert balances_of(history).refundable == Decimal("100.00")


def test_a_refund_whose_outcome_is_unknown_keeps_its_hold_and_stops_every_operation():
    # It may have been paid out: admitting it again under another OperationID could pay twice
    history = [*SALE, *done("refund", "30.00", "r1", "FAILED", "PROCESSOR_OUTCOME_UNKNOWN")]

    assert balances_of(history).refundable == Decimal("70.00")
    for kind in ("refund", "void", "capture"):
        assert refusal(kind, history, "10.00" if kind != "void" else None) == "OPERATION_OUTCOME_UNKNOWN"


def test_an_authorization_is_captured_once_and_a_partial_capture_releases_the_rest():
    assert admitted("capture", AUTHORIZATION) == Decimal("100.00")
    assert admitted("capture", AUTHORIZATION, "60.00") == Decimal("60.00")
    captured = [*AUTHORIZATION, *done("capture", "60.00", "c1")]

    assert refusal("capture", captured, "40.00") == "ALREADY_CAPTURED"
    assert balances_of(captured).refundable == Decimal("60.00")
    assert refusal("refund", captured, "60.01") == "EXCEEDS_REFUNDABLE"


def test_a_capture_may_not_exceed_the_authorization():
    assert refusal("capture", AUTHORIZATION, "100.01") == "EXCEEDS_AUTHORIZED"


def test_an_amount_finer_than_the_payments_currency_is_refused():
    assert refusal("refund", SALE, "10.005") == "AMOUNT_PRECISION"
    assert refusal("refund", SALE, "10.5", currency="JPY") == "AMOUNT_PRECISION"
    assert admitted("refund", SALE, "10", currency="JPY") == Decimal("10")


def test_a_capture_in_flight_blocks_a_second_capture_a_refund_and_a_void():
    history = [*AUTHORIZATION, operation("capture", "INITIATED", "100.00", "c1")]

    assert refusal("capture", history) == "ALREADY_CAPTURED"
    assert refusal("refund", history) == "OPERATION_IN_PROGRESS"
    assert refusal("void", history) == "OPERATION_IN_PROGRESS"


# --- refusals before any processor call -----------------------------------------------------------


def test_a_sale_cannot_be_captured_and_an_uncaptured_authorization_cannot_be_refunded():
    assert refusal("capture", SALE) == "NOT_AN_AUTHORIZATION"
    assert refusal("refund", AUTHORIZATION) == "NOT_CAPTURED"


@pytest.mark.parametrize("kind", ["capture", "void", "refund"])
def test_an_unknown_running_or_unapproved_payment_takes_no_operation(kind):
    failed = [*SALE[:2], HistoryEntry("PAYMENT-FAILED", "100.00")]
    declined = [*SALE[:2], HistoryEntry("PAYMENT-DECLINED", "100.00")]

    assert refusal(kind, []) == "UNKNOWN_PAYMENT"
    assert refusal(kind, SALE[:2]) == "PAYMENT_IN_PROGRESS"
    assert refusal(kind, failed) == "PAYMENT_NOT_APPROVED"
    assert refusal(kind, declined) == "PAYMENT_NOT_APPROVED"


@pytest.mark.parametrize("kind", ["capture", "void", "refund"])
def test_a_voided_payment_takes_nothing_more(kind):
    assert refusal(kind, [*AUTHORIZATION, *done("void", "100.00", "v1")]) == "ALREADY_VOIDED"


def test_a_void_cancels_all_of_a_sale_an_authorization_or_a_capture_but_not_a_refunded_payment():
    assert admitted("void", SALE) == Decimal("100.00")
    assert admitted("void", AUTHORIZATION) == Decimal("100.00")
    assert admitted("void", [*AUTHORIZATION, *done("capture", "40.00", "c1")]) == Decimal("40.00")
    assert refusal("void", [*SALE, *done("refund", "10.00", "r1")]) == "ALREADY_REFUNDED"


def test_a_declined_void_leaves_the_payment_as_it_was():
    history = [*SALE, *done("void", "100.00", "v1", "DECLINED")]

    assert not balances_of(history).voided
    assert admitted("refund", history, "10.00") == Decimal("10.00")


# --- the operation's input ------------------------------------------------------------------------


def valid(**changes):
    return {"Operation": "refund", "OperationID": "refund-1", "TransactionID": "order-1", "Amount": "10.00"} | changes


def test_a_valid_operation_is_parsed():
    parsed = parse_operation(valid(Reason="customer asked"))

    assert parsed == OperationRequest("refund", "refund-1", "order-1", Decimal("10.00"), "customer asked")


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (valid(Operation="chargeback"), "Operation"),
        (valid(OperationID="has space"), "OperationID"),
        (valid(OperationID="x" * 37), "OperationID"),
        (valid(TransactionID=""), "TransactionID"),
        (valid(Amount=10), "Amount"),
        (valid(Amount="-1.00"), "Amount"),
        (valid(Amount="0.00"), "Amount"),
        (valid(Operation="void"), "Amount"),
        (valid(Reason="r" * 256), "Reason"),
        (valid(Extra="x"), "[unexpected field]"),
        (valid(OperationID="4111111111111111"), "OperationID"),
        (valid(Reason="card 4111 1111 1111 1111"), "Reason"),
        (valid(Reason="bell\x07"), "Reason"),
    ],
)
def test_a_malformed_operation_names_its_field_without_echoing_it(event, field):
    with pytest.raises(InvalidOperationRequest) as refused:
        parse_operation(event)

    assert refused.value.field == field
    text = str(refused.value)
    assert "chargeback" not in text and "has space" not in text and "4111" not in text


def test_an_operation_id_equal_to_the_transaction_id_is_refused():
    # The processor keeps both as one kind of reference: a lookup by one would list the other.
    with pytest.raises(InvalidOperationRequest) as refused:
        parse_operation({"Operation": "refund", "OperationID": "order-1", "TransactionID": "order-1"})

    assert refused.value.field == "OperationID"
