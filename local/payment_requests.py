"""Payment requests, built in one place for the tests, the command line, the chaos run and the benchmark.

Test data must never trip the card-number guard by chance: TransactionIDs drawn here are letters
only after their prefix, so no run of digits in them can look like a card number. Expiry dates
are always in the future, whatever year the suite runs in.
"""

from __future__ import annotations

import datetime as dt
import secrets
import string
from typing import Any

# The sandbox's test cards (see the README): these approve, DECLINING always declines.
VISA = "4111111111111111"
MASTERCARD = "5500000000000004"
AMEX = "370000000000002"
DISCOVER = "6011000000000012"
DECLINING = "4000000000000002"
APPROVING = (VISA, MASTERCARD, AMEX, DISCOVER)
TEST_PANS = (*APPROVING, DECLINING)
TEST_CVV = "847"  # every scanned test payment uses it; Amex takes four digits
TEST_AMEX_CVV = "8473"

_ID_ALPHABET = string.ascii_lowercase


def new_transaction_id(prefix: str = "pay", length: int = 16) -> str:
    """A fresh TransactionID: `prefix-` and random letters, at most 36 characters."""
    token = "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))
    return f"{prefix}-{token}"[:36]


def future_expiry_year(years_ahead: int = 4) -> int:
    return dt.datetime.now(dt.UTC).year + years_ahead


def cvv_for(number: str) -> str:
    """Amex cards carry a four-digit code, the others three."""
    return TEST_AMEX_CVV if number.startswith(("34", "37")) else TEST_CVV


def card_method(
    number: str = VISA,
    *,
    cvv: str | None = None,
    expiry_month: Any = 12,
    expiry_year: Any = None,
    holder_name: str | None = "Ada Lovelace",
) -> dict[str, Any]:
    method: dict[str, Any] = {
        "Type": "card",
        "Number": number,
        "ExpiryMonth": expiry_month,
        "ExpiryYear": future_expiry_year() if expiry_year is None else expiry_year,
        "Cvv": cvv_for(number) if cvv is None else cvv,
    }
    if holder_name is not None:
        method["HolderName"] = holder_name
    return method


def card_request(
    transaction_id: str | None = None,
    *,
    number: str = VISA,
    amount: Any = "25.00",
    currency: str = "USD",
    cvv: str | None = None,
    holder_name: str | None = "Ada Lovelace",
    description: str | None = "test payment",
    processor_id: str = "elavon",
    capture: str | None = None,
) -> dict[str, Any]:
    """A card payment request as an upstream service sends it (capture "manual": authorize only)."""
    request = _request(
        transaction_id,
        amount,
        currency,
        card_method(number, cvv=cvv, holder_name=holder_name),
        description,
        processor_id,
    )
    return request if capture is None else request | {"Capture": capture}


def token_request(
    token: str,
    transaction_id: str | None = None,
    *,
    amount: Any = "25.00",
    currency: str = "USD",
    description: str | None = "test payment",
    processor_id: str = "elavon",
) -> dict[str, Any]:
    """A payment on a processor token (a Converge ssl_token): no card data at all."""
    method = {"Type": "processor_token", "Token": token}
    return _request(transaction_id, amount, currency, method, description, processor_id)


def _request(
    transaction_id: str | None,
    amount: Any,
    currency: str,
    method: dict[str, Any],
    description: str | None,
    processor_id: str,
) -> dict[str, Any]:
    request: dict[str, Any] = {
        "TransactionID": transaction_id or new_transaction_id(),
        "Amount": amount,
        "Currency": currency,
        "ProcessorID": processor_id,
        "PaymentMethod": method,
    }
    if description is not None:
        request["Description"] = description
    return request
