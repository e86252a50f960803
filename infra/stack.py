"""One stack per environment: the architecture of docs/architecture.md ("Deployment shape"), construct by construct."""

from __future__ import annotations

import json

from aws_cdk import CfnOutput, SecretValue, Stack
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.access import UpstreamAccess
from infra.config import EnvironmentConfig
from infra.functions import Dependencies, WorkflowSteps
from infra.keys import PaymentKey
from infra.monitoring import Monitoring
from infra.tables import PaymentTables
from infra.workflow import PaymentWorkflow


class PaymentWorkflowStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        key = PaymentKey(self, "Encryption", config=config).key
        tables = PaymentTables(self, "Tables", config=config, key=key)
        # Created with an empty shape; operators put the real values in (README, "Deploy").
        converge_secret = secretsmanager.Secret(
            self,
            "ConvergeCredentials",
            secret_name=f"payment-workflow/{config.name}/converge",
            description="Elavon Converge credentials for CallProcessor: ssl_merchant_id, ssl_user_id, ssl_pin",
            encryption_key=key,
            secret_string_value=SecretValue.unsafe_plain_text(
                json.dumps({"ssl_merchant_id": "", "ssl_user_id": "", "ssl_pin": ""})
            ),
            removal_policy=config.removal_policy,
        )
        steps = WorkflowSteps(
            self,
            "Steps",
            deps=Dependencies(config, key, tables.ledger, tables.audit, converge_secret, tables.vault),
        )
        workflow = PaymentWorkflow(
            self, "Workflow", config=config, key=key, functions=steps.step_functions, vault=tables.vault
        )
        # The intake starts the state machine, which invokes the steps: its half comes once the state machine exists.
        steps.start_payments_on(workflow.state_machine)
        Monitoring(
            self,
            "Monitoring",
            config=config,
            key=key,
            state_machine=workflow.state_machine,
            functions=steps.step_functions,
            intake=steps.intake,
        )
        upstream = UpstreamAccess(self, "Upstream", state_machine=workflow.state_machine, key=key, intake=steps.intake)

        self.key = key
        self.tables = tables
        self.steps = steps
        self.workflow = workflow
        self.converge_secret = converge_secret
        self.upstream = upstream
        CfnOutput(self, "StateMachineArn", value=workflow.state_machine.state_machine_arn)
        CfnOutput(self, "LedgerTable", value=tables.ledger.table_name)
        CfnOutput(self, "AuditTable", value=tables.audit.table_name)
        CfnOutput(self, "CardVaultTable", value=tables.vault.table_name)
        CfnOutput(self, "IntakeFunctionName", value=steps.intake.function_name)
        CfnOutput(self, "PaymentKeyArn", value=key.key_arn)
        CfnOutput(self, "ConvergeSecretArn", value=converge_secret.secret_arn)
        CfnOutput(self, "UpstreamPolicyArn", value=upstream.policy.managed_policy_arn)
