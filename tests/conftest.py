"""Test tiers, and the one local stack the workflow and chaos tiers share.

Each directory under tests/ is a tier and carries the marker of its name (`pytest -m unit`).
The local stack is one per test process, because moto's state is: it is started on first use,
and imported only then, so that the fast tiers never load moto.
"""

from pathlib import Path

import pytest

TIERS = ("unit", "adapters", "converge", "workflow", "infra", "chaos", "e2e", "bench")
_ROOT = Path(__file__).parent


def pytest_collection_modifyitems(items):
    for item in items:
        tier = Path(item.fspath).relative_to(_ROOT).parts[0]
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session")
def stack():
    from local.stack import LocalStack

    # A short read timeout keeps the processor-timeout scenarios to a second each.
    with LocalStack(converge_read_timeout=1.0) as running:
        yield running


@pytest.fixture(scope="session")
def info(stack):
    return stack.info
