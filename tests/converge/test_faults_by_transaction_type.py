"""Every fault kind meets every transaction type as it meets a sale: a rule matching
`ssl_transaction_type` fires, the client sees what the fault promises, and the request was
processed exactly when the fault says it was (timeout_after_charge: processed, answer withheld;
charge_in_flight: processed after the client gave up; the others: not at all, or answered late).
"""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import pytest

from local.sandbox import FAULT_KINDS, FaultRule, follow_ons_of
from payments.errors import ProcessorTimeout, ProcessorUnavailable
from payments.processors.converge import CardDetails, ConvergeCall, ConvergeProcessor
from payments.processors.port import OperationInstruction
from tests.converge.conftest import READ_TIMEOUT

CARD = CardDetails(number="4111111111111111", expiry_month=12, expiry_year=2031, cvv="847")
AMOUNT = Decimal("25.00")
# charge_in_flight files the request this long after it arrived: after the client has given up.
IN_FLIGHT_MS = int(READ_TIMEOUT * 1000) + 200


@dataclass(frozen=True)
class Fault:
    raises: type[Exception] | None  # None: answered
    processed: str  # "now" (before the client hears anything), "late" or "never"
    answered: bool  # the sandbox sent back a Converge reply (approval, decline or errorCode)
    delay_ms: int = 0


FAULTS = {
    "timeout_after_charge": Fault(ProcessorTimeout, "now", answered=False),
    "charge_in_flight": Fault(ProcessorTimeout, "late", answered=False, delay_ms=IN_FLIGHT_MS),
    "drop_before_charge": Fault(ProcessorTimeout, "never", answered=False),
    "http_500": Fault(ProcessorTimeout, "never", answered=False),
    "error_3000": Fault(ProcessorTimeout, "never", answered=True),
    "error_4017": Fault(ProcessorTimeout, "never", answered=True),
    "error_4022": Fault(ProcessorUnavailable, "never", answered=True),
    "latency": Fault(None, "now", answered=True, delay_ms=50),
}


@dataclass(frozen=True)
class Operation:
    """One transaction type: what it needs first, how it is sent, and how its effect shows in the record."""

    prepare: Callable[..., str | None]  # (client, sandbox, transaction_id) -> the ssl_txn_id it acts on
    send: Callable[..., ConvergeCall]  # (client, txn_id, transaction_id)
    took_effect: Callable[..., bool] | None  # (records, txn_id, transaction_id); None: changes nothing


def _sale(client, sandbox, transaction_id):
    return client.sale(transaction_id=transaction_id, amount=AMOUNT, currency="USD", card=CARD).result["ssl_txn_id"]


def _settled_sale(client, sandbox, transaction_id):
    txn_id = _sale(client, sandbox, transaction_id)
    sandbox.settle()
    return txn_id


def _authorization(client, sandbox, transaction_id):
    return client.auth_only(transaction_id=transaction_id, amount=AMOUNT, currency="USD", card=CARD).result[
        "ssl_txn_id"
    ]


def _nothing(client, sandbox, transaction_id):
    return None


def _record(records, txn_id):
    return next(r for r in records if r["ssl_txn_id"] == txn_id)


def _has(kind):
    return lambda records, txn_id, transaction_id: any(
        r["ssl_merchant_txn_id"] == transaction_id and r["ssl_transaction_type"] == kind for r in records
    )


OPERATIONS = {
    "ccsale": Operation(
        _nothing,
        lambda client, txn_id, tid: client.sale(transaction_id=tid, amount=AMOUNT, currency="USD", card=CARD),
        _has("SALE"),
    ),
    "ccauthonly": Operation(
        _nothing,
        lambda client, txn_id, tid: client.auth_only(transaction_id=tid, amount=AMOUNT, currency="USD", card=CARD),
        _has("AUTHONLY"),
    ),
    "cccomplete": Operation(
        _authorization,
        lambda client, txn_id, tid: client.complete(txn_id),
        lambda records, txn_id, tid: _record(records, txn_id)["completed_amount"] is not None,
    ),
    "ccvoid": Operation(
        _sale,
        lambda client, txn_id, tid: client.void(txn_id),
        lambda records, txn_id, tid: _record(records, txn_id)["voided"],
    ),
    "ccdelete": Operation(
        _authorization,
        lambda client, txn_id, tid: client.delete(txn_id),
        lambda records, txn_id, tid: _record(records, txn_id)["deleted"],
    ),
    "ccreturn": Operation(
        _settled_sale,
        lambda client, txn_id, tid: client.refund(txn_id),
        lambda records, txn_id, tid: _record(records, txn_id)["refunded_amount"] != "0.00",
    ),
    "txnquery": Operation(
        _sale,
        lambda client, txn_id, tid: client.query(merchant_txn_id=tid),
        None,
    ),
}


def test_the_matrix_covers_every_fault_kind():
    assert set(FAULTS) == set(FAULT_KINDS)


@pytest.mark.parametrize("operation_name", sorted(OPERATIONS))
@pytest.mark.parametrize("fault_name", sorted(FAULTS))
def test_a_fault_rule_for_a_transaction_type_fires_as_for_a_sale(
    client, sandbox, transaction_id, fault_name, operation_name
):
    fault, operation = FAULTS[fault_name], OPERATIONS[operation_name]
    # Given what the operation acts on, and a rule for this transaction type (and this one transaction)
    txn_id = operation.prepare(client, sandbox, transaction_id)
    which = (
        {"ssl_txn_id": txn_id} if txn_id and operation_name != "txnquery" else {"ssl_merchant_txn_id": transaction_id}
    )
    rule = sandbox.faults.add(
        FaultRule(fault_name, match={"ssl_transaction_type": operation_name, **which}, delay_ms=fault.delay_ms)
    )

    # When the client sends it, then it sees what the fault promises
    if fault.raises is None:
        call = operation.send(client, txn_id, transaction_id)
        assert call.operation == operation_name
    else:
        with pytest.raises(fault.raises) as excinfo:
            operation.send(client, txn_id, transaction_id)
        if fault_name.startswith("error_"):
            assert excinfo.value.call.response["errorCode"] == fault_name.removeprefix("error_")

    # And the rule fired once, on this request, answered or not as the fault says
    assert rule.fired == 1
    exchange = [e for e in sandbox.exchanges() if e.operation == operation_name][-1]
    assert (exchange.fault, exchange.answered) == (fault_name, fault.answered)

    # And the request took effect exactly when the fault says it does
    if operation.took_effect is None:
        return

    def took_effect():
        return bool(operation.took_effect(sandbox.transactions(), txn_id, transaction_id))

    if fault.processed == "now":
        assert took_effect()
    elif fault.processed == "late":
        assert sandbox.terminal.wait_until(took_effect, timeout=5)
    else:
        assert not took_effect()


# -- follow-on operations tagged with an OperationID ------------------------------------------------


# (the transaction type on the wire, what it acts on, the operation as the port names it)
TAGGED_OPERATIONS = {
    "cccomplete": (_authorization, "capture", AMOUNT, True),
    "ccreturn": (_settled_sale, "refund", AMOUNT, False),
    "ccvoid": (_sale, "void", None, False),
    "ccdelete": (_authorization, "void", None, True),
}


@pytest.mark.parametrize("operation_name", sorted(TAGGED_OPERATIONS))
@pytest.mark.parametrize("fault_name", sorted(FAULTS))
def test_a_fault_rule_meets_an_operation_tagged_with_its_operation_id(
    client, sandbox, transaction_id, new_transaction_id, fault_name, operation_name
):
    fault = FAULTS[fault_name]
    prepare, kind, amount, of_authorization = TAGGED_OPERATIONS[operation_name]
    adapter = ConvergeProcessor(client)
    # Given what the operation acts on, and a rule for this transaction type and this OperationID
    operation_id = new_transaction_id()
    txn_id = prepare(client, sandbox, transaction_id)
    instruction = OperationInstruction(operation_id, kind, txn_id, amount, "USD", of_authorization=of_authorization)
    rule = sandbox.faults.add(
        FaultRule(
            fault_name,
            match={"ssl_transaction_type": operation_name, "ssl_merchant_txn_id": operation_id},
            delay_ms=fault.delay_ms,
        )
    )

    # When the operation is sent, then the client sees what the fault promises
    if fault.raises is None:
        assert adapter.send_operation(instruction).operation == operation_name
    else:
        with pytest.raises(fault.raises):
            adapter.send_operation(instruction)

    # And the rule fired once, on this request, logged under the OperationID
    assert rule.fired == 1
    exchange = [e for e in sandbox.exchanges() if e.merchant_txn_id == operation_id][-1]
    assert (exchange.operation, exchange.fault, exchange.answered) == (operation_name, fault_name, fault.answered)

    # And Converge holds the operation exactly when the fault says, and a lookup by OperationID tells so
    def held():
        return len(follow_ons_of(sandbox.transactions(), operation_id))

    if fault.processed == "late":
        assert sandbox.terminal.wait_until(lambda: held() == 1, timeout=5)
    assert held() == (0 if fault.processed == "never" else 1)
    lookup = adapter.find_by_merchant_transaction_id(operation_id, since=dt.datetime.now(dt.UTC).date())
    found = adapter.operation_found(lookup, instruction)
    assert (found is None) == (fault.processed == "never")
