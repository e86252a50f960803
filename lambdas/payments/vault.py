"""The CardVault: a card waits here, encrypted, from the intake until the processor has answered.

The intake deposits the card (number, expiry, holder) and, apart, its CVV, each encrypted with the
payment key under `purpose=card-intake` and bound to the TransactionID. Tokenize reads the card to
make the SecureToken; CallProcessor reads the CVV for the sale and removes it once the processor
has answered; the terminal ledger step removes what is left. The item's TTL (minutes) is only the
backstop. See docs/architecture.md#card-data-handling.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from payments import aws, crypto, settings, topology
from payments.errors import StorageUnavailable
from payments.observability import logger, metrics

CARD = "EncryptedCard"
CVV = "EncryptedCvv"
FINGERPRINT = "RequestFingerprint"
EXPIRES_AT = "ExpiresAt"


@dataclass(frozen=True)
class VaultedCard:
    """The card as the vault gives it back: plaintext, in memory only."""

    number: str = field(repr=False)
    expiry_month: int
    expiry_year: int
    holder_name: str | None = None
    fingerprint: str = ""  # of the request the intake vaulted it for


class CardNotInVault(LookupError):
    """No card is vaulted for this TransactionID (never deposited, expired, or already removed)."""


class CardVault:
    """Conditional deposit, consistent reads, and removal: nothing else touches the vault."""

    def __init__(self, table_name: str, key_arn: str | None, ttl_seconds: int, client: Any | None = None) -> None:
        # key_arn: None for a function that only removes cards (the terminal ledger steps)
        self.table_name = table_name
        self.key_arn = key_arn
        self.ttl_seconds = ttl_seconds
        self._client = client or aws.client("dynamodb")

    def deposit(self, transaction_id: str, card: VaultedCard, cvv: str, fingerprint: str) -> str | None:
        """Vault the card once. None when written; else the fingerprint of the request already vaulted."""
        key_arn, purpose = self._key(), crypto.PURPOSE_CARD_INTAKE
        sealed_card = {
            "Number": card.number,
            "ExpiryMonth": card.expiry_month,
            "ExpiryYear": card.expiry_year,
            "HolderName": card.holder_name,
        }
        item = {
            "TransactionID": {"S": transaction_id},
            CARD: {"S": crypto.encrypt(sealed_card, key_arn=key_arn, transaction_id=transaction_id, purpose=purpose)},
            CVV: {"S": crypto.encrypt({"Cvv": cvv}, key_arn=key_arn, transaction_id=transaction_id, purpose=purpose)},
            FINGERPRINT: {"S": fingerprint},
            EXPIRES_AT: {"N": str(int(time.time()) + self.ttl_seconds)},
        }
        taken = aws.append_item(self._client, self.table_name, item, "the card vault")
        return None if taken is None else str(taken.get(FINGERPRINT, {}).get("S", ""))

    def card(self, transaction_id: str) -> VaultedCard:
        item = self._item(transaction_id, CARD, FINGERPRINT)
        if CARD not in item:
            raise CardNotInVault("no card is vaulted for this payment")
        data = self._open(transaction_id, item[CARD]["S"])
        fingerprint = item.get(FINGERPRINT, {}).get("S", "")
        return VaultedCard(data["Number"], data["ExpiryMonth"], data["ExpiryYear"], data.get("HolderName"), fingerprint)

    def cvv(self, transaction_id: str) -> str | None:
        """The CVV, or None once it has been removed (the processor answered) or the card is gone."""
        item = self._item(transaction_id, CVV)
        return str(self._open(transaction_id, item[CVV]["S"])["Cvv"]) if CVV in item else None

    def remove_cvv(self, transaction_id: str) -> None:
        """After the processor's answer no CVV exists anywhere: the ciphertext goes too."""
        aws.call_with_transient_mapping(
            lambda: self._client.update_item(
                TableName=self.table_name,
                Key={"TransactionID": {"S": transaction_id}},
                UpdateExpression=f"REMOVE {CVV}",
                ConditionExpression="attribute_exists(TransactionID)",
                ReturnValues="NONE",
            ),
            StorageUnavailable,
            "DynamoDB UpdateItem on the card vault",
            ignore=("ConditionalCheckFailedException",),
        )

    def forget(self, transaction_id: str) -> None:
        """The payment has ended: nothing of its card stays in the vault."""
        aws.call_with_transient_mapping(
            lambda: self._client.delete_item(TableName=self.table_name, Key={"TransactionID": {"S": transaction_id}}),
            StorageUnavailable,
            "DynamoDB DeleteItem on the card vault",
        )

    def _item(self, transaction_id: str, *attributes: str) -> dict[str, Any]:
        """The item's `attributes`, or {} when there is none or it has expired.

        DynamoDB removes an expired item only within days and serves it until then: an item past
        its ExpiresAt is treated as gone, so the TTL is a real limit on how long a card can be used.
        """
        reply = aws.call_with_transient_mapping(
            lambda: self._client.get_item(
                TableName=self.table_name,
                Key={"TransactionID": {"S": transaction_id}},
                ConsistentRead=True,
                ProjectionExpression=", ".join((*attributes, EXPIRES_AT)),
            ),
            StorageUnavailable,
            "DynamoDB GetItem on the card vault",
        )
        item: dict[str, Any] = reply.get("Item", {})
        if item and int(item.get(EXPIRES_AT, {}).get("N", "0")) <= time.time():
            return {}
        return item

    def _open(self, transaction_id: str, ciphertext: str) -> dict[str, Any]:
        data: dict[str, Any] = crypto.decrypt(
            ciphertext, key_arn=self._key(), transaction_id=transaction_id, purpose=crypto.PURPOSE_CARD_INTAKE
        )
        return data

    def _key(self) -> str:
        if self.key_arn is None:
            raise ValueError("this function has no key: it may only remove cards")
        return self.key_arn


def remove_after_outcome(what: str, removal: Callable[[], None]) -> None:
    """Remove card data once the payment's outcome is known. Best effort: the outcome must reach the
    ledger and the caller whatever happens here; a failed removal is logged and counted
    (VaultCleanupFailures), the terminal ledger step or the item's TTL ends what is left."""
    try:
        removal()
    except Exception as error:
        logger.error(f"{what} not removed from the vault", extra={"error": type(error).__name__})
        metrics.add_metric(name="VaultCleanupFailures", unit=MetricUnit.Count, value=1)


def forget_card(transaction_id: str) -> None:
    """The payment has ended: its card leaves the vault."""
    remove_after_outcome("card", lambda: vault_from_environment().forget(transaction_id))


def vault_from_environment() -> CardVault:
    key_arn = settings.optional(topology.PAYMENT_KMS_KEY_ARN)
    return CardVault(settings.card_vault_table_name(), key_arn, topology.CARD_VAULT_TTL_SECONDS)
