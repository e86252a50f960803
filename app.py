#!/usr/bin/env python3
"""CDK entry point: `cdk synth|deploy -c env=dev|staging|prod`, one stack per environment."""

import os

import aws_cdk as cdk

from infra import config as environments
from infra.nag import check_with_cdk_nag
from infra.stack import PaymentWorkflowStack

# The CLI passes CDK_OUTDIR; run directly (python app.py), the app writes to cdk.out as well.
app = cdk.App(outdir=os.environ.get("CDK_OUTDIR", "cdk.out"))
config = environments.load(app.node.try_get_context("env") or "dev", app.node.try_get_context(environments.CONTEXT_KEY))
stack = PaymentWorkflowStack(
    app,
    f"PaymentWorkflow-{config.name}",
    config=config,
    env=cdk.Environment(account=config.account, region=config.region),
    description=f"Payment workflow ({config.name}): Step Functions, Lambda, DynamoDB ledger and audit, KMS",
)
cdk.Tags.of(stack).add("service", "payment-workflow")
cdk.Tags.of(stack).add("environment", config.name)
check_with_cdk_nag(app, stack)
app.synth()
