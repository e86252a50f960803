"""The state machine: statemachine/payment.asl.json with its placeholders, nothing else changed."""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import REPO_ROOT, names
from infra.config import EnvironmentConfig
from infra.functions import table_key
from infra.log_groups import protected_log_group
from infra.scanners import REDUNDANT_ROLE_DEPENDENCY, ignore_cfn_lint
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
        vault: dynamodb.ITable,
    ) -> None:
        """`key`: the storage key, for the execution data and the execution log group (its policy, in
        infra.keys, names this state machine's role for both).

        `functions`: the step functions, by step (topology.FUNCTIONS); the state machine invokes these only.

        `vault`: the CardVault, whose item for the execution the state machine deletes when Tokenize
        fails for good (state DiscardCard: no terminal ledger step runs to remove it).
        """
        super().__init__(scope, construct_id)
        log_group = protected_log_group(
            self,
            "ExecutionLogs",
            name=f"/aws/vendedlogs/states/{names.state_machine_name(config)}",
            config=config,
            key=key,
        )
        substitutions = {spec.placeholder: functions[spec.step].function_arn for spec in topology.FUNCTIONS}
        substitutions[topology.CARD_VAULT_TABLE_PLACEHOLDER] = vault.table_name
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=names.state_machine_name(config),
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_file(str(REPO_ROOT / topology.ASL_PATH)),
            definition_substitutions=substitutions,
            # Execution data is never logged: the intake keeps cards out of it, but a card sent straight to
            # StartExecution (refused by Tokenize) would still be in the execution's input.
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
            tracing_enabled=True,
            encryption_configuration=sfn.CustomerManagedEncryptionConfiguration(key),
        )
        ignore_cfn_lint(self.state_machine, "W3005", REDUNDANT_ROLE_DEPENDENCY)
        # The unqualified ARNs the definition names, and nothing else (grant_invoke adds ":*").
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                sid="InvokeSteps",
                actions=["lambda:InvokeFunction"],
                resources=[functions[spec.step].function_arn for spec in topology.FUNCTIONS],
            )
        )
        # DiscardCard (dynamodb:deleteItem): the vault item of a payment whose Tokenize failed for good, and
        # what DynamoDB needs of the vault's key for it. No other table, no other DynamoDB action.
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(sid="VaultDiscard", actions=["dynamodb:DeleteItem"], resources=[vault.table_arn])
        )
        self.state_machine.add_to_role_policy(table_key("Vault", vault, key))
