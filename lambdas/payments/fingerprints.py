"""A request's fingerprint: how the intake tells a retry of a payment from another request under its TransactionID.

SHA-256 of the request as canonical JSON with the card reduced to what is not card data (brand and
last four, which the execution input shows anyway): the fingerprint says nothing about the PAN, the
expiry or the CVV, so an intake that compares fingerprints can never be used to test a guessed card
number. Two requests that differ only in the hidden digits of the card, its expiry or its CVV are
therefore the same request: the first one's execution is the answer and nothing more is charged.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from payments.cards import card_brand
from payments.models import CardPaymentMethod, PaymentRequest

# What the intake adds to a request on its way into the execution input: not part of the request.
_ADDED_BY_THE_INTAKE = ("RequestFingerprint", "IntakeRequestId")


def request_fingerprint(request: PaymentRequest) -> str:
    fields: dict[str, Any] = request.model_dump(mode="json", exclude_none=True)
    method = request.PaymentMethod
    if isinstance(method, CardPaymentMethod):
        fields["PaymentMethod"] = card_facts_of(card_brand(method.Number), method.Number[-4:])
    return _digest(fields)


def vaulted_request_fingerprint(execution_input: PaymentRequest, brand: str, last4: str) -> str:
    """The fingerprint of the request an execution input stands for, its card as the vault holds it.

    Computed, not carried: Tokenize compares it with the fingerprint the card was vaulted with, so
    an execution started by hand with the vault reference and another amount (or capture) is refused
    even if it copies the intake's RequestFingerprint.
    """
    fields: dict[str, Any] = execution_input.model_dump(mode="json", exclude_none=True)
    for name in _ADDED_BY_THE_INTAKE:
        fields.pop(name, None)
    fields["PaymentMethod"] = card_facts_of(brand, last4)
    return _digest(fields)


def card_facts_of(brand: str, last4: str) -> dict[str, str]:
    return {"Type": "card", "Brand": brand, "Last4": last4}


def _digest(fields: dict[str, Any]) -> str:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
