"""Card facts we are allowed to keep: Luhn check, brand and the masked PAN; and what is a card number."""

import pytest

from payments.cards import (
    card_brand,
    contains_card_number,
    find_card_numbers,
    has_card_prefix,
    identifier_contains_card_number,
    is_card_number,
    luhn_valid,
    mask_card_numbers,
    mask_pan,
)

VALID_TEST_PANS = (
    "4111111111111111",  # Visa
    "5500000000000004",  # Mastercard
    "370000000000002",  # Amex
    "6011000000000012",  # Discover
    "4000000000000002",  # Visa
)


@pytest.mark.parametrize("pan", VALID_TEST_PANS)
def test_known_test_pans_pass_luhn(pan):
    assert luhn_valid(pan)


@pytest.mark.parametrize("pan", VALID_TEST_PANS)
def test_changing_any_single_digit_fails_luhn(pan):
    # Luhn catches every single-digit typo: try each position with each other digit
    for position, original in enumerate(pan):
        for digit in "0123456789":
            if digit == original:
                continue
            typo = pan[:position] + digit + pan[position + 1 :]
            assert not luhn_valid(typo), f"typo at position {position} ({digit}) passed Luhn"


@pytest.mark.parametrize(
    "text",
    ["", "4111 1111 1111 1111", "4111-1111-1111-1111", "411111111111111a", "abcdefghijklmnop", "-4111111111111111"],
)
def test_non_digits_are_not_luhn_valid(text):
    assert luhn_valid(text) is False


def test_a_digit_character_int_cannot_read_is_invalid_rather_than_an_error():
    # "²" is str.isdigit() but int("²") raises: a validator must answer False, not crash
    assert luhn_valid("411111111111111\u00b2") is False


def test_non_ascii_digits_are_not_card_digits():
    # 4111111111111111 in Arabic-Indic digits: a PAN is ASCII digits, as the request model requires
    assert luhn_valid("\u0664" + "\u0661" * 15) is False


@pytest.mark.parametrize(
    ("pan", "brand"),
    [
        ("4111111111111111", "VISA"),
        ("4000000000000002", "VISA"),
        ("5100000000000008", "MASTERCARD"),
        ("5500000000000004", "MASTERCARD"),
        ("2221000000000009", "MASTERCARD"),
        ("2720990000000007", "MASTERCARD"),
        ("2300000000000003", "MASTERCARD"),
        ("370000000000002", "AMEX"),
        ("340000000000009", "AMEX"),
        ("6011000000000012", "DISCOVER"),
        ("6445644564456445", "DISCOVER"),
        ("6500000000000002", "DISCOVER"),
        ("3530111333300000", "JCB"),
        ("3589000000000003", "JCB"),
        ("30569309025904", "DINERS"),
        ("36000000000008", "DINERS"),
        ("38520000023237", "DINERS"),
        ("6200000000000005", "UNIONPAY"),
        ("9999999999999995", "UNKNOWN"),
    ],
)
def test_card_brand(pan, brand):
    assert card_brand(pan) == brand


@pytest.mark.parametrize(
    "prefix",
    ["2220", "2721", "5000", "5600", "3527", "3590", "306", "643"],
)
def test_prefixes_just_outside_a_brand_range_are_unknown(prefix):
    pan = prefix + "0" * (16 - len(prefix))
    assert card_brand(pan) == "UNKNOWN"


@pytest.mark.parametrize(
    ("pan", "masked"),
    [
        ("4111111111111111", "41**********1111"),
        ("370000000000002", "37*********0002"),
        ("6011000000000012", "60**********0012"),
        ("4111111111111111110", "41*************1110"),
        ("411111111111", "41******1111"),
    ],
)
def test_mask_pan_keeps_first_two_and_last_four(pan, masked):
    assert mask_pan(pan) == masked
    assert len(mask_pan(pan)) == len(pan)


@pytest.mark.parametrize("length", range(12, 20))
def test_mask_pan_shows_exactly_six_digits_of_any_pan_length(length):
    pan = "4" + "1" * (length - 1)
    masked = mask_pan(pan)
    assert sum(char.isdigit() for char in masked) == 6
    assert pan not in masked


@pytest.mark.parametrize("short", ["", "1", "123456"])
def test_mask_pan_hides_short_values_entirely(short):
    assert mask_pan(short) == "*" * len(short)


# --- what is a card number: 12-19 digits, a network's prefix, Luhn-valid ------------------------


@pytest.mark.parametrize(
    ("network", "pan"),
    [
        ("Visa 13", "4000000000006"),
        ("Visa 19", "4000000000000000006"),
        ("Mastercard 51", "5100000000000008"),
        ("Mastercard 2221", "2221000000000009"),
        ("Mastercard 2720", "2720000000000005"),
        ("Amex", "340000000000009"),
        ("Discover 644", "6440000000000005"),
        ("Diners 36", "36000000000008"),
        ("Diners 3095", "30950000000000"),
        ("JCB 3528", "3528000000000007"),
        ("JCB 3589", "3589000000000003"),
        ("JCB 1800", "180000000000002"),
        ("JCB 2131", "213100000000001"),
        ("UnionPay 62, 17 digits", "62000000000000000"),
        ("UnionPay / RuPay 81", "8100000000000002"),
        ("RuPay 82", "8200000000000001"),
        ("RuPay 508", "5080000000000002"),
        ("RuPay 60", "6000000000000007"),
        ("Mir 2200", "2200000000000004"),
        ("Mir 2204", "2204000000000000"),
        ("Maestro 5018, 12 digits", "501800000009"),
        ("Maestro 5020, 19 digits", "5020000000000000003"),
        ("Maestro 5038", "5038000000000005"),
        ("Maestro 6304", "6304000000000000"),
        ("Maestro 6759", "6759000000000000"),
        ("Maestro 6761", "6761000000000006"),
        ("Maestro 6763", "6763000000000004"),
        ("Verve 5061", "5061000000000005"),
        ("Verve 650002", "6500020000000000"),
        ("Troy 9792", "9792000000000003"),
    ],
)
def test_a_card_number_of_every_network_is_a_card_number(network, pan):
    assert is_card_number(pan), network


@pytest.mark.parametrize(
    "number",
    [
        "100000000000009",  # UATP (1...): not a network the guard covers
        "7000000000000005",  # 7: no card network
        "2205000000000009",  # between Mir (2200-2204) and Mastercard (2221-2720)
        "2721000000000004",
        "3527000000000008",  # just below JCB
        "3590000000000000",  # just above JCB
        "30600000000001",  # just above Diners 300-305
        "3300000000000001",
        "8000000000000003",
        "8300000000000000",
        "4111111111111112",  # a card prefix, but not Luhn-valid
        "41111111117",  # 11 digits
        "41111111111111111113",  # 20 digits
    ],
)
def test_other_numbers_are_not_card_numbers(number):
    assert not is_card_number(number)


@pytest.mark.parametrize(("prefix", "card"), [("2199", False), ("2200", True), ("2204", True), ("2220", False)])
def test_card_prefixes_have_exact_edges(prefix, card):
    assert has_card_prefix(prefix + "000000000000") is card


# --- the guard for free text ---------------------------------------------------------------------

PAN = "4111111111111111"


@pytest.mark.parametrize(
    "text",
    [
        "4111.1111.1111.1111",
        "4111/1111/1111/1111",
        "4111,1111,1111,1111",
        "4111_1111_1111_1111",
        "4111\u00a01111\u00a01111\u00a01111",  # no-break spaces
        "4111\u202f1111\u30001111 1111",  # narrow no-break and ideographic spaces
        "4111 - 1111 - 1111 - 1111",
        "4111...1111...1111...1111",
        "4111    1111 1111 1111",  # a run of spaces counts as one
        "4111\u200b1111\u00ad1111\u200d1111",  # zero-width characters are invisible
        "\uff14" + "\uff11" * 15,  # fullwidth
        "\u0664" + "\u0661" * 15,  # Arabic-Indic
        "\u06f4" + "\u06f1" * 15,  # Extended Arabic-Indic
        "\u096a" + "\u0967" * 15,  # Devanagari
        "\U0001d7d2" + "\U0001d7cf" * 15,  # mathematical bold
        "\u0664\uff11\u09671 1111 \u0661111 1111",  # mixed scripts
        "ref4111111111111111x",  # embedded in a word
        "card 4111 1111 1111 1111 12/27 123",  # PAN, expiry and CVV: the PAN's groups are tried alone
        "Mir 2200 0000 0000 0004",
    ],
)
def test_the_free_text_guard_sees_through_separators_and_scripts(text):
    assert contains_card_number(text)


@pytest.mark.parametrize(
    "text",
    [
        "order 20261126",
        "invoice 4111111111111112",  # not Luhn-valid
        "41111111111111110000",  # 20 digits: a whole run is judged, never a window inside it
        "00004111111111111111",
        "4111x1111x1111x1111",  # letters end a number
        "4111 -- 1111 -- 1111 -- 1111",  # a gap of more than three characters ends a number
        "7000 0000 0000 0005",  # no card network starts with 7
        "Invoice 2024-001, 2024-002",
    ],
)
def test_the_free_text_guard_leaves_other_numbers_alone(text):
    assert not contains_card_number(text)


def test_find_card_numbers_reports_the_digits_and_where_they_are():
    (match,) = find_card_numbers("pay \u0664111-1111-1111-1111!")

    assert match.digits == PAN
    assert match.positions == (4, 5, 6, 7, 9, 10, 11, 12, 14, 15, 16, 17, 19, 20, 21, 22)
    assert PAN not in repr(match)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("card 4111 1111 1111 1111 thanks", "card 41** **** **** 1111 thanks"),
        ("ref4111111111111111", "ref41**********1111"),
        ("\uff14\uff11" + "\uff11" * 14, "\uff14\uff11" + "*" * 10 + "\uff11" * 4),
        ("order 20261126, 3 items", "order 20261126, 3 items"),
        ("41111111111111110000", "41111111111111110000"),
    ],
)
def test_mask_card_numbers_masks_only_the_card_digits(text, masked):
    assert mask_card_numbers(text) == masked
    assert not contains_card_number(mask_card_numbers(text))


# --- the guard for identifiers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "identifier",
    [
        PAN,
        "order-4111-1111-1111-1111",
        "order_4111_1111_1111_1111",
        "4111--1111__1111-_1111",  # any sequence of '-' and '_' joins
        "x4111111111111111y",
        "order-41111111-1117",  # the joined run 411111111117 is a 12-digit Visa
        "order-4111111111111111-2",  # consecutive whole groups are tried: the PAN's group alone
    ],
)
def test_an_identifier_holding_a_card_number_is_caught(identifier):
    assert identifier_contains_card_number(identifier)


@pytest.mark.parametrize(
    "identifier",
    [
        "order-12345678-0001",  # 123456780001 is not Luhn-valid
        "41111111111111110000",  # a 20-digit ID with a Visa PAN inside: one group, never split
        "12345678901234567890",
        "4111111111111112",
        "order-4111x1111x1111x1111",
        "7000000000000005",
    ],
)
def test_an_identifier_without_a_card_number_is_not_caught(identifier):
    assert not identifier_contains_card_number(identifier)
