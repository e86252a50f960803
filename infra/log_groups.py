"""Every log group of the stack: the storage key, the environment's retention, and card data masked.

The code never logs card data (log_event=False, masked audit views, no execution data in the
state machine's logs). The data-protection policy is the net under that: should a card number,
a security code or an expiry date reach a log event anyway, CloudWatch Logs masks it for every
reader without logs:Unmask and reports the finding in the log group's metrics.
"""

from __future__ import annotations

from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import EnvironmentConfig

# CloudWatch Logs' managed identifiers for payment card data (CVV/CVC and expiry included).
CARD_DATA_IDENTIFIERS = (
    logs.DataIdentifier.CREDITCARDNUMBER,
    logs.DataIdentifier.CREDITCARDSECURITYCODE,
    logs.DataIdentifier.CREDITCARDEXPIRATION,
)


def card_data_protection() -> logs.DataProtectionPolicy:
    return logs.DataProtectionPolicy(
        name="payment-card-data",
        description="Audit and mask payment card numbers, security codes and expiry dates",
        identifiers=list(CARD_DATA_IDENTIFIERS),
    )


def protected_log_group(
    scope: Construct, construct_id: str, *, name: str, config: EnvironmentConfig, key: kms.IKey
) -> logs.LogGroup:
    return logs.LogGroup(
        scope,
        construct_id,
        log_group_name=name,
        retention=logs.RetentionDays[config.log_retention],
        encryption_key=key,
        data_protection_policy=card_data_protection(),
        removal_policy=config.removal_policy,
    )
