"""Properties of the PAN guard: a card number of any network, however disguised, is refused in every field
that may carry text, without a digit of it in the rejection; a numeric ID that is no card number passes."""

import unicodedata

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from local.payment_requests import card_request
from payments.cards import contains_card_number, luhn_valid, mask_card_numbers
from payments.errors import InvalidPaymentRequest
from payments.intake import parse_payment_request
from tests.unit.card_oracle import identifier_holds_card_number

# One or more issuer prefixes of every network the guard covers, edges of ranges included.
NETWORK_PREFIXES = {
    "visa": ["4"],
    "mastercard": ["51", "55", "2221", "2500", "2720"],
    "amex": ["34", "37"],
    "discover": ["6011", "644", "649", "65"],
    "diners": ["300", "305", "3095", "36", "38", "39"],
    "jcb": ["3528", "3589", "1800", "2131"],
    "unionpay": ["62", "81"],
    "mir": ["2200", "2202", "2204"],
    "maestro": ["50", "5018", "5020", "5038", "56", "58", "6304", "6759", "6761", "6762", "6763", "69"],
    "verve": ["5060", "5061", "506099", "507865", "6500", "650002", "6509"],
    "rupay": ["60", "65", "81", "82", "508", "353", "356"],
    "troy": ["9792"],
}
PREFIXES = sorted({prefix for prefixes in NETWORK_PREFIXES.values() for prefix in prefixes})

# The zero of each decimal-digit block used to disguise a number.
SCRIPT_ZEROS = {
    "ascii": 0x30,
    "fullwidth": 0xFF10,
    "arabic-indic": 0x0660,
    "extended-arabic-indic": 0x06F0,
    "devanagari": 0x0966,
    "bengali": 0x09E6,
    "thai": 0x0E50,
    "mathematical-bold": 0x1D7CE,
}
FREE_TEXT_SEPARATORS = [
    "",
    " ",
    ".",
    "/",
    ",",
    "_",
    "-",
    "\u00a0",  # no-break space
    "\u202f",  # narrow no-break space
    "\u3000",  # ideographic space
    "\u200b",  # zero-width space
    "\u00ad",  # soft hyphen
    " - ",
    ", ",
    ". ",
    " / ",
    "...",
    "  ",
]
IDENTIFIER_SEPARATORS = ["", "-", "_", "__", "-_"]


def complete_with_luhn_digit(body):
    return next(body + digit for digit in "0123456789" if luhn_valid(body + digit))


@st.composite
def card_numbers(draw):
    """A Luhn-valid card number, 12 to 19 digits, of a network the guard covers."""
    prefix = draw(st.sampled_from(PREFIXES))
    length = draw(st.integers(min_value=max(12, len(prefix) + 1), max_value=19))
    filler = length - len(prefix) - 1
    body = prefix + draw(st.text(alphabet="0123456789", min_size=filler, max_size=filler))
    return complete_with_luhn_digit(body)


@st.composite
def groupings(draw, digits, sizes):
    """The digits cut into groups whose sizes are drawn from `sizes`."""
    groups = []
    rest = digits
    while rest:
        size = draw(sizes)
        groups.append(rest[:size])
        rest = rest[size:]
    return groups


@st.composite
def disguised_in_free_text(draw, pan):
    """pan as a person or a careless system might write it: grouped, separated, in other scripts, in words."""
    if draw(st.booleans()):  # one script for the whole number, or a mix
        scripts = [draw(st.sampled_from(sorted(SCRIPT_ZEROS)))] * len(pan)
    else:
        scripts = draw(st.lists(st.sampled_from(sorted(SCRIPT_ZEROS)), min_size=len(pan), max_size=len(pan)))
    written = "".join(chr(SCRIPT_ZEROS[script] + int(digit)) for script, digit in zip(scripts, pan, strict=True))
    groups = draw(groupings(written, st.integers(min_value=1, max_value=8)))
    if draw(st.booleans()):  # one separator throughout, or a different one in each gap
        separators = [draw(st.sampled_from(FREE_TEXT_SEPARATORS))] * len(groups)
    else:
        separators = draw(st.lists(st.sampled_from(FREE_TEXT_SEPARATORS), min_size=len(groups), max_size=len(groups)))
    number = groups[0] + "".join(separator + group for separator, group in zip(separators, groups[1:], strict=False))
    before = draw(st.sampled_from(["", "card ", "ref", "Karte Nr. ", "paid with ", "x"]))
    after = draw(st.sampled_from(["", " thanks", "x", "ab", " 12/27 123", ", exp. 12/27"]))
    return before + number + after


@st.composite
def disguised_in_an_identifier(draw, pan):
    groups = draw(groupings(pan, st.integers(min_value=2, max_value=8)))
    separators = draw(st.lists(st.sampled_from(IDENTIFIER_SEPARATORS), min_size=len(groups), max_size=len(groups)))
    number = groups[0] + "".join(separator + group for separator, group in zip(separators, groups[1:], strict=False))
    before = draw(st.sampled_from(["", "order-", "ord", "x_", "PAY"]))
    after = draw(st.sampled_from(["", "-1", "x", "_retry", "Z"]))
    identifier = before + number + after
    assume(len(identifier) <= 36)
    return identifier


def digits_in(text):
    """Every digit character of any script in text, NFKC-normalised first."""
    return [char for char in unicodedata.normalize("NFKC", text) if unicodedata.digit(char, None) is not None]


def assert_refused_without_echo(event, field, pan, sent):
    try:
        parse_payment_request(event)
    except InvalidPaymentRequest as error:
        assert error.field == field
        assert error.message == "must not contain a card number"
        # none of the card's digits, in any script, in any part of the rejection
        for part in (error.field, error.message, error.transaction_id or ""):
            assert digits_in(part) == [], part
        assert pan not in str(error)
        assert sent not in error.message
        return
    raise AssertionError(f"{field}: a card number was accepted")


# Each disguise property has held for 4,000 examples; the suite runs fewer to stay fast.
_PROPERTY = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@_PROPERTY
@given(data=st.data(), pan=card_numbers())
def test_a_disguised_card_number_in_the_description_is_refused(data, pan):
    description = data.draw(disguised_in_free_text(pan))

    assert_refused_without_echo(card_request(description=description), "Description", pan, description)


@_PROPERTY
@given(data=st.data(), pan=card_numbers())
def test_a_disguised_card_number_in_the_holder_name_is_refused(data, pan):
    holder_name = "Ada " + data.draw(disguised_in_free_text(pan))

    assert_refused_without_echo(card_request(holder_name=holder_name), "PaymentMethod.HolderName", pan, holder_name)


@_PROPERTY
@given(data=st.data(), pan=card_numbers())
def test_a_card_number_in_the_transaction_id_is_refused(data, pan):
    transaction_id = data.draw(disguised_in_an_identifier(pan))

    assert_refused_without_echo(card_request(transaction_id), "TransactionID", pan, transaction_id)


@_PROPERTY
@given(data=st.data(), pan=card_numbers())
def test_the_audit_mask_hides_all_but_six_digits_of_a_disguised_card_number(data, pan):
    description = data.draw(disguised_in_free_text(pan))

    masked = mask_card_numbers(description)

    assert not contains_card_number(masked)
    # at least the card's middle digits are starred (more when another card number overlaps it)
    assert len(digits_in(masked)) <= len(digits_in(description)) - (len(pan) - 6)


# --- numeric IDs that are no card number pass ----------------------------------------------------------


@_PROPERTY
@given(transaction_id=st.from_regex(r"[0-9]{1,36}", fullmatch=True))
def test_a_numeric_transaction_id_that_is_not_a_card_number_is_accepted(transaction_id):
    assume(not identifier_holds_card_number(transaction_id))

    assert parse_payment_request(card_request(transaction_id)).TransactionID == transaction_id


@_PROPERTY
@given(groups=st.lists(st.from_regex(r"[0-9]{1,12}", fullmatch=True), min_size=1, max_size=6))
def test_a_grouped_numeric_transaction_id_that_holds_no_card_number_is_accepted(groups):
    transaction_id = "-".join(groups)
    assume(len(transaction_id) <= 36 and not identifier_holds_card_number(transaction_id))

    assert parse_payment_request(card_request(transaction_id)).TransactionID == transaction_id
