"""PaymentLedger and the audit trail (append-only), the CardVault, and the record of the events published:
keys and names from payments.topology.

Each table carries a resource policy that holds whatever any identity policy in the account says
(an explicit Deny wins over every Allow, the account root's included):

- PaymentLedger and PaymentAuditTrail: no principal may change or delete an item (UpdateItem,
  DeleteItem, BatchWriteItem, PartiQL INSERT/UPDATE/DELETE), and only the workflow's own writers may
  PutItem, which they do conditionally (attribute_not_exists): append-only for everyone.
- CardVault: each item action only to the roles that use it (payments.vault): the intake deposits,
  Tokenize and CallProcessor read, CallProcessor removes the CVV, the terminal ledger steps and the
  state machine remove the item; no one queries, scans or batches. Its TTL still deletes expired
  items: those deletions are DynamoDB's own background work, not a DeleteItem request by any
  principal, so no policy applies to them (DynamoDB Developer Guide, "Time to Live": TTL deletes
  consume no write throughput and appear in the stream as deletions by the service,
  dynamodb.amazonaws.com).
- PaymentEventsPublished (LedgerEvents' Powertools idempotency records): its item actions to
  LedgerEvents alone, no bulk access for anyone. A record written by anyone else could mark an
  event published that never was (its idempotency key is the event's EventID). Its TTL
  ("expiration") removes the records, as the vault's does.

The ledger has a stream in every environment (new and old images): LedgerEvents reads it (the ledger
is the outbox of the payments bus), and in prod the archive too. The audit trail streams only where
there is an archive.

The policies name the roles by aws:PrincipalArn and the table by an ARN built from its name
(infra.names): a table's own policy cannot refer to the table (CloudFormation rejects the circular
reference), and the roles refer to the table only from their separate policy resources, so
table -> role is the only edge between them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra import names
from infra.config import EnvironmentConfig
from infra.scanners import skip_checkov
from payments import topology

_TYPES = {"S": dynamodb.AttributeType.STRING, "N": dynamodb.AttributeType.NUMBER}

# What changes or removes an item (Service Authorization Reference, Amazon DynamoDB, "Actions"): a
# transaction's writes are authorized as these same actions, so TransactWriteItems is covered too.
CHANGE_ACTIONS = (
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
    "dynamodb:PartiQLInsert",
)
# Reading many items at once: nothing of the workflow reads the vault but by its key.
BULK_READ_ACTIONS = ("dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:Scan", "dynamodb:PartiQLSelect")


class PaymentTables(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, key: kms.IKey) -> None:
        """`key`: the storage key. The ledger has a stream of every item's old and new image in every
        environment (LedgerEvents publishes its terminal entries from it); with an archive (prod), so
        has the audit trail, and infra.archive copies both under Object Lock."""
        super().__init__(scope, construct_id)
        self.config = config
        images = dynamodb.StreamViewType.NEW_AND_OLD_IMAGES
        self.ledger = self._table("Ledger", topology.LEDGER_TABLE, config, key, backups=True, stream=images)
        audit_stream = images if config.archived else None
        self.audit = self._table("AuditTrail", topology.AUDIT_TABLE, config, key, backups=True, stream=audit_stream)
        # The CardVault holds each card, CVV included, for minutes (TTL on ExpiresAt as the backstop):
        # no point-in-time recovery, because its backups would keep the CVV ciphertext for 35 days
        # after the item is gone, and no stream, which would carry it for another 24 hours.
        self.vault = self._table("CardVault", topology.CARD_VAULT_TABLE, config, key, backups=False, stream=None)
        skip_checkov(
            self.vault,
            "CKV_AWS_165",
            "No point-in-time recovery on purpose: the CardVault holds each card and CVV for minutes (TTL as the "
            "backstop), and its backups would keep the CVV ciphertext for 35 days after the item is gone (PCI DSS "
            "3.3.1: no sensitive authentication data kept after authorization). Nothing in it needs restoring.",
        )
        # Which events LedgerEvents has published, by EventID (TTL on "expiration"): no stream, nothing to
        # archive. Backed up as the ledger is: restored, it keeps a redelivered record from publishing twice.
        self.idempotency = self._table(
            "EventsPublished", topology.IDEMPOTENCY_TABLE, config, key, backups=True, stream=None
        )

    @property
    def append_only(self) -> dict[topology.TableSpec, dynamodb.TableV2]:
        return {topology.LEDGER_TABLE: self.ledger, topology.AUDIT_TABLE: self.audit}

    def restrict_writes(
        self,
        *,
        ledger_writers: Sequence[iam.IRole],
        audit_writers: Sequence[iam.IRole],
        vault_users: Mapping[str, Sequence[iam.IRole]],
        idempotency_users: Sequence[iam.IRole],
    ) -> None:
        """The four resource policies. `vault_users`: by DynamoDB action, the roles that may perform it;
        `idempotency_users`: the roles that keep the idempotency records (LedgerEvents)."""
        for spec, table, writers in (
            (topology.LEDGER_TABLE, self.ledger, ledger_writers),
            (topology.AUDIT_TABLE, self.audit, audit_writers),
        ):
            for statement in append_only_statements(self, spec, self.config, writers):
                table.add_to_resource_policy(statement)
        for statement in vault_statements(self, self.config, vault_users):
            self.vault.add_to_resource_policy(statement)
        for statement in idempotency_statements(self, self.config, idempotency_users):
            self.idempotency.add_to_resource_policy(statement)

    def _table(
        self,
        construct_id: str,
        spec: topology.TableSpec,
        config: EnvironmentConfig,
        key: kms.IKey,
        *,
        backups: bool,
        stream: dynamodb.StreamViewType | None,
    ) -> dynamodb.TableV2:
        return dynamodb.TableV2(
            self,
            construct_id,
            table_name=names.table_name(spec, config),
            partition_key=_attribute(spec.partition_key),
            sort_key=_attribute(spec.sort_key) if spec.sort_key is not None else None,
            billing=dynamodb.Billing.on_demand(),
            point_in_time_recovery_specification=(
                dynamodb.PointInTimeRecoverySpecification(point_in_time_recovery_enabled=True) if backups else None
            ),
            time_to_live_attribute=spec.ttl_attribute,
            encryption=dynamodb.TableEncryptionV2.customer_managed_key(key),
            dynamo_stream=stream,
            deletion_protection=config.retain_data,
            removal_policy=config.removal_policy,
            global_secondary_indexes=[
                dynamodb.GlobalSecondaryIndexPropsV2(
                    index_name=index.name,
                    partition_key=_attribute(index.partition_key),
                    sort_key=_attribute(index.sort_key),
                    projection_type=dynamodb.ProjectionType.INCLUDE,
                    non_key_attributes=list(index.projected),
                )
                for index in spec.indexes
            ]
            or None,
        )


def append_only_statements(
    scope: Construct, spec: topology.TableSpec, config: EnvironmentConfig, writers: Sequence[iam.IRole]
) -> list[iam.PolicyStatement]:
    """Nobody changes or deletes an item; only `writers` put one (and they hold PutItem alone)."""
    table = names.table_arn(scope, spec, config)
    return [
        iam.PolicyStatement(
            sid="NoChangeOrDeletion",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=list(CHANGE_ACTIONS),
            resources=[table],
        ),
        _deny_all_but("AppendByTheWorkflowOnly", ["dynamodb:PutItem"], table, writers),
    ]


def vault_statements(
    scope: Construct, config: EnvironmentConfig, users: Mapping[str, Sequence[iam.IRole]]
) -> list[iam.PolicyStatement]:
    """Each item action of the vault only to its roles; every bulk read and batch write to no one."""
    table = names.table_arn(scope, topology.CARD_VAULT_TABLE, config)
    sids = {
        "dynamodb:PutItem": "DepositByTheIntakeOnly",
        "dynamodb:GetItem": "ReadByTheChargingStepsOnly",
        "dynamodb:UpdateItem": "CvvRemovalByCallProcessorOnly",
        "dynamodb:DeleteItem": "RemovalByTheWorkflowOnly",
    }
    if set(users) != set(sids):
        raise ValueError(f"the vault's users are given by action: {sorted(sids)}")
    return [
        *(_deny_all_but(sid, [action], table, users[action]) for action, sid in sids.items()),
        iam.PolicyStatement(
            sid="NoBulkAccess",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=[
                *BULK_READ_ACTIONS,
                "dynamodb:BatchWriteItem",
                "dynamodb:PartiQLInsert",
                "dynamodb:PartiQLUpdate",
                "dynamodb:PartiQLDelete",
            ],
            resources=[table],
        ),
    ]


# What Powertools' DynamoDB persistence layer does with an idempotency record (payments.event_publishing).
IDEMPOTENCY_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")


def idempotency_statements(
    scope: Construct, config: EnvironmentConfig, users: Sequence[iam.IRole]
) -> list[iam.PolicyStatement]:
    """The idempotency records: their item actions only to `users`; every bulk read and write to no one."""
    table = names.table_arn(scope, topology.IDEMPOTENCY_TABLE, config)
    return [
        _deny_all_but("KeptByLedgerEventsOnly", list(IDEMPOTENCY_ACTIONS), table, users),
        iam.PolicyStatement(
            sid="NoBulkAccess",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=[*BULK_READ_ACTIONS, *(a for a in CHANGE_ACTIONS if a not in IDEMPOTENCY_ACTIONS)],
            resources=[table],
        ),
    ]


def _deny_all_but(sid: str, actions: list[str], table: str, roles: Sequence[iam.IRole]) -> iam.PolicyStatement:
    return iam.PolicyStatement(
        sid=sid,
        effect=iam.Effect.DENY,
        principals=[iam.AnyPrincipal()],
        actions=actions,
        resources=[table],
        conditions={"ArnNotEquals": {"aws:PrincipalArn": [role.role_arn for role in roles]}},
    )


def _attribute(key: topology.KeyAttribute) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=key.name, type=_TYPES[key.type])
