"""One time budget for a charge: the state outlives the Lambda, the Lambda outlives a retry's wait and two calls."""

import json
from pathlib import Path

import pytest

from payments import topology
from statemachine import payment

CDK_CONTEXT = json.loads((Path(__file__).resolve().parents[2] / "cdk.json").read_text())["context"]
ENVIRONMENTS = sorted(CDK_CONTEXT["payment-workflow:environments"])
BUDGET = topology.PROCESSOR_TIME_BUDGET


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_call_processor_state_outlives_its_lambda_which_outlives_a_retry(environment):
    # (The environments share the one budget; a per-environment override must keep this true too.)
    assert BUDGET.state_timeout_seconds > BUDGET.lambda_timeout_seconds >= BUDGET.needed_by_a_retry_seconds
    # Lambda's init phase does not count against its timeout: the state waits for both
    assert BUDGET.state_timeout_seconds > BUDGET.lambda_init_seconds + BUDGET.lambda_timeout_seconds


def test_the_state_machine_takes_its_timeout_from_the_budget():
    assert payment.definition()["States"]["CallProcessor"]["TimeoutSeconds"] == BUDGET.state_timeout_seconds


def test_a_longer_read_timeout_alone_breaks_the_budget():
    # Raising only the read timeout to 30 s would leave a retry no time to ask and sell.
    longer = topology.ProcessorTimeBudget(read_seconds=30.0)

    assert longer.lambda_timeout_seconds < longer.needed_by_a_retry_seconds
