"""Card facts we are allowed to keep: Luhn check, brand and the masked PAN."""

import pytest

from payments.cards import card_brand, luhn_valid, mask_pan

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
