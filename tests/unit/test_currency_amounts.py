"""An amount written with exactly its currency's minor-unit digits, as processors read it."""

from decimal import Decimal

import pytest

from payments.currencies import PROCESSOR_CURRENCIES, exponent_of, format_amount


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        ("25.00", "USD", "25.00"),
        ("25", "USD", "25.00"),
        ("25.5", "EUR", "25.50"),
        ("2500", "JPY", "2500"),
        ("2500.00", "JPY", "2500"),  # the same amount, written as yen are
        ("1.5", "KWD", "1.500"),
        ("99999999.99", "USD", "99999999.99"),
        ("0.01", "GBP", "0.01"),
    ],
)
def test_an_amount_has_exactly_its_currency_s_decimals(amount, currency, text):
    assert format_amount(Decimal(amount), currency) == text


@pytest.mark.parametrize(("amount", "currency"), [("2500.5", "JPY"), ("25.001", "USD"), ("0.0001", "KWD")])
def test_an_amount_finer_than_its_currency_is_refused_not_rounded(amount, currency):
    with pytest.raises(ValueError, match=f"more decimals than {currency}"):
        format_amount(Decimal(amount), currency)


def test_every_currency_a_processor_takes_has_an_exponent():
    for currencies in PROCESSOR_CURRENCIES.values():
        for currency in currencies:
            assert exponent_of(currency) in (0, 2, 3)
