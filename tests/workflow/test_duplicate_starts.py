"""Duplicate starts through upstream.client.start_payment: one execution, one charge, or a clear error."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from local import operations
from tests.workflow.conftest import card_request
from upstream.client import DuplicateTransactionID, start_payment, wait_for_payment


def charges(stack, transaction_id):
    return [
        t for t in stack.sandbox.transactions() if t["ssl_merchant_txn_id"] == transaction_id and t["approved_charge"]
    ]


def test_the_same_request_started_twice_at_once_runs_once_and_charges_once(stack, info, transaction_id):
    sfn = info.client("stepfunctions")
    request = card_request(transaction_id)

    with ThreadPoolExecutor(max_workers=2) as pool:
        started = list(pool.map(lambda _: start_payment(sfn, info.state_machine_arn, request), range(2)))

    assert {s.execution_arn for s in started} == {started[0].execution_arn}
    wait_for_payment(sfn, started[0].execution_arn)
    executions = sfn.list_executions(stateMachineArn=info.state_machine_arn)["executions"]
    assert [e["name"] for e in executions].count(transaction_id) == 1
    assert len(charges(stack, transaction_id)) == 1


def test_the_same_request_after_it_finished_returns_the_existing_payment(stack, info, transaction_id):
    sfn = info.client("stepfunctions")
    request = card_request(transaction_id)
    first = start_payment(sfn, info.state_machine_arn, request)
    result = wait_for_payment(sfn, first.execution_arn)

    again = start_payment(sfn, info.state_machine_arn, request)

    assert again.already_started and again.execution_arn == first.execution_arn
    assert wait_for_payment(sfn, again.execution_arn)["output"] == result["output"]
    assert len(charges(stack, transaction_id)) == 1


def test_a_different_request_under_the_same_transaction_id_is_refused_and_changes_nothing(stack, info, transaction_id):
    sfn = info.client("stepfunctions")
    first = start_payment(sfn, info.state_machine_arn, card_request(transaction_id, amount="25.00"))
    wait_for_payment(sfn, first.execution_arn)
    ledger_before = operations.ledger_entries(info, transaction_id)

    with pytest.raises(DuplicateTransactionID) as refused:
        start_payment(sfn, info.state_machine_arn, card_request(transaction_id, amount="99.00"))

    assert transaction_id in str(refused.value) and "4111111111111111" not in str(refused.value)
    assert operations.ledger_entries(info, transaction_id) == ledger_before
    assert len(charges(stack, transaction_id)) == 1
