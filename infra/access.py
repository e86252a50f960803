"""What upstream services attach to start payments and read their results, and what starting one takes."""

from __future__ import annotations

from aws_cdk import Arn, ArnComponents, ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

# What a caller needs of the state machine's customer managed key, by Step Functions call: the input is
# encrypted under the key on StartExecution (the Step Functions team's list, aws-samples/
# aws-stepfunctions-examples#74: "StartExecution: kms:GenerateDataKey, kms:Decrypt"); DescribeExecution
# returns the decrypted input and output (API reference, DescribeExecution includedData: kms:Decrypt).
WORKFLOW_KEY_ACTIONS: dict[str, frozenset[str]] = {
    "states:StartExecution": frozenset({"kms:GenerateDataKey", "kms:Decrypt"}),
    "states:DescribeExecution": frozenset({"kms:Decrypt"}),
}


class UpstreamAccess(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machine: sfn.StateMachine,
        key: kms.IKey,
        intake: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        self.policy = iam.ManagedPolicy(
            self,
            "StartPayments",
            description=(
                "Start payments (card payments through the intake function; token payments may start the "
                "execution directly, name = TransactionID) and read their results"
            ),
            statements=[
                # The unqualified ARN: the intake's $LATEST, no version or alias (":*").
                iam.PolicyStatement(
                    sid="StartCardPayment", actions=["lambda:InvokeFunction"], resources=[intake.function_arn]
                ),
                # Token payments may still be started directly. No other use of any key: a vaulted card
                # (purpose card-intake) is opened by Tokenize and CallProcessor only.
                *workflow_statements(self, state_machine, key),
            ],
        )


def workflow_statements(scope: Construct, state_machine: sfn.StateMachine, key: kms.IKey) -> list[iam.PolicyStatement]:
    """StartExecution on the state machine, DescribeExecution on its executions, and the key for those two calls.

    The state machine is encrypted with the payment key. The KMS actions are exactly those these two
    calls need of a customer managed key (WORKFLOW_KEY_ACTIONS): StartExecution kms:GenerateDataKey
    (to encrypt the input) and kms:Decrypt, DescribeExecution kms:Decrypt (to return the execution's
    input and output). No Encrypt, ReEncrypt*, GenerateDataKey* or DescribeKey, and only under the
    state machine's own encryption context. Nothing else is sealed under that context, and no card is
    in an execution any more (the intake vaults it; the input carries a vault reference, brand and
    last four): this Decrypt opens execution data only, never a card, a SecureToken (purpose
    secure-token) or an audit payload (purpose audit).
    """
    return [
        iam.PolicyStatement(
            sid="StartPayment", actions=["states:StartExecution"], resources=[state_machine.state_machine_arn]
        ),
        iam.PolicyStatement(
            sid="ReadPayment", actions=["states:DescribeExecution"], resources=[executions_of(scope, state_machine)]
        ),
        iam.PolicyStatement(
            sid="WorkflowEncryption",
            actions=sorted(set().union(*WORKFLOW_KEY_ACTIONS.values())),
            resources=[key.key_arn],
            conditions={
                "StringEquals": {"kms:EncryptionContext:aws:states:stateMachineArn": state_machine.state_machine_arn}
            },
        ),
    ]


def executions_of(scope: Construct, state_machine: sfn.StateMachine) -> str:
    """execution:<state machine name>:*, the executions of this state machine (named by TransactionID)."""
    return Arn.format(
        ArnComponents(
            service="states",
            resource="execution",
            resource_name=f"{state_machine.state_machine_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        ),
        Stack.of(scope),
    )
