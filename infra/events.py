"""The payments bus: one event per terminal ledger entry, for upstream services (payments.events).

```
PaymentLedger ─ stream (new and old images) ─▶ event source mapping ─▶ LedgerEvents ─▶ payments-<env> bus
                  (every environment)            batches of 100,          (idempotent     (storage key; only
                                                 partial batch failures,   by EventID)     LedgerEvents may
                                                 bisect, 10 retries                        put events)
                                                        │ a batch given up on
                                                        ▼
                                    PaymentLedgerEventsFailures-<env> (SQS, storage key, 14 days; alarmed)
```

The ledger is the outbox: an event exists only if its entry does, and every terminal entry's event is
published, or its batch is in the failure queue, which pages. LedgerEvents publishes each event once
per EventID (Powertools idempotency, the records in PaymentEventsPublished: infra.tables).

- The bus is encrypted with the storage key (EventBridge's customer managed key on a custom bus): its
  key policy lets EventBridge use the key for this bus only (infra.keys).
- Its resource policy holds whatever an identity policy in the account says: only LedgerEvents may
  put events on it, so a subscriber can trust that an event on it came from the ledger; only the
  deployment role may add, change or remove rules on it. Subscribers (rules with their targets) are
  added by the platform team, deployed through CloudFormation; upstream services get no rule
  management of their own (docs/keys-and-access.md).
- The event source mapping reads the stream from its oldest record, 100 records a batch. LedgerEvents
  reports the records it failed (ReportBatchItemFailures): only those and what follows them in their
  shard are retried. A whole batch failing is split in two and retried; after MAX_RETRY_ATTEMPTS a
  batch is given up on, and a description of it (shard, sequence numbers, not the records) goes to the
  failure queue, which pages (infra.monitoring). The bound keeps one bad record from holding back its
  shard's later entries for the stream's 24 hours.

Lambda's poller reads the stream and writes the failure queue with LedgerEvents' role, outside the
function's network: the function itself calls only DynamoDB (its idempotency records) and EventBridge
(infra.network gives it an EventBridge endpoint).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import names
from infra.config import EnvironmentConfig

BATCH_SIZE = 100
# Retries of a failed batch (or of what follows a failed record) before it goes to the failure queue.
MAX_RETRY_ATTEMPTS = 10
# SQS keeps a message at most 14 days: the longest an operator has to look at a batch given up on.
FAILURE_RETENTION = Duration.days(14)
# The actions that add, change or remove a subscription (a rule and its targets) on a bus.
RULE_ACTIONS = (
    "events:PutRule",
    "events:PutTargets",
    "events:DeleteRule",
    "events:RemoveTargets",
    "events:EnableRule",
    "events:DisableRule",
)


class PaymentEvents(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, key: kms.IKey) -> None:
        """`key`: the storage key, for the bus and the failure queue."""
        super().__init__(scope, construct_id)
        self.config = config
        self.bus = events.EventBus(
            self,
            "Bus",
            event_bus_name=names.event_bus_name(config),
            description="Payments: one event per terminal ledger entry (schemas/events/), put by LedgerEvents only",
            kms_key=key,
        )
        # A fixed name: the storage key's policy names it (the queue refers to the key, so the key cannot
        # refer to the queue).
        self.failures = sqs.Queue(
            self,
            "Failures",
            queue_name=names.event_failures_queue_name(config),
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=FAILURE_RETENTION,
            removal_policy=config.removal_policy,
        )
        self.mapping: lambda_.CfnEventSourceMapping | None = None

    def deliver(self, ledger: dynamodb.TableV2, function: lambda_.Function, role: iam.Role) -> None:
        """The event source mapping from the ledger's stream to `function` (LedgerEvents, with `role`)."""
        stream_arn = ledger.table_stream_arn
        assert stream_arn is not None, "the ledger needs a stream: it is the outbox of the payments bus"
        self.mapping = lambda_.CfnEventSourceMapping(
            self,
            "LedgerStream",
            function_name=function.function_name,
            event_source_arn=stream_arn,
            starting_position="TRIM_HORIZON",
            batch_size=BATCH_SIZE,
            function_response_types=["ReportBatchItemFailures"],
            bisect_batch_on_function_error=True,
            maximum_retry_attempts=MAX_RETRY_ATTEMPTS,
            # Retried for as long as the stream keeps the record (24 hours), within the attempts above.
            maximum_record_age_in_seconds=-1,
            destination_config=lambda_.CfnEventSourceMapping.DestinationConfigProperty(
                on_failure=lambda_.CfnEventSourceMapping.OnFailureProperty(destination=self.failures.queue_arn)
            ),
            enabled=True,
        )
        # Lambda checks, when the mapping is created, that the role may read the stream.
        policy = role.node.try_find_child("DefaultPolicy")
        assert isinstance(policy, iam.Policy)
        self.mapping.node.add_dependency(policy)

    def restrict(self, publishers: list[iam.IRole]) -> None:
        """The bus's resource policy: `publishers` (LedgerEvents) alone may put events on it, the
        deployment role alone may manage its rules. Denials, named by aws:PrincipalArn: they hold
        whatever any identity policy in the account allows (events:PutEvents on "*" included)."""
        bus, rules = names.event_bus_arn(self, self.config), names.event_rules_arn(self, self.config)
        document = iam.PolicyDocument(statements=bus_statements(self, bus, rules, publishers))
        cfn_bus = self.bus.node.default_child
        assert isinstance(cfn_bus, events.CfnEventBus)
        cfn_bus.policy = document


def bus_statements(scope: Construct, bus: str, rules: str, publishers: list[iam.IRole]) -> list[iam.PolicyStatement]:
    return [
        iam.PolicyStatement(
            sid="PublishedByLedgerEventsOnly",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=["events:PutEvents"],
            resources=[bus],
            conditions={"ArnNotEquals": {"aws:PrincipalArn": [role.role_arn for role in publishers]}},
        ),
        iam.PolicyStatement(
            sid="SubscriptionsByTheDeploymentRoleOnly",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=list(RULE_ACTIONS),
            resources=[rules],
            conditions={"ArnNotEquals": {"aws:PrincipalArn": [names.deployment_role_arn(scope)]}},
        ),
    ]
