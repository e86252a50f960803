"""Alarms an SRE would be paged by, and one dashboard: every state machine, every function, the payments
bus's publisher (LedgerEvents) and its failure queue, the scheduled workflows (status sync, reconciliation)
and their schedules' dead-letter queue.

The runbook, docs/operations.md, says what each alarm means and what to do, and reads its figures off this
dashboard: every alarm's metric is drawn on one of its graphs (tests/infra/test_monitoring.py holds both to
that), besides the figures no alarm watches (what status sync did, reconciliation by category, best-effort
cleanups that failed, the functions' warnings and errors)."""

from __future__ import annotations

from collections.abc import Callable

from aws_cdk import Aws, Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.config import EnvironmentConfig
from payments import topology

# LedgerEvents' iterator age (how far behind the ledger's stream it is) that pages.
EVENTS_LAG_ALARM_MS = 10 * 60 * 1000
# Status sync runs every five minutes: none started in this long means its schedule stopped starting it.
STATUS_SYNC_SILENCE = Duration.minutes(30)
RECONCILIATION_SILENCE = Duration.days(1)  # the longest period an alarm takes; the run is daily
# The construct id of each scheduled workflow's silence alarm.
MACHINE_LABELS = {
    topology.STATUS_SYNC_WORKFLOW.name: "StatusSync",
    topology.RECONCILIATION_WORKFLOW.name: "Reconciliation",
}
# What status sync's ResolveUnresolved emits when the processor's answer does not settle a payment or an
# operation (lambdas/status_sync: "StatusSync" + its outcome, LEFT_FOR_AN_OPERATOR).
STATUS_SYNC_LEFT_METRIC = "StatusSyncLeftForAnOperator"
# What a status sync run found (FindUnresolved) and what became of each (ResolveUnresolved: "StatusSync" + each
# outcome of payments.status_resolution.Outcome in CamelCase), drawn on the dashboard; only the last pages.
STATUS_SYNC_RUN_METRICS = (
    "StatusSyncUnresolvedFound",
    "StatusSyncResolved",
    "StatusSyncAlreadyResolved",
    "StatusSyncStillRunning",
    "StatusSyncNotYet",
    STATUS_SYNC_LEFT_METRIC,
)
# Best effort, never a failure (payments.exactly_once, payments.vault): an audit record that could not be sealed,
# a vault item or CVV not removed (the TTL removes it). Counted, drawn, not alarmed.
BEST_EFFORT_METRICS = ("AuditRecordsLost", "VaultCleanupFailures")
# Reconciliation publishes its figures once a day: its graphs show two weeks, a day a point.
DAILY = Duration.days(1)
TWO_WEEKS = "-P14D"
# The dashboard's log widget: the functions' warnings and errors, newest first (Powertools' JSON keys; an
# exception a handler raised is the runtime's own "[ERROR]" line). Logs Insights reads at most 50 log groups.
WARNINGS_AND_ERRORS_QUERY = (
    "fields @timestamp, function_name, correlation_id, level, message",
    'filter level in ["WARNING", "ERROR", "CRITICAL"] or @message like /^\\[ERROR\\]/',
    "sort @timestamp desc",
    "limit 50",
)
RUNBOOK = "docs/operations.md"


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        key: kms.IKey,
        state_machines: dict[str, sfn.StateMachine],
        functions: dict[str, lambda_.Function],
        intake: lambda_.Function,
        ledger_events: lambda_.Function,
        event_failures: sqs.IQueue,
        schedule_failures: sqs.IQueue,
    ) -> None:
        """`key`: the storage key, which encrypts the alarm topic (its policy lets this account's CloudWatch
        alarms use it: infra.keys). `state_machines`: by workflow name (topology.WORKFLOWS), the payment
        and the operation state machine. `functions`: the step functions, by step; `intake`: the intake;
        `ledger_events`: LedgerEvents, and `event_failures` the queue its event source mapping gives up to;
        `schedule_failures`: the queue EventBridge Scheduler puts a start of status sync or reconciliation it
        gave up on."""
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(
            self, "Alarms", display_name=f"Payment workflow alarms ({config.name})", master_key=key, enforce_ssl=True
        )
        # enforce_ssl gives the topic a policy of its own, which replaces SNS's default policy: without
        # this statement CloudWatch could not publish, and no alarm would reach anyone. The CloudWatch
        # service principal, sns:Publish only, and the confused-deputy conditions AWS recommends for
        # service principals (aws:SourceAccount, and aws:SourceArn: the alarms of this account and region).
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsOfThisAccount",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnLike": {"aws:SourceArn": alarms_of_this_account()},
                },
            )
        )
        self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        page = actions.SnsAction(self.topic)
        five_minutes = Duration.minutes(5)

        def alarm(name: str, metric: cloudwatch.IMetric, threshold: float, description: str) -> cloudwatch.Alarm:
            created = cloudwatch.Alarm(
                self,
                name,
                metric=metric,
                threshold=threshold,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=description,
            )
            created.add_alarm_action(page)
            return created

        state_machine = state_machines[topology.PAYMENT_WORKFLOW.name]
        operation_machine = state_machines[topology.OPERATION_WORKFLOW.name]
        self.alarms = [
            alarm(
                "ExecutionsFailed",
                state_machine.metric_failed(period=five_minutes),
                1,
                "A payment execution failed: every failed execution needs a person (see its cause).",
            ),
            alarm(
                "ExecutionsTimedOut",
                state_machine.metric_timed_out(period=five_minutes),
                1,
                "A payment execution timed out: its ledger may lack a terminal entry.",
            ),
            alarm(
                "OperationExecutionsFailed",
                operation_machine.metric_failed(period=five_minutes),
                1,
                "A capture, void or refund execution failed: every failed execution needs a person (see its "
                "cause); one whose outcome is unknown holds the payment until it is reconciled.",
            ),
            alarm(
                "OperationExecutionsTimedOut",
                operation_machine.metric_timed_out(period=five_minutes),
                1,
                "A capture, void or refund execution timed out: its ledger may lack a terminal entry.",
            ),
        ]
        processor_latency = cloudwatch.Metric(
            namespace=topology.METRICS_NAMESPACE,
            metric_name="ProcessorLatency",
            dimensions_map={"service": topology.SERVICE_NAME},
            statistic="p99",
            period=five_minutes,
        )
        self.alarms.append(
            alarm(
                "ProcessorLatencyP99",
                processor_latency,
                config.processor_latency_alarm_ms,
                "Converge p99 latency is high: timeouts and outcome-unknown payments follow.",
            )
        )
        for step, function in functions.items():
            self.alarms.append(
                alarm(
                    f"{step}Errors",
                    function.metric_errors(period=five_minutes),
                    1,
                    f"{step} Lambda errors (retried by Step Functions; persistent ones fail payments or operations).",
                )
            )
            self.alarms.append(
                alarm(
                    f"{step}Throttles",
                    function.metric_throttles(period=five_minutes),
                    1,
                    f"{step} Lambda throttles: raise reserved concurrency or account limits.",
                )
            )
        # The intake's errors include every request it refuses (invalid, or a TransactionID reused): they
        # are the callers' to handle and would page on bad input. Its throttles refuse payments: they page.
        self.alarms.append(
            alarm(
                "IntakeThrottles",
                intake.metric_throttles(period=five_minutes),
                1,
                "Intake Lambda throttles: payments are turned away; raise reserved concurrency or account limits.",
            )
        )

        self.alarms += self._ledger_events(alarm, ledger_events, event_failures, five_minutes)
        self.alarms += self._scheduled(alarm, state_machines, schedule_failures, five_minutes)
        # A schedule that stopped starting its workflow (disabled, its role broken) leaves nothing in the
        # dead-letter queue: the silence itself pages.
        for workflow, silence, what in (
            (
                topology.STATUS_SYNC_WORKFLOW,
                STATUS_SYNC_SILENCE,
                "No status sync run started in 30 minutes (it is scheduled every five): its schedule is disabled "
                "or cannot start it, and unknown payments stay unknown.",
            ),
            (
                topology.RECONCILIATION_WORKFLOW,
                RECONCILIATION_SILENCE,
                "No reconciliation run started in a day (it is scheduled daily at 03:00 UTC): its schedule is "
                "disabled or cannot start it, and the ledger goes unchecked against Converge.",
            ),
        ):
            silent = cloudwatch.Alarm(
                self,
                f"{MACHINE_LABELS[workflow.name]}NotStarting",
                metric=state_machines[workflow.name].metric_started(period=silence, statistic="Sum"),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
                alarm_description=what,
            )
            silent.add_alarm_action(page)
            self.alarms.append(silent)

        payments_by_outcome = ("PaymentsApproved", "PaymentsDeclined", "PaymentsFailed")
        outcomes = [_powertools_metric(name, five_minutes) for name in payments_by_outcome]
        operation_outcomes = [
            _powertools_metric(name, five_minutes) for name in ("OperationsApproved", "OperationsNotApproved")
        ]
        every_function = [intake, *functions.values(), ledger_events]
        sync = state_machines[topology.STATUS_SYNC_WORKFLOW.name]
        reconciliation = state_machines[topology.RECONCILIATION_WORKFLOW.name]
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=f"PaymentWorkflow-{config.name}")
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=(
                    f"**Payment workflow ({config.name})**. Every alarm and graph here is explained in the runbook, "
                    f"`{RUNBOOK}` in the repository. A payment is the execution of `PaymentWorkflow-{config.name}` "
                    "named after its TransactionID; its log lines carry it as `correlation_id`."
                ),
                width=24,
                height=2,
            ),
        )
        # Payments and operations: what the callers see.
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Payments by outcome", left=outcomes, width=12),
            cloudwatch.GraphWidget(
                title="Payment executions",
                left=[
                    state_machine.metric_succeeded(),
                    state_machine.metric_failed(),
                    state_machine.metric_timed_out(),
                    state_machine.metric_aborted(),
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(title="Captures, voids and refunds by outcome", left=operation_outcomes, width=12),
            cloudwatch.GraphWidget(
                title="Operation executions",
                left=[
                    operation_machine.metric_succeeded(),
                    operation_machine.metric_failed(),
                    operation_machine.metric_timed_out(),
                    operation_machine.metric_aborted(),
                ],
                width=12,
            ),
        )
        # The processor and the functions.
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Converge latency (p50, p99)",
                left=[processor_latency.with_(statistic="p50"), processor_latency],
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(
                        value=config.processor_latency_alarm_ms, label="ProcessorLatencyP99 pages"
                    )
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(title="Lambda errors", left=[f.metric_errors() for f in every_function], width=12),
            cloudwatch.GraphWidget(
                title="Lambda throttles", left=[f.metric_throttles() for f in every_function], width=12
            ),
            cloudwatch.GraphWidget(
                title="Audit records lost, vault cleanups failed",
                left=[_powertools_metric(name, five_minutes) for name in BEST_EFFORT_METRICS],
                width=12,
            ),
        )
        # The payments bus's publisher, and the schedules.
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Payment events: lag behind the ledger (max), batches given up on or not delivered",
                left=[ledger_events.metric("IteratorAge", statistic="Maximum")],
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(
                        value=EVENTS_LAG_ALARM_MS, label=f"{topology.EVENTS_FUNCTION.step}IteratorAge pages"
                    )
                ],
                right=[
                    event_failures.metric_approximate_number_of_messages_visible(statistic="Maximum"),
                    ledger_events.metric("DestinationDeliveryFailures", statistic="Sum"),
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Scheduled workflows: runs started, starts given up on",
                left=[sync.metric_started(statistic="Sum"), reconciliation.metric_started(statistic="Sum")],
                right=[schedule_failures.metric_approximate_number_of_messages_visible(statistic="Maximum")],
                width=12,
            ),
        )
        # Status sync and reconciliation: how unknown outcomes end, and the day against the processor.
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Status sync: runs, and payments or operations left for an operator",
                left=[sync.metric_succeeded(), sync.metric_failed(), sync.metric_timed_out()],
                right=[_powertools_metric(STATUS_SYNC_LEFT_METRIC, five_minutes)],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Status sync: found unresolved, and what became of each",
                left=[_powertools_metric(name, five_minutes) for name in STATUS_SYNC_RUN_METRICS],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Reconciliation: runs, and mismatches",
                left=[
                    reconciliation.metric_succeeded(period=DAILY),
                    reconciliation.metric_failed(period=DAILY),
                    reconciliation.metric_timed_out(period=DAILY),
                ],
                right=[_powertools_metric(topology.RECONCILIATION_ALARM_METRIC, DAILY)],
                start=TWO_WEEKS,
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Reconciliation by category",
                left=[_powertools_metric(name, DAILY) for name in topology.RECONCILIATION_METRICS.values()],
                start=TWO_WEEKS,
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.LogQueryWidget(
                title="Warnings and errors in the functions' logs (newest 50)",
                log_group_names=[f"/aws/lambda/{f.function_name}" for f in every_function],
                query_lines=list(WARNINGS_AND_ERRORS_QUERY),
                width=24,
                height=8,
            ),
        )
        self.dashboard.add_widgets(cloudwatch.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=24))

    @staticmethod
    def _scheduled(
        alarm: Callable[[str, cloudwatch.IMetric, float, str], cloudwatch.Alarm],
        state_machines: dict[str, sfn.StateMachine],
        schedule_failures: sqs.IQueue,
        period: Duration,
    ) -> list[cloudwatch.Alarm]:
        """Status sync and reconciliation: a run that fails or times out, what they could not settle, a start
        the scheduler gave up on. (Their steps' errors and throttles page as every step's do.)"""
        sync = state_machines[topology.STATUS_SYNC_WORKFLOW.name]
        reconciliation = state_machines[topology.RECONCILIATION_WORKFLOW.name]
        return [
            alarm(
                "StatusSyncExecutionsFailed",
                sync.metric_failed(period=period),
                1,
                "A status sync run failed (FindUnresolved, most likely): what it would have resolved waits for the "
                "next run, five minutes later; a run failing again and again leaves payments unknown.",
            ),
            alarm(
                "StatusSyncExecutionsTimedOut",
                sync.metric_timed_out(period=period),
                1,
                "A status sync run timed out (an hour): the processor may be answering very slowly.",
            ),
            alarm(
                "StatusSyncLeftForAnOperator",
                _powertools_metric(STATUS_SYNC_LEFT_METRIC, period),
                1,
                "Status sync could not settle a payment or an operation from the processor's answer (or a reversal "
                "was not approved): the run's output names it and says why; a person decides.",
            ),
            alarm(
                "ReconciliationExecutionsFailed",
                reconciliation.metric_failed(period=period),
                1,
                "The daily reconciliation failed: the day was not reconciled; start it again for that Date.",
            ),
            alarm(
                "ReconciliationExecutionsTimedOut",
                reconciliation.metric_timed_out(period=period),
                1,
                "The daily reconciliation timed out: the day was not reconciled; start it again for that Date.",
            ),
            alarm(
                "ReconciliationMismatches",
                _powertools_metric(topology.RECONCILIATION_ALARM_METRIC, period),
                1,
                "Reconciliation found the processor and the ledger disagreeing (a charge missing on one side, an "
                "amount or a status that differs), or could not list the whole day: the day's report names each.",
            ),
            alarm(
                "ScheduleFailures",
                schedule_failures.metric_approximate_number_of_messages_visible(period=period, statistic="Maximum"),
                1,
                "EventBridge Scheduler gave up starting status sync or reconciliation (the message names the "
                "schedule and the error): until it starts again, nothing resolves unknown payments or reconciles.",
            ),
        ]

    @staticmethod
    def _ledger_events(
        alarm: Callable[[str, cloudwatch.IMetric, float, str], cloudwatch.Alarm],
        function: lambda_.Function,
        failures: sqs.IQueue,
        period: Duration,
    ) -> list[cloudwatch.Alarm]:
        """LedgerEvents: a failed record is retried, not an error (partial batch response), so what pages is
        a batch given up on, the events falling behind, and the function failing whole batches or throttled."""
        step = topology.EVENTS_FUNCTION.step
        return [
            alarm(
                "EventFailures",
                failures.metric_approximate_number_of_messages_visible(period=period, statistic="Maximum"),
                1,
                "A batch of ledger entries was given up on after every retry: their events may be missing from the "
                "payments bus. The message names the stream shard and sequence numbers; the entries are in the ledger.",
            ),
            alarm(
                f"{step}DeliveryFailures",
                function.metric("DestinationDeliveryFailures", period=period, statistic="Sum"),
                1,
                "Lambda could not put a batch it gave up on into the failure queue: those entries' events are "
                "recorded nowhere but in the ledger.",
            ),
            alarm(
                f"{step}IteratorAge",
                function.metric("IteratorAge", period=period, statistic="Maximum"),
                EVENTS_LAG_ALARM_MS,
                "Payment events lag their ledger entries by 10 minutes or more: a batch is being retried, or "
                "LedgerEvents is throttled; a record leaves the ledger's stream after 24 hours.",
            ),
            alarm(
                f"{step}Errors",
                function.metric_errors(period=period),
                1,
                f"{step} Lambda errors: a whole batch failed (split in two and retried; persistent ones end in the "
                "failure queue).",
            ),
            alarm(
                f"{step}Throttles",
                function.metric_throttles(period=period),
                1,
                f"{step} Lambda throttles: its stream's batches wait; raise reserved concurrency or account limits.",
            ),
        ]


def _powertools_metric(name: str, period: Duration) -> cloudwatch.Metric:
    """A metric the functions emit through Powertools (EMF): namespace Payments, dimension service."""
    return cloudwatch.Metric(
        namespace=topology.METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={"service": topology.SERVICE_NAME},
        statistic="Sum",
        period=period,
    )


def alarms_of_this_account() -> str:
    """arn:<partition>:cloudwatch:<region>:<account>:alarm:*: the alarms' names are generated by CloudFormation."""
    return f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:{Aws.ACCOUNT_ID}:alarm:*"
