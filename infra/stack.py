"""One stack per environment: the architecture of docs/architecture.md ("Deployment shape"), construct by construct."""

from __future__ import annotations

import json

from aws_cdk import CfnOutput, SecretValue, Stack
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra import names
from infra.access import AuditReader, UpstreamAccess
from infra.archive import ImmutableArchive
from infra.buckets import access_log_bucket
from infra.config import EnvironmentConfig
from infra.events import PaymentEvents
from infra.functions import EVENTS, INTAKE, Dependencies, WorkflowSteps
from infra.keys import AUDIT_SEALERS, OPERATION_LEDGER_STEPS, SCHEDULED_LEDGER_WRITERS, KeyUsers, PaymentKeys
from infra.monitoring import Monitoring
from infra.network import FunctionNetwork
from infra.reports import ReconciliationReports
from infra.schedules import SCHEDULED_WORKFLOWS, WorkflowSchedules
from infra.tables import PaymentTables
from infra.trail import PaymentTrail
from infra.workflow import Workflow
from payments import topology


class PaymentWorkflowStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.config = config
        self._zones = list(config.vpc_availability_zones)
        # Three keys by class of data (docs/keys-and-access.md); `key` is the storage key, for everything at rest.
        keys = PaymentKeys(self, "Encryption", config=config)
        key = keys.storage
        tables = PaymentTables(self, "Tables", config=config, key=key)
        # Created with an empty shape; operators put the real values in (README, "Deploy").
        converge_secret = secretsmanager.Secret(
            self,
            "ConvergeCredentials",
            secret_name=names.converge_secret_name(config),
            description=(
                "Elavon Converge credentials for CallProcessor, CallOperationProcessor, ResolveUnresolved and "
                "ListProcessorWindow: ssl_merchant_id, ssl_user_id, ssl_pin"
            ),
            encryption_key=key,
            secret_string_value=SecretValue.unsafe_plain_text(
                json.dumps({"ssl_merchant_id": "", "ssl_user_id": "", "ssl_pin": ""})
            ),
            removal_policy=config.removal_policy,
        )
        # The payments bus and LedgerEvents' failure queue; the ledger's stream feeds them (infra.events).
        payment_events = PaymentEvents(self, "Events", config=config, key=key)
        # Server access logs of the evidence buckets and of the report bucket.
        access_logs = access_log_bucket(
            self,
            "EvidenceAccessLogs",
            expiration_days=max(config.trail_retention_days, config.archive_retention_days or 0),
        )
        # Reconciliation's window listings and daily reports (infra.reports).
        reports = ReconciliationReports(self, "Reports", config=config, key=key, access_logs=access_logs)
        # Staging and prod: the functions in private subnets, egress only to Converge (docs/network-and-scanners.md).
        network = FunctionNetwork(self, "Network", config=config, key=key) if config.functions_in_vpc else None
        steps = WorkflowSteps(
            self,
            "Steps",
            deps=Dependencies(
                config,
                keys.card_data,
                keys.audit,
                key,
                tables.ledger,
                tables.audit,
                converge_secret,
                tables.vault,
                bus=payment_events.bus,
                idempotency=tables.idempotency,
                event_failures=payment_events.failures,
                report_bucket=reports.bucket,
            ),
            network=network,
        )
        payment_events.deliver(tables.ledger, steps.ledger_events, steps.roles[EVENTS])
        # Four state machines (payments.topology.WORKFLOWS): payments, the captures, voids and refunds that
        # follow them, status sync and the daily reconciliation. Each has its own role, invoking its own steps only.
        workflows = {
            spec.name: Workflow(
                self,
                construct_id,
                spec=spec,
                config=config,
                key=key,
                functions=steps.step_targets,
                vault=tables.vault,
            )
            for spec, construct_id in (
                (topology.PAYMENT_WORKFLOW, "Workflow"),
                (topology.OPERATION_WORKFLOW, "OperationWorkflow"),
                (topology.STATUS_SYNC_WORKFLOW, "StatusSyncWorkflow"),
                (topology.RECONCILIATION_WORKFLOW, "ReconciliationWorkflow"),
            )
        }
        workflow = workflows[topology.PAYMENT_WORKFLOW.name]
        operation_workflow = workflows[topology.OPERATION_WORKFLOW.name]
        state_machines = {name: w.state_machine for name, w in workflows.items()}
        # The intake starts the state machine, which invokes the steps: its half comes once the state machine exists.
        steps.start_payments_on(workflow.state_machine)
        # Status sync's resolver asks whether a payment's or an operation's execution still runs.
        steps.describe_payment_and_operation_executions([workflow.state_machine, operation_workflow.state_machine])
        # EventBridge Scheduler starts status sync every five minutes and reconciliation daily (infra.schedules).
        schedules = WorkflowSchedules(self, "Schedules", config=config, key=key)
        for spec in SCHEDULED_WORKFLOWS:
            schedules.start(spec, state_machines[spec.name])
        Monitoring(
            self,
            "Monitoring",
            config=config,
            key=key,
            state_machines=state_machines,
            functions=steps.step_functions,
            intake=steps.intake,
            ledger_events=steps.ledger_events,
            event_failures=payment_events.failures,
            schedule_failures=schedules.failures,
        )
        upstream = UpstreamAccess(self, "Upstream", state_machines=state_machines, key=key, intake=steps.intake)

        # Evidence (docs/keys-and-access.md): the trail in every environment, the immutable archive where
        # cdk.json sets archive_retention_days (prod); both under Object Lock, their access logged.
        trail = PaymentTrail(
            self,
            "Trail",
            config=config,
            key=key,
            tables=[tables.ledger, tables.audit, tables.vault],
            # And the steps' aliases (SnapStart): what the state machines invoke there.
            functions=[*steps.functions.values(), *steps.aliases.values()],
            access_logs=access_logs,
        )
        archive = (
            ImmutableArchive(
                self,
                "Archive",
                config=config,
                key=key,
                tables={spec.name: table for spec, table in tables.append_only.items()},
                access_logs=access_logs,
            )
            if config.archived
            else None
        )
        audit_reader = AuditReader(
            self,
            "AuditReader",
            config=config,
            audit_key=keys.audit,
            storage_key=key,
            audit_table=tables.audit,
            trail_bucket=trail.bucket,
            trail_arn=trail.trail_arn,
            archive_bucket=archive.bucket if archive else None,
        )
        # Who may write each table (their own policies), and who may use each key (the key policies):
        # written last, when every role exists.
        roles = steps.roles
        machine_role = workflow.state_machine.role
        tables.restrict_writes(
            ledger_writers=[
                roles[step]
                for step in (
                    "LedgerInitiated",
                    "LedgerPending",
                    "LedgerSuccess",
                    "LedgerFailed",
                    *OPERATION_LEDGER_STEPS,
                    *SCHEDULED_LEDGER_WRITERS,
                )
            ],
            audit_writers=[roles[step] for step in (*AUDIT_SEALERS, "Audit")],
            vault_users={
                "dynamodb:PutItem": [roles[INTAKE]],
                "dynamodb:GetItem": [roles["Tokenize"], roles["CallProcessor"]],
                "dynamodb:UpdateItem": [roles["CallProcessor"]],
                "dynamodb:DeleteItem": [roles["LedgerSuccess"], roles["LedgerFailed"], machine_role],
            },
            idempotency_users=[roles[EVENTS]],
        )
        # Only LedgerEvents puts events on the payments bus; only the deployment role manages its rules.
        payment_events.restrict([roles[EVENTS]])
        # Only reconciliation's two writing steps put objects into the report bucket.
        reports.restrict_writers([roles["ListProcessorWindow"], roles["MatchLedger"]])
        keys.write_policies(
            KeyUsers(
                step_roles=roles,
                functions=steps.functions,
                state_machine_roles={name: machine.role for name, machine in state_machines.items()},
                audit_reader=audit_reader.role,
                archive_readers=archive.readers if archive else {},
                archive_writers=list(archive.writers.values()) if archive else [],
                archive_bucket=archive.bucket_name if archive else None,
                schedule_roles=schedules.roles,
                report_bucket=reports.bucket_name,
            )
        )

        self.keys = keys
        self.key = key
        self.tables = tables
        self.steps = steps
        self.workflow = workflow  # the payment state machine's
        self.operation_workflow = operation_workflow
        self.status_sync = workflows[topology.STATUS_SYNC_WORKFLOW.name]
        self.reconciliation = workflows[topology.RECONCILIATION_WORKFLOW.name]
        self.workflows = workflows  # by workflow name (topology.WORKFLOWS)
        self.schedules = schedules
        self.reports = reports
        self.converge_secret = converge_secret
        self.events = payment_events
        self.upstream = upstream
        self.network = network
        self.trail = trail
        self.archive = archive
        self.audit_reader = audit_reader
        self.access_logs = access_logs
        CfnOutput(self, "StateMachineArn", value=workflow.state_machine.state_machine_arn)
        CfnOutput(self, "OperationStateMachineArn", value=operation_workflow.state_machine.state_machine_arn)
        CfnOutput(self, "StatusSyncStateMachineArn", value=self.status_sync.state_machine.state_machine_arn)
        CfnOutput(self, "ReconciliationStateMachineArn", value=self.reconciliation.state_machine.state_machine_arn)
        CfnOutput(self, "ReportBucket", value=reports.bucket.bucket_name)
        CfnOutput(self, "ScheduleFailuresQueueUrl", value=schedules.failures.queue_url)
        CfnOutput(self, "LedgerTable", value=tables.ledger.table_name)
        CfnOutput(self, "AuditTable", value=tables.audit.table_name)
        CfnOutput(self, "CardVaultTable", value=tables.vault.table_name)
        CfnOutput(self, "IntakeFunctionName", value=steps.intake.function_name)
        CfnOutput(self, "PaymentKeyArn", value=keys.card_data.key_arn)
        CfnOutput(self, "AuditKeyArn", value=keys.audit.key_arn)
        CfnOutput(self, "StorageKeyArn", value=key.key_arn)
        CfnOutput(self, "AuditReaderRoleArn", value=audit_reader.role.role_arn)
        CfnOutput(self, "TrailBucket", value=trail.bucket.bucket_name)
        if archive is not None:
            CfnOutput(self, "ArchiveBucket", value=archive.bucket.bucket_name)
        CfnOutput(self, "ConvergeSecretArn", value=converge_secret.secret_arn)
        CfnOutput(self, "UpstreamPolicyArn", value=upstream.policy.managed_policy_arn)
        CfnOutput(self, "EventBusName", value=payment_events.bus.event_bus_name)
        CfnOutput(self, "EventBusArn", value=payment_events.bus.event_bus_arn)
        CfnOutput(self, "EventFailuresQueueUrl", value=payment_events.failures.queue_url)

    @property
    def availability_zones(self) -> list[str]:
        """The zones cdk.json names for the VPC: never looked up, so synth needs no AWS credentials."""
        return list(self._zones) or super().availability_zones
