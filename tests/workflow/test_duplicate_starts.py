"""Duplicate starts through the intake (upstream.client.start_payment): one execution, one charge, or a clear error."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from local import operations
from local.payment_requests import MASTERCARD
from tests.workflow.conftest import card_request
from upstream.client import DuplicateTransactionID, start_payment, wait_for_payment


def charges(stack, transaction_id):
    return [
        t for t in stack.sandbox.transactions() if t["ssl_merchant_txn_id"] == transaction_id and t["approved_charge"]
    ]


def start(info, request):
    return start_payment(info.client("lambda"), info.intake_function, request)


def test_the_same_request_started_four_times_at_once_runs_once_and_charges_once(stack, info, transaction_id):
    request = card_request(transaction_id)

    with ThreadPoolExecutor(max_workers=4) as pool:
        started = list(pool.map(lambda _: start(info, request), range(4)))

    # (Which of them reports "already started" depends on timing: StartExecution itself answers a
    # second identical start of a running execution with the same execution, as AWS does.)
    assert {s.execution_arn for s in started} == {started[0].execution_arn}
    sfn = info.client("stepfunctions")
    wait_for_payment(sfn, started[0].execution_arn)
    executions = sfn.list_executions(stateMachineArn=info.state_machine_arn)["executions"]
    assert [e["name"] for e in executions].count(transaction_id) == 1
    assert len(charges(stack, transaction_id)) == 1


def test_the_same_request_after_it_finished_returns_the_existing_payment(stack, info, transaction_id):
    sfn = info.client("stepfunctions")
    request = card_request(transaction_id)
    first = start(info, request)
    result = wait_for_payment(sfn, first.execution_arn)

    again = start(info, request)

    assert again.already_started and again.execution_arn == first.execution_arn
    assert wait_for_payment(sfn, again.execution_arn)["output"] == result["output"]
    assert operations.vault_item(info, transaction_id) is None
    assert len(charges(stack, transaction_id)) == 1


@pytest.mark.parametrize("change", [{"amount": "99.00"}, {"number": MASTERCARD}], ids=["amount", "card"])
def test_a_different_request_under_the_same_transaction_id_is_refused_and_changes_nothing(
    stack, info, transaction_id, change
):
    sfn = info.client("stepfunctions")
    first = start(info, card_request(transaction_id, amount="25.00"))
    wait_for_payment(sfn, first.execution_arn)
    ledger_before = operations.ledger_entries(info, transaction_id)

    with pytest.raises(DuplicateTransactionID) as refused:
        start(info, card_request(transaction_id) | _request_change(transaction_id, change))

    assert refused.value.transaction_id == transaction_id
    assert "4111111111111111" not in str(refused.value) and MASTERCARD not in str(refused.value)
    assert operations.ledger_entries(info, transaction_id) == ledger_before
    assert operations.vault_item(info, transaction_id) is None
    assert len(charges(stack, transaction_id)) == 1


def _request_change(transaction_id, change):
    return {
        key: value
        for key, value in card_request(transaction_id, **change).items()
        if key in ("Amount", "PaymentMethod")
    }
