"""A PAN in a field where no PAN belongs is refused, and never echoed back; nor is anything else sent."""

import json
import unicodedata

import pytest

from local.payment_requests import VISA, card_request, token_request
from payments.cards import contains_card_number
from payments.errors import InvalidPaymentRequest
from payments.intake import UNEXPECTED_FIELD, parse_payment_request

PAN = VISA
ARABIC_INDIC_PAN = "".join(chr(0x0660 + int(digit)) for digit in PAN)


def rejection(event):
    with pytest.raises(InvalidPaymentRequest) as rejected:
        parse_payment_request(event)
    return rejected.value


def with_holder(name):
    return card_request(holder_name=name)


def assert_no_digits_echoed(error):
    """The rejection holds no digit of any script: not the card's, not the caller's."""
    for text in (error.field, error.message, error.transaction_id or ""):
        assert not [char for char in unicodedata.normalize("NFKC", text) if unicodedata.digit(char, None) is not None]


def test_contains_card_number_sees_through_spaces_and_dashes_but_not_other_numbers():
    assert contains_card_number(f"order for {PAN}")
    assert contains_card_number("card 4111 1111 1111 1111 please")
    assert contains_card_number("4111-1111-1111-1111")
    assert not contains_card_number("invoice 4111111111111112")  # fails Luhn: an ordinary number
    assert not contains_card_number("order 20261126")


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (card_request(PAN), "TransactionID"),
        (card_request("order-4111-1111-1111-1111"), "TransactionID"),
        (card_request(description=f"charge {PAN}"), "Description"),
        (card_request(description="4111.1111.1111.1111"), "Description"),
        (card_request(description="4111/1111/1111/1111"), "Description"),
        (card_request(description="4111,1111,1111,1111"), "Description"),
        (card_request(description="4111_1111_1111_1111"), "Description"),
        (card_request(description="4111\u00a01111\u00a01111\u00a01111"), "Description"),
        (card_request(description="\uff14" + "\uff11" * 15), "Description"),
        (card_request(description=ARABIC_INDIC_PAN), "Description"),
        (card_request(description="Mir 2200 0000 0000 0004"), "Description"),
        (card_request(description="Maestro 6759-0000-0000-0000"), "Description"),
        (card_request(description="Verve 5061 0000 0000 0005"), "Description"),
        (with_holder(f"Ada {PAN}"), "PaymentMethod.HolderName"),
        (with_holder("Ada \uff14" + "\uff11" * 15), "PaymentMethod.HolderName"),
        (with_holder(f"Ada {ARABIC_INDIC_PAN}"), "PaymentMethod.HolderName"),
        (card_request("order-2200000000000004"), "TransactionID"),
        (card_request("m6763000000000004"), "TransactionID"),
        (card_request("ref_5061_0000_0000_0005"), "TransactionID"),
    ],
)
def test_a_pan_outside_the_number_field_is_refused_without_echo(event, field):
    error = rejection(event)

    assert error.field == field
    assert error.message == "must not contain a card number"
    assert PAN not in str(error)
    assert_no_digits_echoed(error)


@pytest.mark.parametrize(
    "transaction_id",
    [
        "41111111111111110000",  # 20 digits with a Visa PAN inside: the run is judged whole
        "00004111111111111111",
        "12345678901234567890",
        "4111111111111112",  # 16 digits, not Luhn-valid
        "7000000000000005",  # Luhn-valid, but no card network starts with 7
        "order-12345678-0001",  # the joined run 123456780001 is not Luhn-valid
    ],
)
def test_a_numeric_transaction_id_that_is_not_a_card_number_is_accepted(transaction_id):
    assert parse_payment_request(card_request(transaction_id)).TransactionID == transaction_id


@pytest.mark.parametrize("transaction_id", [PAN, "order-41111111-1117", "2200000000000004"])
def test_a_transaction_id_that_is_a_card_number_is_refused(transaction_id):
    error = rejection(card_request(transaction_id))

    assert error.field == "TransactionID"
    assert error.transaction_id is None  # never reported back either


# --- unexpected fields are never named by the caller's text ------------------------------------------


@pytest.mark.parametrize(
    "name",
    [PAN, "x4111111111111111", "4111 1111 1111 1111", ARABIC_INDIC_PAN, "card_4111111111111111", "Tip", "\ud800x"],
)
def test_an_unexpected_field_is_not_echoed(name):
    error = rejection(card_request() | {name: "an extra field"})

    assert error.field == UNEXPECTED_FIELD
    assert error.message == "is not an allowed field"
    assert name not in str(error)
    assert_no_digits_echoed(error)


@pytest.mark.parametrize("name", [PAN, "x4111111111111111", "Pin", "\udfff"])
def test_an_unexpected_payment_method_field_is_named_only_by_its_parent(name):
    event = card_request()
    event["PaymentMethod"][name] = "an extra field"

    error = rejection(event)

    assert error.field == f"PaymentMethod.{UNEXPECTED_FIELD}"
    assert name not in str(error)


def test_the_unexpected_field_text_is_fixed():
    assert UNEXPECTED_FIELD == "[unexpected field]"


# --- what XML 1.0 cannot carry is refused in every string field ---------------------------------------


def _with_field(field, value):
    event = card_request("order-x")
    if field.startswith("PaymentMethod."):
        event["PaymentMethod"][field.removeprefix("PaymentMethod.")] = value
    elif field == "Token":
        event["PaymentMethod"] = {"Type": "processor_token", "Token": value}
        field = "PaymentMethod.Token"
    else:
        event[field] = value
    return event, field


_STRING_FIELDS = [
    ("TransactionID", "order-x{}"),
    ("Amount", "25.00{}"),
    ("Currency", "USD{}"),
    ("ProcessorID", "elavon{}"),
    ("Description", "test payment {}"),
    ("PaymentMethod.HolderName", "Ada {}Lovelace"),
    ("PaymentMethod.Number", PAN + "{}"),
    ("PaymentMethod.Cvv", "123{}"),
    ("Token", "a1B2c3D4e5F6g7H8{}"),
]


@pytest.mark.parametrize(("field", "template"), _STRING_FIELDS)
@pytest.mark.parametrize(
    ("character", "class_named"),
    [("\uffff", "U+FFFF"), ("\ufffe", "U+FFFE"), ("\ud800", "surrogate"), ("\udfff", "surrogate")],
)
def test_characters_xml_cannot_carry_are_refused_naming_the_field(field, template, character, class_named):
    event, field = _with_field(field, template.format(character))

    error = rejection(event)

    assert error.field == field
    assert class_named in error.message
    assert character not in error.message
    json.loads(str(error))  # the rejection itself is well-formed JSON: nothing unencodable in it


@pytest.mark.parametrize("field", ["Description", "PaymentMethod.HolderName"])
@pytest.mark.parametrize("character", ["\x00", "\x08", "\x0b", "\x1f", "\t", "\n", "\r", "\x7f", "\x85"])
def test_control_characters_are_refused_in_free_text(field, character):
    event, field = _with_field(field, f"Ada{character}Lovelace")

    error = rejection(event)

    assert error.field == field
    assert error.message == "must not contain control characters"


@pytest.mark.parametrize("text", ["caf\u00e9 \u65e5\u672c \U0001f600", "\ue000 private use", "\ufffd replacement"])
def test_characters_xml_can_carry_are_accepted_in_a_description(text):
    assert parse_payment_request(card_request(description=text)).Description == text


def test_a_double_encoded_request_is_not_an_object():
    error = rejection(json.dumps(card_request()))

    assert error.field == "$"
    assert PAN not in str(error)


def test_a_card_number_sent_as_a_processor_token_is_refused():
    request = token_request("4111111111111111")

    with pytest.raises(InvalidPaymentRequest) as refused:
        parse_payment_request(request)

    assert refused.value.field == "PaymentMethod.Token"
    assert "4111" not in str(refused.value)


def test_a_processor_token_that_is_no_card_number_is_accepted():
    assert parse_payment_request(token_request("7595301425001111")).PaymentMethod.Token == "7595301425001111"
