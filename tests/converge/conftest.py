"""One Converge sandbox on loopback for the whole module, a client for it, and clean faults per test."""

import pytest

from local.payment_requests import new_transaction_id as new_id
from local.sandbox import ConvergeSandbox
from payments.processors.converge import ConvergeClient, ConvergeCredentials, ConvergeSettings

# The client gives up after READ_TIMEOUT; a timeout_after_charge answer is withheld for HOLD_SECONDS.
READ_TIMEOUT = 0.5
HOLD_SECONDS = 2


@pytest.fixture(scope="module")
def sandbox():
    running = ConvergeSandbox(host="127.0.0.1", port=0, hold_seconds=HOLD_SECONDS).start()
    yield running
    running.stop()


def credentials_of(sandbox, pin=None):
    given = sandbox.credentials
    return ConvergeCredentials(merchant_id=given.ssl_merchant_id, user_id=given.ssl_user_id, pin=pin or given.ssl_pin)


@pytest.fixture
def client_for(sandbox):
    """A client for the sandbox (or any URL), optionally with other credentials."""

    def build(url=None, pin=None):
        settings = ConvergeSettings(
            url=url or sandbox.xml_url,
            credentials=credentials_of(sandbox, pin),
            connect_timeout=1,
            read_timeout=READ_TIMEOUT,
        )
        return ConvergeClient(settings)

    return build


@pytest.fixture
def client(client_for):
    return client_for()


@pytest.fixture(autouse=True)
def no_leftover_faults(sandbox):
    yield
    sandbox.faults.clear()


@pytest.fixture
def new_transaction_id():
    """A factory of TransactionIDs no other test (or earlier run against the same sandbox) uses: letters,
    so that no id can pass for a card number in a scan of the sandbox's record."""
    return lambda: new_id("cv", 24)


@pytest.fixture
def transaction_id(new_transaction_id):
    return new_transaction_id()


@pytest.fixture
def record_of(sandbox):
    """The sandbox's own record of one transaction, by Converge's ssl_txn_id."""

    def find(ssl_txn_id):
        matches = [t for t in sandbox.transactions() if t["ssl_txn_id"] == ssl_txn_id]
        assert len(matches) == 1, f"the sandbox has {len(matches)} records of {ssl_txn_id}"
        return matches[0]

    return find


@pytest.fixture
def records_for(sandbox):
    """The sandbox's records tagged with one TransactionID (ssl_merchant_txn_id), in creation order."""
    return lambda transaction_id: [t for t in sandbox.transactions() if t["ssl_merchant_txn_id"] == transaction_id]
