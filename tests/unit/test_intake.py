"""parse_payment_request: the execution input in, a PaymentRequest or one InvalidPaymentRequest out."""

import copy
import datetime as dt
import json
import re
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payments.cards import luhn_valid
from payments.errors import InvalidPaymentRequest
from payments.intake import parse_payment_request
from payments.models import CardPaymentMethod, PaymentRequest, ProcessorTokenPaymentMethod
from tests.unit.card_oracle import identifier_holds_card_number

PAN = "4111111111111111"
CVV = "123"
TRANSACTION_ID = "order-8812-1"
TODAY = dt.datetime.now(dt.UTC).date()
FUTURE_YEAR = TODAY.year + 4  # stay in the future whenever this runs
MISSING = object()


def valid_request():
    return {
        "TransactionID": TRANSACTION_ID,
        "Amount": "25.00",
        "Currency": "USD",
        "ProcessorID": "elavon",
        "PaymentMethod": {
            "Type": "card",
            "Number": PAN,
            "ExpiryMonth": 12,
            "ExpiryYear": FUTURE_YEAR,
            "Cvv": CVV,
            "HolderName": "Ada Lovelace",
        },
        "Description": "optional",
    }


def request_with(**changes):
    """The valid request with top-level fields replaced (MISSING removes one)."""
    event = valid_request()
    for name, value in changes.items():
        if value is MISSING:
            del event[name]
        else:
            event[name] = value
    return event


def card_with(**changes):
    """The valid request with PaymentMethod fields replaced (MISSING removes one)."""
    event = valid_request()
    for name, value in changes.items():
        if value is MISSING:
            del event["PaymentMethod"][name]
        else:
            event["PaymentMethod"][name] = value
    return event


def rejection(event, **kwargs):
    with pytest.raises(InvalidPaymentRequest) as raised:
        parse_payment_request(event, **kwargs)
    return raised.value


# --- accepted requests --------------------------------------------------------------------------


def test_the_design_example_is_accepted():
    request = parse_payment_request(valid_request(), execution_name=TRANSACTION_ID)

    assert isinstance(request, PaymentRequest)
    assert request.TransactionID == TRANSACTION_ID
    assert request.Amount == "25.00"
    assert request.amount == Decimal("25.00")
    assert request.Currency == "USD"
    assert request.ProcessorID == "elavon"
    assert request.Description == "optional"
    assert isinstance(request.PaymentMethod, CardPaymentMethod)
    assert request.PaymentMethod.Number == PAN
    assert request.PaymentMethod.Cvv == CVV
    assert (request.PaymentMethod.ExpiryMonth, request.PaymentMethod.ExpiryYear) == (12, FUTURE_YEAR)


def test_description_and_holder_name_are_optional():
    event = request_with(Description=MISSING)
    del event["PaymentMethod"]["HolderName"]

    request = parse_payment_request(event)

    assert request.Description is None
    assert request.PaymentMethod.HolderName is None


def test_the_parsed_request_does_not_show_card_data_in_its_repr():
    request = parse_payment_request(valid_request())

    assert PAN not in repr(request)
    assert f"'{CVV}'" not in repr(request)


def test_a_processor_token_payment_method_is_accepted():
    token = "a1B2c3D4e5F6g7H8"
    event = request_with(PaymentMethod={"Type": "processor_token", "Token": token})

    request = parse_payment_request(event)

    assert isinstance(request.PaymentMethod, ProcessorTokenPaymentMethod)
    assert request.PaymentMethod.Token == token


def test_capture_is_automatic_unless_the_request_asks_for_manual():
    assert parse_payment_request(valid_request()).capture_mode == "automatic"
    assert parse_payment_request(request_with(Capture="manual")).capture_mode == "manual"


def test_a_sale_is_the_same_request_whether_or_not_it_says_capture_automatic():
    # Its fingerprint and token binding stay what they were before capture methods existed
    said = parse_payment_request(request_with(Capture="automatic"))

    assert said == parse_payment_request(valid_request())
    assert "Capture" not in said.model_dump(exclude_none=True)


@pytest.mark.parametrize("capture", ["Manual", "later", "", 1, True])
def test_a_capture_mode_other_than_automatic_or_manual_is_refused_without_echoing_it(capture):
    refused = rejection(request_with(Capture=capture))

    assert refused.field == "Capture"
    assert refused.message == 'must be "automatic" (a sale) or "manual" (authorize now, capture later)'


def test_a_whole_yen_amount_is_accepted():
    request = parse_payment_request(request_with(Currency="JPY", Amount="1500"))

    assert request.amount == Decimal(1500)


@pytest.mark.parametrize("amount", ["0.01", "99999999.99", "1", "10.5"])
def test_amounts_at_the_edges_of_the_range_are_accepted(amount):
    assert parse_payment_request(request_with(Amount=amount)).Amount == amount


def test_a_card_expiring_this_month_is_still_accepted():
    event = card_with(ExpiryMonth=TODAY.month, ExpiryYear=TODAY.year)

    assert parse_payment_request(event).PaymentMethod.ExpiryYear == TODAY.year


def test_markup_in_the_holder_name_is_refused_without_echo():
    # A name never needs markup; the Converge client escapes values anyway (tests/converge).
    markup = "</ssl_first_name><ssl_amount>0.01"

    with pytest.raises(InvalidPaymentRequest) as rejected:
        parse_payment_request(card_with(HolderName=markup))

    assert rejected.value.field == "PaymentMethod.HolderName"
    assert markup not in str(rejected.value)


# --- the TransactionID is the execution name --------------------------------------------------


def test_transaction_id_must_equal_the_execution_name():
    error = rejection(valid_request(), execution_name="order-8812-2")

    assert error.field == "TransactionID"
    assert error.transaction_id == TRANSACTION_ID


# --- rejected requests --------------------------------------------------------------------------

_last_month = TODAY.replace(day=1) - dt.timedelta(days=1)

BAD_REQUESTS = [
    # Amount
    pytest.param(request_with(Amount=25.0), "Amount", id="amount-json-float"),
    pytest.param(request_with(Amount=25), "Amount", id="amount-json-int"),
    pytest.param(request_with(Amount="-25.00"), "Amount", id="amount-negative"),
    pytest.param(request_with(Amount="0.00"), "Amount", id="amount-zero"),
    pytest.param(request_with(Amount="25.001"), "Amount", id="amount-three-decimals-usd"),
    pytest.param(request_with(Amount="1.5", Currency="JPY"), "Amount", id="amount-decimals-jpy"),
    pytest.param(request_with(Amount="100000000.00"), "Amount", id="amount-over-max"),
    pytest.param(request_with(Amount="1e3"), "Amount", id="amount-exponent"),
    pytest.param(request_with(Amount=" 25.00"), "Amount", id="amount-leading-space"),
    pytest.param(request_with(Amount="25."), "Amount", id="amount-trailing-dot"),
    pytest.param(request_with(Amount="025.00"), "Amount", id="amount-leading-zero"),
    pytest.param(request_with(Amount=True), "Amount", id="amount-boolean"),
    pytest.param(request_with(Amount=PAN), "Amount", id="amount-holding-a-pan"),
    # Currency and processor
    pytest.param(request_with(Currency="XXX"), "Currency", id="currency-unknown"),
    pytest.param(request_with(Currency="usd"), "Currency", id="currency-lowercase"),
    pytest.param(request_with(Currency="KWD"), "Currency", id="currency-not-accepted-by-elavon"),
    pytest.param(request_with(ProcessorID="stripe"), "ProcessorID", id="processor-unknown"),
    # Card number
    pytest.param(card_with(Number="4111111111111112"), "PaymentMethod.Number", id="pan-luhn-failure"),
    pytest.param(card_with(Number="41111111113"), "PaymentMethod.Number", id="pan-11-digits"),
    pytest.param(card_with(Number="41111111111111111113"), "PaymentMethod.Number", id="pan-20-digits"),
    pytest.param(card_with(Number="4111 1111 1111 1111"), "PaymentMethod.Number", id="pan-with-spaces"),
    pytest.param(card_with(Number=int(PAN)), "PaymentMethod.Number", id="pan-json-number"),
    # Expiry
    pytest.param(card_with(ExpiryYear=2020), "PaymentMethod.ExpiryYear", id="card-expired-2020"),
    pytest.param(
        card_with(ExpiryMonth=_last_month.month, ExpiryYear=_last_month.year),
        "PaymentMethod.ExpiryYear",
        id="card-expired-last-month",
    ),
    pytest.param(card_with(ExpiryMonth=13), "PaymentMethod.ExpiryMonth", id="expiry-month-13"),
    pytest.param(card_with(ExpiryMonth=0), "PaymentMethod.ExpiryMonth", id="expiry-month-0"),
    pytest.param(card_with(ExpiryMonth="12"), "PaymentMethod.ExpiryMonth", id="expiry-month-string"),
    pytest.param(card_with(ExpiryYear=2100), "PaymentMethod.ExpiryYear", id="expiry-year-2100"),
    # CVV
    pytest.param(card_with(Cvv="12"), "PaymentMethod.Cvv", id="cvv-2-digits"),
    pytest.param(card_with(Cvv="12345"), "PaymentMethod.Cvv", id="cvv-5-digits"),
    pytest.param(card_with(Cvv=123), "PaymentMethod.Cvv", id="cvv-json-number"),
    pytest.param(card_with(Cvv="12a"), "PaymentMethod.Cvv", id="cvv-letter"),
    # Missing and extra fields
    pytest.param(request_with(TransactionID=MISSING), "TransactionID", id="missing-transaction-id"),
    pytest.param(request_with(Amount=MISSING), "Amount", id="missing-amount"),
    pytest.param(request_with(Currency=MISSING), "Currency", id="missing-currency"),
    pytest.param(request_with(ProcessorID=MISSING), "ProcessorID", id="missing-processor"),
    pytest.param(request_with(PaymentMethod=MISSING), "PaymentMethod", id="missing-payment-method"),
    pytest.param(card_with(Number=MISSING), "PaymentMethod.Number", id="missing-number"),
    pytest.param(card_with(ExpiryMonth=MISSING), "PaymentMethod.ExpiryMonth", id="missing-expiry-month"),
    pytest.param(card_with(ExpiryYear=MISSING), "PaymentMethod.ExpiryYear", id="missing-expiry-year"),
    pytest.param(card_with(Cvv=MISSING), "PaymentMethod.Cvv", id="missing-cvv"),
    # an unexpected field is never named by the caller's text, even when it looks like a name
    pytest.param(request_with(Tip="1.00"), "[unexpected field]", id="extra-top-level-field"),
    pytest.param(card_with(Pin="1234"), "PaymentMethod.[unexpected field]", id="extra-payment-method-field"),
    pytest.param(card_with(Token="a1B2c3D4e5F6g7H8"), "PaymentMethod.Token", id="token-field-in-a-card-method"),
    # Payment method type
    pytest.param(card_with(Type="cash"), "PaymentMethod.Type", id="payment-method-type-cash"),
    pytest.param(card_with(Type=MISSING), "PaymentMethod.Type", id="payment-method-type-missing"),
    pytest.param(request_with(PaymentMethod=PAN), "PaymentMethod", id="payment-method-is-a-pan"),
    pytest.param(
        request_with(PaymentMethod={"Type": "processor_token", "Token": "short"}),
        "PaymentMethod.Token",
        id="processor-token-too-short",
    ),
    # Free text
    pytest.param(request_with(Description="x" * 256), "Description", id="description-too-long"),
    pytest.param(request_with(Description="   "), "Description", id="description-blank"),
    pytest.param(card_with(HolderName="Ada\nLovelace"), "PaymentMethod.HolderName", id="holder-control-character"),
    pytest.param(card_with(HolderName="Ada\x85Lovelace"), "PaymentMethod.HolderName", id="holder-c1-control"),
    # TransactionID
    pytest.param(request_with(TransactionID="order 8812"), "TransactionID", id="transaction-id-space"),
    pytest.param(request_with(TransactionID="a" * 37), "TransactionID", id="transaction-id-37-chars"),
    pytest.param(request_with(TransactionID=""), "TransactionID", id="transaction-id-empty"),
    pytest.param(request_with(TransactionID=8812), "TransactionID", id="transaction-id-number"),
    # Not an object at all
    pytest.param([valid_request()], "$", id="event-is-a-list"),
    pytest.param("order-8812-1 25.00 USD", "$", id="event-is-a-string"),
    pytest.param(None, "$", id="event-is-null"),
]


@pytest.mark.parametrize(("event", "field"), BAD_REQUESTS)
def test_a_bad_request_is_rejected_naming_the_field(event, field):
    error = rejection(copy.deepcopy(event))

    assert error.field == field
    assert error.message


@pytest.mark.parametrize(("event", "field"), BAD_REQUESTS)
def test_a_rejection_never_echoes_card_data(event, field):
    error = rejection(copy.deepcopy(event))
    text = str(error)

    # Then the error is exactly {TransactionID, Field, Message} ...
    body = json.loads(text)
    assert body == {"TransactionID": error.transaction_id, "Field": error.field, "Message": error.message}
    # ... the TransactionID is the caller's own (when it was well formed) ...
    claimed = event.get("TransactionID") if isinstance(event, dict) else None
    assert error.transaction_id == (claimed if claimed == TRANSACTION_ID else None)
    # ... and neither the card number nor the CVV (the valid ones or the bad ones sent) appear anywhere
    payment_method = event.get("PaymentMethod") if isinstance(event, dict) else None
    number_sent = payment_method.get("Number") if isinstance(payment_method, dict) else None
    cvv_sent = payment_method.get("Cvv") if isinstance(payment_method, dict) else None
    for number in {PAN, str(number_sent)} - {"None"}:
        assert number not in text
    for cvv in {CVV, str(cvv_sent)} - {"None"}:
        assert cvv not in error.message
        assert cvv not in error.field


def test_a_float_amount_is_refused_as_a_json_number():
    error = rejection(request_with(Amount=25.0))

    assert error.field == "Amount"
    assert "JSON number" in error.message


def test_a_request_encoded_as_a_json_string_is_not_accepted_as_an_object():
    # Given the request double-encoded: the execution input is a JSON string, not a JSON object
    event = json.dumps(valid_request())

    error = rejection(event)

    assert error.field == "$"
    assert PAN not in str(error)


# --- property: whatever arrives, the answer is a request or an InvalidPaymentRequest ---------------

_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from([PAN, CVV, "25.00", "0.00", "USD", "JPY", "KWD", "elavon", "card", "processor_token"])
)
_json_values = st.recursive(
    _json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
_top_level_fields = ["TransactionID", "Amount", "Currency", "ProcessorID", "PaymentMethod", "Description"]
_card_fields = ["Type", "Number", "ExpiryMonth", "ExpiryYear", "Cvv", "HolderName"]


def _outcome(event):
    try:
        request = parse_payment_request(event)
    except InvalidPaymentRequest as error:
        assert PAN not in str(error)
        return error
    assert isinstance(request, PaymentRequest)
    return None


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_text(value, max_length):
    return isinstance(value, str) and value.strip() != "" and len(value) <= max_length


# What each field accepts, stated independently of the model. Exact for the structured fields; for
# free text, what acceptance at least requires.
_ACCEPTS = {
    "TransactionID": lambda v: (
        isinstance(v, str)
        and re.fullmatch(r"[A-Za-z0-9_-]{1,36}", v) is not None
        and not identifier_holds_card_number(v)
    ),
    "Amount": lambda v: (
        isinstance(v, str) and re.fullmatch(r"(0|[1-9][0-9]{0,7})(\.[0-9]{1,2})?", v) is not None and Decimal(v) > 0
    ),
    "Currency": lambda v: v in ("USD", "CAD", "EUR", "GBP", "AUD", "CHF", "MXN"),  # JPY takes no decimals
    "ProcessorID": lambda v: v == "elavon",
    "PaymentMethod": lambda v: isinstance(v, dict) and v.get("Type") in ("card", "processor_token"),
    "Description": lambda v: v is MISSING or v is None or _is_text(v, 255),
    "Type": lambda v: v == "card",
    "Number": lambda v: isinstance(v, str) and v.isascii() and v.isdigit() and 12 <= len(v) <= 19 and luhn_valid(v),
    "ExpiryMonth": lambda v: _is_int(v) and 1 <= v <= 12,
    "ExpiryYear": lambda v: _is_int(v) and TODAY.year <= v <= 2099,
    "Cvv": lambda v: isinstance(v, str) and v.isascii() and v.isdigit() and 3 <= len(v) <= 4,
    "HolderName": lambda v: v is MISSING or v is None or _is_text(v, 100),
}
_EXACT = {"TransactionID", "Amount", "Currency", "ProcessorID", "Type", "Number", "ExpiryMonth", "ExpiryYear", "Cvv"}


def _judge(field, value, error):
    acceptable = _ACCEPTS[field](value)
    if field in _EXACT:
        assert (error is None) == acceptable, f"{field}: accepted={error is None}, acceptable={acceptable}"
    elif error is None:
        assert acceptable, f"{field}: accepted a value it must refuse"


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(_top_level_fields), value=_json_values | st.just(MISSING))
def test_any_value_in_a_top_level_field_is_accepted_exactly_when_valid(field, value):
    error = _outcome(request_with(**{field: value}))

    _judge(field, value, error)
    if error is not None and field != "TransactionID":
        # the caller can still find their transaction in the rejection
        assert error.transaction_id == TRANSACTION_ID


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(_card_fields), value=_json_values | st.just(MISSING))
def test_any_value_in_a_card_field_is_accepted_exactly_when_valid(field, value):
    error = _outcome(card_with(**{field: value}))

    _judge(field, value, error)
    if error is not None:
        assert error.field.startswith("PaymentMethod")


@settings(max_examples=300, deadline=None, database=None)
@given(number=st.from_regex(r"[0-9]{8,24}", fullmatch=True))
def test_no_digit_string_sent_as_the_card_number_is_echoed(number):
    error = _outcome(card_with(Number=number))

    if error is not None:
        assert number not in str(error)
