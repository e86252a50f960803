"""The payment key: tokens, vaulted cards, audit payloads, tables, logs, secret, state machine.

The only key of the stack. (A request's fingerprint is a plain SHA-256 over the request's non-card
fields, computed by the intake without KMS: payments.fingerprints.)"""

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
