"""PaymentLedger and the audit trail (append-only), and the CardVault: keys and names from payments.topology."""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.config import EnvironmentConfig
from payments import topology

_TYPES = {"S": dynamodb.AttributeType.STRING, "N": dynamodb.AttributeType.NUMBER}


def table_name(spec: topology.TableSpec, config: EnvironmentConfig) -> str:
    return f"{spec.name}-{config.name}"


class PaymentTables(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.ledger = self._table("Ledger", topology.LEDGER_TABLE, config, key, backups=True)
        self.audit = self._table("AuditTrail", topology.AUDIT_TABLE, config, key, backups=True)
        # The CardVault holds each card, CVV included, for minutes (TTL on ExpiresAt as the backstop):
        # no point-in-time recovery, because its backups would keep the CVV ciphertext for 35 days
        # after the item is gone, and no stream, which would carry it for another 24 hours.
        self.vault = self._table("CardVault", topology.CARD_VAULT_TABLE, config, key, backups=False)

    def _table(
        self, construct_id: str, spec: topology.TableSpec, config: EnvironmentConfig, key: kms.IKey, *, backups: bool
    ) -> dynamodb.TableV2:
        return dynamodb.TableV2(
            self,
            construct_id,
            table_name=table_name(spec, config),
            partition_key=_attribute(spec.partition_key),
            sort_key=_attribute(spec.sort_key) if spec.sort_key is not None else None,
            billing=dynamodb.Billing.on_demand(),
            point_in_time_recovery_specification=(
                dynamodb.PointInTimeRecoverySpecification(point_in_time_recovery_enabled=True) if backups else None
            ),
            time_to_live_attribute=spec.ttl_attribute,
            encryption=dynamodb.TableEncryptionV2.customer_managed_key(key),
            deletion_protection=config.retain_data,
            removal_policy=config.removal_policy,
        )


def _attribute(key: topology.KeyAttribute) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=key.name, type=_TYPES[key.type])
