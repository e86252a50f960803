"""One local stack for the whole workflow suite: moto running the real ASL with the real handlers."""

import pytest

from local import operations
from local.payment_requests import card_request, new_transaction_id

__all__ = ["card_request", "run_payment"]


@pytest.fixture(autouse=True)
def no_leftover_faults(stack):
    yield
    stack.runtime.faults.clear()
    stack.sandbox.faults.clear()


@pytest.fixture
def transaction_id():
    return new_transaction_id("wf")


def run_payment(info, request):
    arn = operations.start_payment(info, request)
    return operations.wait_for_execution(info, arn, timeout_seconds=60)
