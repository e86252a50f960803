"""A PAN in a field where no PAN belongs is refused, and never echoed back."""

import pytest

from payments.cards import contains_card_number
from payments.errors import InvalidPaymentRequest
from payments.intake import parse_payment_request

PAN = "4111111111111111"


def request(**changes):
    base = {
        "TransactionID": "order-1",
        "Amount": "25.00",
        "Currency": "USD",
        "ProcessorID": "elavon",
        "PaymentMethod": {"Type": "card", "Number": PAN, "ExpiryMonth": 12, "ExpiryYear": 2099, "Cvv": "123"},
    }
    return base | changes


def test_contains_card_number_sees_through_spaces_and_dashes_but_not_other_numbers():
    assert contains_card_number(f"order for {PAN}")
    assert contains_card_number("card 4111 1111 1111 1111 please")
    assert contains_card_number("4111-1111-1111-1111")
    assert not contains_card_number("invoice 4111111111111112")  # fails Luhn: an ordinary number
    assert not contains_card_number("order 20261126")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"TransactionID": PAN}, "TransactionID"),
        ({"Description": f"charge {PAN}"}, "Description"),
        ({"PaymentMethod": request()["PaymentMethod"] | {"HolderName": f"Ada {PAN}"}}, "PaymentMethod.HolderName"),
        ({PAN: "an extra field named after the card"}, "[unexpected field]"),
    ],
)
def test_a_pan_outside_the_number_field_is_refused_without_echo(changes, field):
    with pytest.raises(InvalidPaymentRequest) as rejected:
        parse_payment_request(request(**changes) if PAN not in changes else request() | changes)

    assert rejected.value.field == field
    assert PAN not in str(rejected.value)


def test_a_double_encoded_request_is_not_an_object():
    import json

    with pytest.raises(InvalidPaymentRequest) as rejected:
        parse_payment_request(json.dumps(request()))

    assert rejected.value.field == "$"
