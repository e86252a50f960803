"""The scheduled workflows: EventBridge Scheduler starts status sync every five minutes, reconciliation daily.

```
schedule group payment-workflow-<env>
  PaymentStatusSync-<env>              rate(5 minutes)          ─┐ StartExecution, input {}
  PaymentReconciliationWorkflow-<env>  cron(0 3 * * ? *) UTC    ─┤ (each with a role of its own)
                                                                 │ a start given up on after the retries
                                                                 ▼
                                 PaymentScheduleFailures-<env> (SQS, storage key, 14 days; alarmed)
```

Each schedule has its own role, which EventBridge Scheduler assumes for this account's schedules of
this group only (aws:SourceAccount, aws:SourceArn: the group, as the Scheduler User Guide's execution
role sets it). It may start executions of its one state machine (states:StartExecution on that state
machine's ARN; with the storage key for that state machine's encryption context only, as every caller
of StartExecution on an encrypted state machine needs: infra.access.WORKFLOW_KEY_ACTIONS), and put a
start it gave up on into the dead-letter queue (with the key through SQS for that queue only). Nothing
else: no DescribeExecution, no other state machine, no function.

The input is `{}` for both: status sync looks at the last 48 hours with its default deadline
(payments.status_sync), reconciliation takes yesterday, UTC (payments.reconciliation_run). A start
that fails is retried with backoff while it is still worth starting (status sync: until the next run
is due; reconciliation: for hours); then it goes to the dead-letter queue, which pages. The schedules'
own data (the input `{}`) is encrypted by EventBridge Scheduler with a key of AWS's: a customer managed
key there would need kms:Decrypt for each role on every start, and protects nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as targets
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import names
from infra.access import WORKFLOW_KEY_ACTIONS
from infra.config import EnvironmentConfig
from payments import topology

# SQS keeps a message at most 14 days: the longest an operator has to look at a start given up on.
FAILURE_RETENTION = Duration.days(14)


@dataclass(frozen=True)
class Cadence:
    """When a workflow starts, and how long a failed start is worth retrying."""

    expression: scheduler.ScheduleExpression
    description: str
    retry_attempts: int
    max_event_age: Duration


# Status sync: every five minutes; a start not made within four is superseded by the next run.
STATUS_SYNC_CADENCE = Cadence(
    scheduler.ScheduleExpression.rate(Duration.minutes(5)),
    "Status sync every five minutes: payments and operations left unknown or pending, resolved against Converge",
    retry_attempts=3,
    max_event_age=Duration.minutes(4),
)
# Reconciliation: once a day at 03:00 UTC, yesterday (UTC) against Converge's listing; retried for hours.
RECONCILIATION_CADENCE = Cadence(
    scheduler.ScheduleExpression.cron(minute="0", hour="3"),
    "Daily reconciliation at 03:00 UTC: yesterday's processor listing against the ledger",
    retry_attempts=20,
    max_event_age=Duration.hours(6),
)
CADENCES = {
    topology.STATUS_SYNC_WORKFLOW.name: STATUS_SYNC_CADENCE,
    topology.RECONCILIATION_WORKFLOW.name: RECONCILIATION_CADENCE,
}
SCHEDULED_WORKFLOWS = (topology.STATUS_SYNC_WORKFLOW, topology.RECONCILIATION_WORKFLOW)
# What each scheduled run starts with: nothing, so each workflow takes its defaults.
SCHEDULED_INPUT: dict[str, object] = {}


class WorkflowSchedules(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, key: kms.IKey) -> None:
        """`key`: the storage key, for the dead-letter queue (and, through its policy, each state machine)."""
        super().__init__(scope, construct_id)
        self.config = config
        self.key = key
        self.group = scheduler.ScheduleGroup(
            self,
            "Group",
            schedule_group_name=names.schedule_group_name(config),
            # It holds the schedules only, nothing to keep: it goes with the stack in every environment.
            removal_policy=RemovalPolicy.DESTROY,
        )
        # A fixed name: the storage key's policy names it (the queue refers to the key, so the key cannot
        # refer to the queue).
        self.failures = sqs.Queue(
            self,
            "Failures",
            queue_name=names.schedule_failures_queue_name(config),
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=FAILURE_RETENTION,
            removal_policy=config.removal_policy,
        )
        self.roles: dict[str, iam.Role] = {}  # by workflow name
        self.schedules: dict[str, scheduler.Schedule] = {}

    def start(self, workflow: topology.WorkflowSpec, state_machine: sfn.StateMachine) -> scheduler.Schedule:
        """The schedule of `workflow` (CADENCES), starting `state_machine` with SCHEDULED_INPUT."""
        cadence = CADENCES[workflow.name]
        construct_id = workflow.name.removeprefix("Payment").removesuffix("Workflow")
        role = iam.Role(
            self,
            f"{construct_id}Starter",
            description=f"EventBridge Scheduler: starts {workflow.name}-{self.config.name} on its schedule, only that",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={
                    "StringEquals": {
                        "aws:SourceAccount": Aws.ACCOUNT_ID,
                        "aws:SourceArn": names.schedule_group_arn(self, self.config),
                    }
                },
            ),
        )
        # The target adds states:StartExecution on this state machine, and sqs:SendMessage on the queue.
        # The key for both: the state machine's encryption context, the queue's through SQS.
        role.add_to_policy(
            iam.PolicyStatement(
                sid="StartEncryption",
                actions=sorted(WORKFLOW_KEY_ACTIONS["states:StartExecution"]),
                resources=[self.key.key_arn],
                conditions={
                    "StringEquals": {
                        "kms:EncryptionContext:aws:states:stateMachineArn": state_machine.state_machine_arn
                    }
                },
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="FailureDeliveryKey",
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[self.key.key_arn],
                conditions={
                    "StringEquals": {
                        "kms:ViaService": f"sqs.{Aws.REGION}.amazonaws.com",
                        "kms:EncryptionContext:aws:sqs:arn": self.failures.queue_arn,
                    }
                },
            )
        )
        schedule = scheduler.Schedule(
            self,
            construct_id,
            schedule_name=names.schedule_name(self.config, workflow),
            schedule_group=self.group,
            description=cadence.description,
            schedule=cadence.expression,
            time_window=scheduler.TimeWindow.off(),
            target=targets.StepFunctionsStartExecution(
                state_machine,
                input=scheduler.ScheduleTargetInput.from_object(SCHEDULED_INPUT),
                role=role,
                dead_letter_queue=self.failures,
                retry_attempts=cadence.retry_attempts,
                max_event_age=cadence.max_event_age,
            ),
        )
        # The scheduler checks nothing at creation, but a start before the role's policy exists would fail.
        policy = role.node.try_find_child("DefaultPolicy")
        if policy is not None:
            schedule.node.add_dependency(policy)
        self.roles[workflow.name] = role
        self.schedules[workflow.name] = schedule
        return schedule
