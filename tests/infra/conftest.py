"""Synthesizes the stack once per environment, in process, as `cdk synth` would."""

import json
import os

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "1")

import aws_cdk as cdk
from aws_cdk.assertions import Template

from infra import config as environments
from infra.stack import PaymentWorkflowStack


def synthesize(name, outdir):
    app = cdk.App(outdir=str(outdir))
    config = environments.load(name)
    stack = PaymentWorkflowStack(
        app, f"PaymentWorkflow-{name}", config=config, env=cdk.Environment(account="111111111111", region="eu-west-1")
    )
    return app, stack


def synthesized(name, outdir):
    """(stack, Template, outdir): the cloud assembly written as `cdk synth` writes it."""
    app, stack = synthesize(name, outdir)
    app.synth()
    template = json.loads((outdir / f"PaymentWorkflow-{name}.template.json").read_text())
    return stack, Template.from_json(template), outdir


@pytest.fixture(scope="session")
def prod(tmp_path_factory):
    return synthesized("prod", tmp_path_factory.mktemp("prod"))


@pytest.fixture(scope="session")
def dev(tmp_path_factory):
    return synthesized("dev", tmp_path_factory.mktemp("dev"))
