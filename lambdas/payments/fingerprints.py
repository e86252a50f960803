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


def request_fingerprint(request: PaymentRequest) -> str:
    fields: dict[str, Any] = request.model_dump(mode="json", exclude_none=True)
    method = request.PaymentMethod
    if isinstance(method, CardPaymentMethod):
        fields["PaymentMethod"] = {"Type": "card", "Brand": card_brand(method.Number), "Last4": method.Number[-4:]}
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
