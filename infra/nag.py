"""cdk-nag's AwsSolutions pack, and the acknowledgements: each names the finding and why it stands."""

from __future__ import annotations

from aws_cdk import Acknowledgment, App, Token, Validations
from cdk_nag import AwsSolutionsChecks

from infra.stack import PaymentWorkflowStack

XRAY_REASON = (
    "xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions; "
    "the statement grants those two actions only."
)


def check_with_cdk_nag(app: App, stack: PaymentWorkflowStack) -> None:
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    for role in stack.steps.roles.values():
        Validations.of(role).acknowledge(
            Acknowledgment(id="AwsSolutions::AwsSolutions-IAM5[Resource::*]", reason=XRAY_REASON)
        )
    Validations.of(stack.workflow.state_machine).acknowledge(
        Acknowledgment(
            id="AwsSolutions::AwsSolutions-IAM5[Resource::*]",
            reason=(
                "Added by CDK for tracing and logging: X-Ray PutTraceSegments/PutTelemetryRecords/GetSampling* and "
                "the CloudWatch Logs delivery actions (CreateLogDelivery, DescribeResourcePolicies, ...) "
                "support no resource-level permissions."
            ),
        )
    )
    Validations.of(stack.upstream.policy).acknowledge(
        Acknowledgment(
            id=f"AwsSolutions::AwsSolutions-IAM5[Resource::{_executions_finding(stack)}]",
            reason=(
                "DescribeExecution is granted on this state machine's executions only "
                "(execution:<state machine>:*): their names are the TransactionIDs, unknown in advance."
            ),
        )
    )
    Validations.of(stack.converge_secret).acknowledge(
        Acknowledgment(
            id="AwsSolutions::AwsSolutions-SMG4",
            reason=(
                "Elavon issues the Converge credentials; they change in Converge's merchant portal, which no rotation "
                "Lambda can drive. Operators rotate them there and update the secret (README, Deploy)."
            ),
        )
    )


def _executions_finding(stack: PaymentWorkflowStack) -> str:
    """How cdk-nag spells the execution ARN pattern it reports (tokens in angle brackets)."""
    machine = stack.resolve(stack.get_logical_id(stack.workflow.state_machine.node.default_child))
    region = "<AWS::Region>" if Token.is_unresolved(stack.region) else stack.region
    account = "<AWS::AccountId>" if Token.is_unresolved(stack.account) else stack.account
    return f"arn:<AWS::Partition>:states:{region}:{account}:execution:<{machine}.Name>:*"
