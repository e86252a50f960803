"""The state machine: statemachine/payment.asl.json with its placeholders, nothing else changed."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import REPO_ROOT
from infra.config import EnvironmentConfig
from infra.log_groups import protected_log_group
from payments import topology


class PaymentWorkflow(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        key: kms.IKey,
        functions: dict[str, lambda_.Function],
    ) -> None:
        """`functions`: the step functions, by step (topology.FUNCTIONS); the state machine invokes these only."""
        super().__init__(scope, construct_id)
        log_group = protected_log_group(
            self,
            "ExecutionLogs",
            name=f"/aws/vendedlogs/states/{topology.STATE_MACHINE_NAME}-{config.name}",
            config=config,
            key=key,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=f"{topology.STATE_MACHINE_NAME}-{config.name}",
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_file(str(REPO_ROOT / topology.ASL_PATH)),
            definition_substitutions={
                spec.placeholder: functions[spec.step].function_arn for spec in topology.FUNCTIONS
            },
            # Execution data is never logged: the intake keeps cards out of it, but a card sent straight to
            # StartExecution (refused by Tokenize) would still be in the execution's input.
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
            tracing_enabled=True,
            encryption_configuration=sfn.CustomerManagedEncryptionConfiguration(key),
        )
        # The unqualified ARNs the definition names, and nothing else (grant_invoke adds ":*").
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                sid="InvokeSteps",
                actions=["lambda:InvokeFunction"],
                resources=[functions[spec.step].function_arn for spec in topology.FUNCTIONS],
            )
        )
