"""A request's fingerprint: how the intake tells a retry of a payment from another payment under its TransactionID.

A keyed hash (KMS GenerateMac, HMAC-SHA-256) of the whole request as canonical JSON, CVV left out:
it may stay with the execution for its whole history, and no CVV may, in any form. Keyed, so that
nobody without the key can test a guessed card number against it.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from payments import aws
from payments.errors import KeyServiceUnavailable
from payments.models import CardPaymentMethod, PaymentRequest


def canonical(request: PaymentRequest) -> bytes:
    fields: dict[str, Any] = request.model_dump(mode="json", exclude_none=True)
    if isinstance(request.PaymentMethod, CardPaymentMethod):
        fields["PaymentMethod"].pop("Cvv", None)
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def request_fingerprint(request: PaymentRequest, key_arn: str, client: Any | None = None) -> str:
    kms = client or aws.client("kms")
    reply = aws.call_with_transient_mapping(
        lambda: kms.generate_mac(KeyId=key_arn, Message=canonical(request), MacAlgorithm="HMAC_SHA_256"),
        KeyServiceUnavailable,
        "KMS GenerateMac",
    )
    return base64.b64encode(reply["Mac"]).decode()
