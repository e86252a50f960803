"""What upstream services attach to start payments and read their results."""

from __future__ import annotations

from aws_cdk import Arn, ArnComponents, ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct


class UpstreamAccess(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, state_machine: sfn.StateMachine, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        executions = Arn.format(
            ArnComponents(
                service="states",
                resource="execution",
                resource_name=f"{state_machine.state_machine_name}:*",
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            ),
            Stack.of(self),
        )
        self.policy = iam.ManagedPolicy(
            self,
            "StartPayments",
            description="Start payments (execution name = TransactionID) and read their results",
            statements=[
                iam.PolicyStatement(
                    sid="StartPayment", actions=["states:StartExecution"], resources=[state_machine.state_machine_arn]
                ),
                iam.PolicyStatement(sid="ReadPayment", actions=["states:DescribeExecution"], resources=[executions]),
                # The state machine is encrypted with the payment key: its callers need these, and
                # only for this state machine's encryption context.
                iam.PolicyStatement(
                    sid="WorkflowEncryption",
                    actions=["kms:GenerateDataKey", "kms:Decrypt"],
                    resources=[key.key_arn],
                    conditions={
                        "StringEquals": {
                            "kms:EncryptionContext:aws:states:stateMachineArn": state_machine.state_machine_arn
                        }
                    },
                ),
            ],
        )
