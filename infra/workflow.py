"""The state machines: each one its ASL file (payments.topology.WORKFLOWS) with its placeholders, nothing else changed.

- PaymentWorkflow (statemachine/payment.asl.json): a payment, from Tokenize to Audit.
- PaymentOperationWorkflow (statemachine/operation.asl.json): a capture, void or refund of a payment.
- PaymentStatusSync (statemachine/status_sync.asl.json): every five minutes, the payments and
  operations left unknown or pending, resolved against the processor (an INLINE Map: no child
  executions, so no states:StartExecution on itself).
- PaymentReconciliationWorkflow (statemachine/reconciliation.asl.json): once a day, the processor's
  listing of a day against the ledger.

Each has a role of its own, which may invoke exactly the functions its definition names (its
WorkflowSpec's steps; Normalize is named by two, Audit by three) and nothing else: by the ARN of each
step's alias where the steps run with SnapStart (staging, prod: infra.functions; SnapStart applies to
published versions only), by the unqualified function ARN ($LATEST) elsewhere; only the payment
machine's, whose DiscardCard state deletes a vault item, also gets that DeleteItem. Status sync and
reconciliation are started by their schedules (infra.schedules).
"""

from __future__ import annotations

import json
import re
from typing import Any

from aws_cdk import Arn, ArnComponents, ArnFormat, Stack
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

# ${...} in an ASL file, as CloudFormation's DefinitionSubstitutions (and local/asl.py) replace them.
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9]+)\}")


def placeholders_of(spec: topology.WorkflowSpec) -> set[str]:
    """The placeholders the workflow's ASL file holds."""
    return set(PLACEHOLDER.findall((REPO_ROOT / spec.asl_path).read_text()))


def has_distributed_map(spec: topology.WorkflowSpec) -> bool:
    """Whether the definition holds a Map state in DISTRIBUTED mode (its iterations are child executions)."""

    def found(states: dict[str, Any]) -> bool:
        for state in states.values():
            processor = state.get("ItemProcessor")
            if processor is None:
                continue
            if processor.get("ProcessorConfig", {}).get("Mode") == "DISTRIBUTED" or found(processor["States"]):
                return True
        return False

    return found(json.loads((REPO_ROOT / spec.asl_path).read_text())["States"])


def child_executions_of(scope: Construct, config: EnvironmentConfig, spec: topology.WorkflowSpec) -> str:
    """execution:<state machine name>/*: the child executions of the state machine's Distributed Map runs
    (execution:<name>/<map run label>:<id>), never an execution started by anyone else (execution:<name>:<id>)."""
    return Arn.format(
        ArnComponents(
            service="states",
            resource="execution",
            resource_name=f"{names.state_machine_name(config, spec)}/*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        ),
        Stack.of(scope),
    )


class Workflow(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: topology.WorkflowSpec,
        config: EnvironmentConfig,
        key: kms.IKey,
        functions: dict[str, lambda_.IFunction],
        vault: dynamodb.ITable,
    ) -> None:
        """`spec`: which state machine (one of topology.WORKFLOWS).

        `key`: the storage key, for the execution data and the execution log group (its policy, in
        infra.keys, names this state machine's role for both).

        `functions`: what the state machines invoke, by step (WorkflowSteps.step_targets: a step's alias where
        it runs with SnapStart, else the function); the state machine invokes those of `spec.steps` only.

        `vault`: the CardVault, whose item for the execution the payment state machine deletes when
        Tokenize fails for good (state DiscardCard: no terminal ledger step runs to remove it). Only a
        definition that names the vault's placeholder gets the table, and the DeleteItem on it.
        """
        super().__init__(scope, construct_id)
        self.spec = spec
        name = names.state_machine_name(config, spec)
        log_group = protected_log_group(
            self, "ExecutionLogs", name=f"/aws/vendedlogs/states/{name}", config=config, key=key
        )
        steps = spec.functions
        substitutions = {step.placeholder: functions[step.step].function_arn for step in steps}
        discards_cards = topology.CARD_VAULT_TABLE_PLACEHOLDER in placeholders_of(spec)
        if discards_cards:
            substitutions[topology.CARD_VAULT_TABLE_PLACEHOLDER] = vault.table_name
        # Every placeholder substituted, and nothing substituted the definition does not hold.
        if set(substitutions) != placeholders_of(spec):
            raise ValueError(
                f"{spec.asl_path}: placeholders {sorted(placeholders_of(spec))}, substitutions {sorted(substitutions)}"
            )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_file(str(REPO_ROOT / spec.asl_path)),
            definition_substitutions=substitutions,
            # Execution data is never logged: the intake keeps cards out of it, but a card sent straight to
            # StartExecution (refused by Tokenize) would still be in the execution's input.
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
            tracing_enabled=True,
            encryption_configuration=sfn.CustomerManagedEncryptionConfiguration(key),
        )
        ignore_cfn_lint(self.state_machine, "W3005", REDUNDANT_ROLE_DEPENDENCY)
        # The ARNs the definition names (each alias's, or each unqualified function ARN), and nothing else
        # (grant_invoke adds ":*": any version or alias).
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                sid="InvokeSteps",
                actions=["lambda:InvokeFunction"],
                resources=[functions[step.step].function_arn for step in steps],
            )
        )
        if has_distributed_map(spec):
            # A Distributed Map runs each iteration as a child execution of this same state machine (Step
            # Functions Developer Guide, "IAM policies for using Distributed Map states"): it starts them
            # (StartExecution on itself, named by its ARN built from its name: the role's policy cannot refer
            # to the state machine, which depends on it), describes them, and stops them when the map run
            # fails. Of its own map runs' children only; no RedriveExecution (a redrive is an operator's).
            self.state_machine.add_to_role_policy(
                iam.PolicyStatement(
                    sid="StartChildExecutions",
                    actions=["states:StartExecution"],
                    resources=[names.state_machine_arn(self, config, spec)],
                )
            )
            self.state_machine.add_to_role_policy(
                iam.PolicyStatement(
                    sid="ChildExecutions",
                    actions=["states:DescribeExecution", "states:StopExecution"],
                    resources=[child_executions_of(self, config, spec)],
                )
            )
        if discards_cards:
            # DiscardCard (dynamodb:deleteItem): the vault item of a payment whose Tokenize failed for good, and
            # what DynamoDB needs of the vault's key for it. No other table, no other DynamoDB action.
            self.state_machine.add_to_role_policy(
                iam.PolicyStatement(sid="VaultDiscard", actions=["dynamodb:DeleteItem"], resources=[vault.table_arn])
            )
            self.state_machine.add_to_role_policy(table_key("Vault", vault, key))
