"""Redrive: a payment stopped while its sale was in flight, driven on again, still charges once.

RedriveExecution runs an execution's unsuccessful state again with the input it was scheduled
with, and `$$.State.RetryCount` starts again at 0 (AWS API reference, RedriveExecution). moto
5.2 has no RedriveExecution, so the test does exactly that step by hand: it invokes the
deployed CallProcessor with the parameters the execution's history recorded for it. What must
stop a second charge is what CallProcessor finds on record, never the retry count.
"""

import json
import time

import pytest

from local import operations
from local.sandbox import FaultRule
from payments.processors.converge import ConvergeClient, ConvergeCredentials, ConvergeSettings
from payments.sale_attempts import SALE_ATTEMPT
from tests.workflow.conftest import card_request


def wait_until(condition, what, timeout_seconds=30.0):
    deadline = time.monotonic() + timeout_seconds
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.01)


def charges_for(stack, transaction_id):
    return [t for t in stack.sandbox.transactions() if t["ssl_merchant_txn_id"] == transaction_id]


def scheduled_input(info, execution_arn, step):
    """The Payload Step Functions scheduled `step` with, first time: what a redrive sends it again."""
    return next(
        json.loads(event["taskScheduledEventDetails"]["parameters"])["Payload"]
        for event in operations.execution_history(info, execution_arn)
        if event["type"] == "TaskScheduled" and step in event["taskScheduledEventDetails"]["parameters"]
    )


@pytest.fixture
def reconciled(info):
    """Voids the charge a test leaves behind once its redriven step has answered: moto cannot run
    the rest of a redriven execution, and the chaos run, sharing this stack, counts every charge
    that no ledger accounts for (invariant 3). An operator reconciling the payment could do the same."""
    left = []
    yield left.append
    credentials = ConvergeCredentials(**{k.removeprefix("ssl_"): v for k, v in info.converge_credentials.items()})
    client = ConvergeClient(ConvergeSettings(url=info.converge_url, credentials=credentials))
    for processor_transaction_id in left:
        client.void(processor_transaction_id)


def test_a_payment_stopped_mid_sale_and_redriven_is_charged_once(stack, info, transaction_id, reconciled):
    # Given a sale that Converge takes but whose answer never comes back
    stack.sandbox.faults.add(FaultRule("timeout_after_charge", times=1, match={"ssl_merchant_txn_id": transaction_id}))
    execution_arn = operations.start_payment(info, card_request(transaction_id))
    wait_until(lambda: charges_for(stack, transaction_id), "the sale to reach the sandbox")

    # And an operator stops the execution while CallProcessor waits for that answer
    sfn = info.client("stepfunctions")
    sfn.stop_execution(executionArn=execution_arn, cause="operator stopped a stuck payment")
    wait_until(lambda: sfn.describe_execution(executionArn=execution_arn)["status"] != "RUNNING", "the stop")
    # (AWS reports ABORTED; moto ends the execution FAILED at the interrupted task. Either way the
    # unsuccessful step, the one a redrive runs again, is CallProcessor.)
    assert sfn.describe_execution(executionArn=execution_arn)["status"] in ("ABORTED", "FAILED")
    assert not any(r.name == "LedgerFailed" for r in operations.trace_payment(info, transaction_id).runs)

    # When it is redriven: CallProcessor runs again with its recorded input, RetryCount 0
    payload = scheduled_input(info, execution_arn, "CallProcessor")
    assert payload["RetryCount"] == 0
    reply = info.client("lambda").invoke(FunctionName="PaymentCallProcessor", Payload=json.dumps(payload).encode())
    result = json.loads(reply["Payload"].read())

    # Then it found the sale on record, asked Converge, and took that sale as the result
    assert not reply.get("FunctionError"), result
    [charge] = charges_for(stack, transaction_id)
    reconciled(charge["ssl_txn_id"])
    assert result["Result"]["ssl_txn_id"] == charge["ssl_txn_id"]
    # And Converge received one sale for this payment, ever
    sales = [e for e in stack.sandbox.exchanges() if e.merchant_txn_id == transaction_id and e.operation == "ccsale"]
    assert len(sales) == 1
    claims = [r for r in operations.audit_records(info, transaction_id) if r["Operation"] == SALE_ATTEMPT]
    assert [r["AuditID"] for r in claims] == [f"{SALE_ATTEMPT}#01"]
