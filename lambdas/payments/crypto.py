"""Envelope encryption of card data and audit payloads (Powertools Data Masking + AWS Encryption SDK).

The encryption context always binds a ciphertext to its TransactionID and its purpose, so a
SecureToken cannot be replayed for another payment, and IAM can tell token keys from audit keys.
"""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools.utilities.data_masking import DataMasking
from aws_lambda_powertools.utilities.data_masking.exceptions import DataMaskingDecryptKeyError
from aws_lambda_powertools.utilities.data_masking.provider.kms.aws_encryption_sdk import AWSEncryptionSDKProvider

from payments.aws import call_with_transient_mapping
from payments.errors import KeyServiceUnavailable

PURPOSE_SECURE_TOKEN = "secure-token"  # noqa: S105 - an encryption-context label, not a secret
PURPOSE_AUDIT = "audit"
PURPOSE_CARD_INTAKE = "card-intake"  # the card as the intake vaults it, CVV included


@functools.cache
def _masker(key_arn: str) -> DataMasking:
    # One provider per key and process: it holds the data-key cache.
    return DataMasking(provider=AWSEncryptionSDKProvider(keys=[key_arn]))


def encryption_context(transaction_id: str, purpose: str) -> dict[str, str]:
    return {"transaction_id": transaction_id, "purpose": purpose}


def encrypt(data: Any, *, key_arn: str, transaction_id: str, purpose: str) -> str:
    context = encryption_context(transaction_id, purpose)
    return str(
        call_with_transient_mapping(
            lambda: _masker(key_arn).encrypt(data, None, **context), KeyServiceUnavailable, "KMS encrypt"
        )
    )


def decrypt(ciphertext: str, *, key_arn: str, transaction_id: str, purpose: str) -> Any:
    context = encryption_context(transaction_id, purpose)
    try:
        return call_with_transient_mapping(
            lambda: _masker(key_arn).decrypt(ciphertext, None, **context), KeyServiceUnavailable, "KMS decrypt"
        )
    except DataMaskingDecryptKeyError:
        # The Encryption SDK drops KMS's own error here: a throttled Decrypt looks the same as one KMS
        # refused. Both are retried by the state machine (a refusal a few times in vain, then it fails).
        raise KeyServiceUnavailable("KMS decrypt failed: throttled, unavailable or refused") from None


def encrypt_token(card_data: dict[str, Any], *, key_arn: str, transaction_id: str) -> str:
    """The contract's `encrypt_token`: card data in, a base64 SecureToken out."""
    return encrypt(card_data, key_arn=key_arn, transaction_id=transaction_id, purpose=PURPOSE_SECURE_TOKEN)


def decrypt_token(secure_token: str, *, key_arn: str, transaction_id: str) -> dict[str, Any]:
    data = decrypt(secure_token, key_arn=key_arn, transaction_id=transaction_id, purpose=PURPOSE_SECURE_TOKEN)
    if not isinstance(data, dict):
        raise ValueError("SecureToken does not hold card data")
    return data


def encrypt_audit_payload(payload: dict[str, Any], *, key_arn: str, transaction_id: str) -> str:
    return encrypt(payload, key_arn=key_arn, transaction_id=transaction_id, purpose=PURPOSE_AUDIT)
