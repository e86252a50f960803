"""Fixtures shared by suites: one local stack per test session (moto's state is per process)."""

import pytest

from local.stack import LocalStack


@pytest.fixture(scope="session")
def stack():
    # A short read timeout keeps the processor-timeout scenarios to a second each.
    with LocalStack(converge_read_timeout=1.0) as running:
        yield running


@pytest.fixture(scope="session")
def info(stack):
    return stack.info
