"""Configuration from the function's environment, read at call time (one source: topology)."""

from __future__ import annotations

import os

from payments import topology


class ConfigurationError(RuntimeError):
    """A required environment variable is missing: a deployment bug."""


def required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise ConfigurationError(f"environment variable {name} is not set")
    return value


def optional(name: str) -> str | None:
    return os.environ.get(name) or None


def kms_key_arn() -> str:
    """The card-data key: SecureTokens and vaulted cards."""
    return required(topology.PAYMENT_KMS_KEY_ARN)


def audit_kms_key_arn() -> str:
    """The audit key: CallProcessor seals audit payloads with it and cannot open them."""
    return required(topology.AUDIT_KMS_KEY_ARN)


def ledger_table_name() -> str:
    return required(topology.DYNAMODB_TABLE_NAME)


def audit_table_name() -> str:
    return required(topology.DYNAMODB_AUDIT_TABLE_NAME)


def seconds(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def whole_number(name: str, default: int) -> int:
    """A positive whole number from the environment, or `default` when it is not set."""
    value = os.environ.get(name)
    if not value:
        return default
    number = int(value)
    if number < 1:
        raise ConfigurationError(f"environment variable {name} must be a whole number of at least 1")
    return number


def card_vault_table_name() -> str:
    return required(topology.CARD_VAULT_TABLE_NAME)
