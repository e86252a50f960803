"""Card facts that are safe to keep: Luhn check, brand, last four, masked PAN."""

from __future__ import annotations

import re

_BRAND_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("AMEX", re.compile(r"^3[47]")),
    ("DINERS", re.compile(r"^3(?:0[0-5]|[68])")),
    ("JCB", re.compile(r"^35(?:2[89]|[3-8])")),
    ("DISCOVER", re.compile(r"^6(?:011|4[4-9]|5)")),
    ("UNIONPAY", re.compile(r"^62")),
    ("MASTERCARD", re.compile(r"^(?:5[1-5]|222[1-9]|22[3-9]\d|2[3-6]\d\d|27[01]\d|2720)")),
    ("VISA", re.compile(r"^4")),
)


def luhn_valid(digits: str) -> bool:
    """True when a string of digits passes the Luhn (mod 10) check."""
    if not (digits.isascii() and digits.isdigit()):
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


_DIGITS_AND_SEPARATORS = re.compile(r"\d[\d -]*\d")


def contains_card_number(text: str) -> bool:
    """True when text holds 12 to 19 consecutive digits (spaces and dashes ignored) that pass Luhn:
    a PAN where none belongs. Every window of every run is tried, so digits around a PAN do not hide it."""
    for run in _DIGITS_AND_SEPARATORS.findall(text):
        digits = re.sub(r"[ -]", "", run)
        for length in range(12, 20):
            for start in range(len(digits) - length + 1):
                window = digits[start : start + length]
                if card_brand(window) != "UNKNOWN" and luhn_valid(window):
                    return True
    return False


def card_brand(pan: str) -> str:
    for brand, pattern in _BRAND_RULES:
        if pattern.match(pan):
            return brand
    return "UNKNOWN"


def mask_pan(pan: str) -> str:
    """First two and last four digits, the rest starred: the form Converge itself returns."""
    if len(pan) <= 6:
        return "*" * len(pan)
    return pan[:2] + "*" * (len(pan) - 6) + pan[-4:]
