"""cdk-nag's AwsSolutions pack, and the acknowledgements: each names the finding and why it stands."""

from __future__ import annotations

from aws_cdk import Acknowledgment, App, Validations
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
    Validations.of(stack.converge_secret).acknowledge(
        Acknowledgment(
            id="AwsSolutions::AwsSolutions-SMG4",
            reason=(
                "Elavon issues the Converge credentials; they change in Converge's merchant portal, which no rotation "
                "Lambda can drive. Operators rotate them there and update the secret (README, Deploy)."
            ),
        )
    )
