"""Envelope encryption of card data and audit payloads (Powertools Data Masking + AWS Encryption SDK).

The encryption context always binds a ciphertext to its TransactionID and its purpose, so IAM
can tell a token from an audit payload. A SecureToken is bound further, to the amount, currency
and processor it was made for (TokenBinding): opened for any other charge, it is refused.

Data Masking and the Encryption SDK under it (with `cryptography`) are imported on the first
encrypt or decrypt, not with this module: most steps import it for its names and never encrypt
(infra, the terminal ledger steps through payments.vault), and those that do pay the import once, where
they first use it (or before the SnapStart snapshot: `load`, payments.snapshot).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from payments import snapshot
from payments.aws import call_with_transient_mapping
from payments.errors import KeyServiceUnavailable

PURPOSE_SECURE_TOKEN = "secure-token"  # noqa: S105 - an encryption-context label, not a secret
PURPOSE_AUDIT = "audit"
PURPOSE_CARD_INTAKE = "card-intake"  # the card as the intake vaults it, CVV included

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_masking import DataMasking


def load() -> None:
    """Import what the first encrypt or decrypt needs (Data Masking, the Encryption SDK, cryptography),
    without calling KMS or making any client."""
    import aws_lambda_powertools.utilities.data_masking
    import aws_lambda_powertools.utilities.data_masking.exceptions
    import aws_lambda_powertools.utilities.data_masking.provider.kms.aws_encryption_sdk  # noqa: F401


@snapshot.forget_on_restore
@functools.cache
def _masker(key_arn: str) -> DataMasking:
    # One provider per key and process: it holds the data-key cache (and a KMS client of its own).
    from aws_lambda_powertools.utilities.data_masking import DataMasking
    from aws_lambda_powertools.utilities.data_masking.provider.kms.aws_encryption_sdk import AWSEncryptionSDKProvider

    return DataMasking(provider=AWSEncryptionSDKProvider(keys=[key_arn]))


class BoundToAnotherUse(ValueError):
    """The ciphertext opened, but its encryption context is not the one asked for: it was made for
    another payment, amount, currency, processor or purpose. Its plaintext is dropped unread."""


@dataclass(frozen=True)
class TokenBinding:
    """What a SecureToken may pay for: this payment, this amount in this currency, at this processor,
    as a sale (capture automatic) or an authorization (capture manual)."""

    transaction_id: str
    amount: str
    currency: str
    processor_id: str
    capture: str = "automatic"

    def bound_fields(self) -> dict[str, str]:
        bound = {"amount": self.amount, "currency": self.currency, "processor": self.processor_id}
        # Only a manual capture says so: a sale's token opens as it did before capture methods existed.
        # The match is exact either way, so neither kind of token can stand in for the other.
        return bound | {"capture": self.capture} if self.capture != "automatic" else bound


def encryption_context(transaction_id: str, purpose: str, bound: Mapping[str, str] | None = None) -> dict[str, str]:
    return {"transaction_id": transaction_id, "purpose": purpose, **(bound or {})}


def encrypt(
    data: Any, *, key_arn: str, transaction_id: str, purpose: str, bound: Mapping[str, str] | None = None
) -> str:
    context = encryption_context(transaction_id, purpose, bound)
    return str(
        call_with_transient_mapping(
            lambda: _masker(key_arn).encrypt(data, None, **context), KeyServiceUnavailable, "KMS encrypt"
        )
    )


def decrypt(
    ciphertext: str, *, key_arn: str, transaction_id: str, purpose: str, bound: Mapping[str, str] | None = None
) -> Any:
    from aws_lambda_powertools.utilities.data_masking.exceptions import (
        DataMaskingContextMismatchError,
        DataMaskingDecryptKeyError,
    )

    context = encryption_context(transaction_id, purpose, bound)
    try:
        return call_with_transient_mapping(
            lambda: _masker(key_arn).decrypt(ciphertext, None, **context), KeyServiceUnavailable, "KMS decrypt"
        )
    except DataMaskingContextMismatchError:
        raise BoundToAnotherUse(f"the ciphertext was not made for this {purpose}") from None
    except DataMaskingDecryptKeyError:
        # The Encryption SDK drops KMS's own error here: a throttled Decrypt looks the same as one KMS
        # refused. Both are retried by the state machine (a refusal a few times in vain, then it fails).
        raise KeyServiceUnavailable("KMS decrypt failed: throttled, unavailable or refused") from None


def encrypt_token(card_data: dict[str, Any], *, key_arn: str, binding: TokenBinding) -> str:
    """The contract's `encrypt_token`: card data in, a base64 SecureToken out, good for `binding` only."""
    return encrypt(
        card_data,
        key_arn=key_arn,
        transaction_id=binding.transaction_id,
        purpose=PURPOSE_SECURE_TOKEN,
        bound=binding.bound_fields(),
    )


def decrypt_token(secure_token: str, *, key_arn: str, binding: TokenBinding) -> dict[str, Any]:
    """The card data of a SecureToken made for exactly `binding`; BoundToAnotherUse for any other."""
    data = decrypt(
        secure_token,
        key_arn=key_arn,
        transaction_id=binding.transaction_id,
        purpose=PURPOSE_SECURE_TOKEN,
        bound=binding.bound_fields(),
    )
    if not isinstance(data, dict):
        raise ValueError("SecureToken does not hold card data")
    return data


def encrypt_audit_payload(payload: dict[str, Any], *, key_arn: str, transaction_id: str) -> str:
    return encrypt(payload, key_arn=key_arn, transaction_id=transaction_id, purpose=PURPOSE_AUDIT)
