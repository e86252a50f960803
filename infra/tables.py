"""PaymentLedger and the audit trail: append-only tables, keys and names from payments.topology."""

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
        self.ledger = self._table("Ledger", topology.LEDGER_TABLE, config, key)
        self.audit = self._table("AuditTrail", topology.AUDIT_TABLE, config, key)

    def _table(
        self, construct_id: str, spec: topology.TableSpec, config: EnvironmentConfig, key: kms.IKey
    ) -> dynamodb.TableV2:
        return dynamodb.TableV2(
            self,
            construct_id,
            table_name=table_name(spec, config),
            partition_key=dynamodb.Attribute(name=spec.partition_key.name, type=_TYPES[spec.partition_key.type]),
            sort_key=dynamodb.Attribute(name=spec.sort_key.name, type=_TYPES[spec.sort_key.type]),
            billing=dynamodb.Billing.on_demand(),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryptionV2.customer_managed_key(key),
            deletion_protection=config.retain_data,
            removal_policy=config.removal_policy,
        )
