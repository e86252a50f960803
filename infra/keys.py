"""The payment key (tokens, vaulted cards, audit payloads, tables, logs, secret, state machine) and the
card fingerprint key (HMAC: the intake's keyed fingerprint of each request)."""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.config import EnvironmentConfig


class PaymentKey(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            alias=f"alias/payment-workflow-{config.name}",
            description="PAYMENT_KMS_KEY_ARN: card data, audit payloads, ledger, audit trail, logs, workflow state",
            enable_key_rotation=True,
            removal_policy=config.removal_policy,
        )
        # Who may use it: IAM principals of this account by their own policies (the default
        # statement), and CloudWatch Logs for this account's log groups only.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchLogsOfThisAccount",
                principals=[iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],
                conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": _log_groups_of_this_account()}},
            )
        )
        # The alarm topic is encrypted with this key: CloudWatch must be able to publish to it.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsOfThisAccount",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )


def _log_groups_of_this_account() -> str:
    return f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:*"


class CardFingerprintKey(Construct):
    """CARD_FINGERPRINT_KEY_ARN: an HMAC key, for KMS GenerateMac only (payments.fingerprints).

    HMAC keys cannot rotate automatically (KMS rotates symmetric encryption keys only). Replacing it
    by hand changes every fingerprint: a retry of a payment started under the old key would be
    refused as another payment. Only the intake may use it (infra.functions).
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            alias=f"alias/payment-card-fingerprint-{config.name}",
            description="CARD_FINGERPRINT_KEY_ARN: HMAC-SHA-256 of each payment request (CVV excluded), by the intake",
            key_spec=kms.KeySpec.HMAC_256,
            key_usage=kms.KeyUsage.GENERATE_VERIFY_MAC,
            enable_key_rotation=False,
            removal_policy=config.removal_policy,
        )
