"""Status sync through the real PaymentStatusSync state machine: each resolution path, judged by the
sandbox's own record of the money and by the ledger's new entries (the old ones never change)."""

import datetime as dt
import json
import time

import pytest

from local import cli, operations
from local.sandbox import FaultRule
from local.status_sync import run_status_sync
from payments import topology
from payments.sale_attempts import SALE_ATTEMPT, parse_time
from payments.status_resolution import reversal_reference
from tests.workflow.conftest import card_request, run_payment
from tests.workflow.test_ledger_events import assert_one_event_per_terminal_entry
from upstream import client


def sync(info, **request):
    return run_status_sync(info, request)


def result_for(output, transaction_id, operation_id=None):
    [result] = [
        r for r in output["Results"] if r["TransactionID"] == transaction_id and r.get("OperationID") == operation_id
    ]
    return result


def charges(stack, reference):
    return [t for t in stack.sandbox.transactions() if t["ssl_merchant_txn_id"] == reference]


def fail_with_outcome_unknown(stack, info, transaction_id, *, charged):
    """A payment whose every lookup is lost: it ends FAILED, PROCESSOR_OUTCOME_UNKNOWN; `charged` says
    whether its one sale reached the processor (its answer lost) or never did."""
    if charged:
        stack.sandbox.faults.add(
            FaultRule(
                "timeout_after_charge", match={"ssl_transaction_type": "ccsale", "ssl_merchant_txn_id": transaction_id}
            )
        )
        stack.sandbox.faults.add(
            FaultRule(
                "drop_before_charge",
                times=0,
                match={"ssl_transaction_type": "txnquery", "ssl_merchant_txn_id": transaction_id},
            )
        )
    else:
        stack.sandbox.faults.add(
            FaultRule("drop_before_charge", times=0, match={"ssl_merchant_txn_id": transaction_id})
        )
    execution = run_payment(info, card_request(transaction_id))
    stack.sandbox.faults.clear()
    assert json.loads(execution["cause"])["Failure"]["Code"] == "PROCESSOR_OUTCOME_UNKNOWN"
    return operations.ledger_entries(info, transaction_id)


def assert_unchanged(info, before, after):
    """The earlier entries are as they were, and the whole ledger still verifies: chain, order, balances."""
    assert after[: len(before)] == before
    transaction_id = before[0]["TransactionID"]
    assert cli.main(["verify-ledger", "--endpoint", info.endpoint_url, "--transaction-id", transaction_id]) == 0


def test_an_unknown_outcome_with_nothing_at_the_processor_is_recorded_not_charged(stack, info, transaction_id):
    before = fail_with_outcome_unknown(stack, info, transaction_id, charged=False)

    result = result_for(sync(info), transaction_id)

    assert (result["Outcome"], result["Resolution"], result["Status"]) == (
        "RESOLVED",
        "RECORD_NOT_CHARGED",
        "PAYMENT-FAILED",
    )
    after = operations.ledger_entries(info, transaction_id)
    assert_unchanged(info, before, after)
    [resolution] = after[len(before) :]
    assert (resolution["Status"], resolution["ReasonCode"], resolution["Resolution"]) == (
        "PAYMENT-FAILED",
        "NOT_CHARGED",
        "RECORD_NOT_CHARGED",
    )
    assert resolution["ExecutionArn"].split(":")[-2] == "PaymentStatusSync"
    assert charges(stack, transaction_id) == []
    # The lookup that decided it is in the payment's audit trail, written by the sync run.
    trail = operations.audit_records(info, transaction_id)
    lookups = [r for r in trail if r["ExecutionArn"] == resolution["ExecutionArn"]]
    assert [r["Operation"] for r in lookups] == ["txnquery"]
    # Resolved once: the next run does not even find it.
    assert all(r["TransactionID"] != transaction_id for r in sync(info)["Results"])


@pytest.mark.parametrize("settled", [False, True], ids=["open-batch-void", "settled-return"])
def test_a_charge_made_after_the_payment_was_told_failed_is_reversed(stack, info, transaction_id, settled):
    before = fail_with_outcome_unknown(stack, info, transaction_id, charged=True)
    [sale] = charges(stack, transaction_id)
    assert sale["approved_charge"]
    if settled:
        stack.sandbox.settle()

    result = result_for(sync(info), transaction_id)

    assert (result["Outcome"], result["Resolution"], result["Status"]) == ("RESOLVED", "REVERSE", "PAYMENT-REVERSED")
    after = operations.ledger_entries(info, transaction_id)
    assert_unchanged(info, before, after)
    reversing, reversed_ = after[len(before) :]
    reference = reversal_reference(transaction_id)
    assert (reversing["Status"], reversing["ProcessorTransactionID"], reversing["OperationID"]) == (
        "PAYMENT-REVERSING",
        sale["ssl_txn_id"],
        reference,
    )
    assert reversed_["ReasonCode"] == ("REVERSE_BY_RETURN" if settled else "REVERSE_BY_VOID")
    [reversal] = charges(stack, reference)
    assert reversal["ssl_txn_id"] == reversed_["ProcessorTransactionID"]
    assert reversed_["Status"] == "PAYMENT-REVERSED" and reversed_["Amount"] == before[0]["Amount"]
    # Upstream was told it failed; now it is told the charge was found and given back. REVERSING is no event.
    assert assert_one_event_per_terminal_entry(stack, info, transaction_id) == ["PaymentFailed", "PaymentReconciled"]
    [sale_now] = charges(stack, transaction_id)
    if settled:  # returned in full: the money went back
        assert reversal["ssl_transaction_type"] == "RETURN" and reversal["ssl_amount"] == sale["ssl_amount"]
    else:  # voided: it never settles
        assert not sale_now["approved_charge"]
    # A second run sends nothing: the payment is resolved.
    exchanges = len(stack.sandbox.exchanges())
    assert all(r["TransactionID"] != transaction_id for r in sync(info)["Results"])
    assert len(stack.sandbox.exchanges()) == exchanges


def test_a_payment_charged_while_its_execution_stopped_at_pending_is_completed(stack, info, transaction_id):
    # Both terminal ledger steps keep failing: the execution ends with the ledger at PAYMENT-PENDING.
    for function in ("PaymentLedgerSuccess", "PaymentLedgerFailed"):
        stack.runtime.faults.inject(function, "service_error", times=40)
    execution = run_payment(info, card_request(transaction_id))
    stack.runtime.faults.clear()
    assert execution["status"] == "FAILED"
    before = operations.ledger_entries(info, transaction_id)
    assert before[-1]["Status"] == "PAYMENT-PENDING"
    [sale] = charges(stack, transaction_id)

    assert all(r["TransactionID"] != transaction_id for r in sync(info)["Results"])  # not past the deadline yet
    result = result_for(sync(info, PendingDeadlineSeconds=0), transaction_id)

    assert (result["Resolution"], result["Status"]) == ("COMPLETE", "PAYMENT-SUCCESS")
    after = operations.ledger_entries(info, transaction_id)
    assert_unchanged(info, before, after)
    [completed] = after[len(before) :]
    assert completed["ProcessorTransactionID"] == sale["ssl_txn_id"]
    assert completed["Resolution"] == "COMPLETE"
    assert assert_one_event_per_terminal_entry(stack, info, transaction_id) == ["PaymentReconciled"]


def test_a_refund_whose_outcome_was_unknown_is_recorded_as_made_and_unblocks_the_payment(stack, info, transaction_id):
    assert json.loads(run_payment(info, card_request(transaction_id, amount="40.00"))["output"])["Status"] == (
        "PAYMENT-SUCCESS"
    )
    stack.sandbox.settle()
    refund_id = f"{transaction_id}-r1"
    stack.sandbox.faults.add(
        FaultRule("timeout_after_charge", match={"ssl_transaction_type": "ccreturn", "ssl_merchant_txn_id": refund_id})
    )
    stack.sandbox.faults.add(
        FaultRule(
            "drop_before_charge", times=0, match={"ssl_transaction_type": "txnquery", "ssl_merchant_txn_id": refund_id}
        )
    )
    sfn = info.client("stepfunctions")
    started = client.refund(sfn, info.refund_state_machine_arn, transaction_id, refund_id, "15.00")
    operations.wait_for_execution(info, started.execution_arn, timeout_seconds=120)
    stack.sandbox.faults.clear()
    assert operations.ledger_entries(info, transaction_id)[-1]["Status"] == "REFUND-FAILED"

    result = result_for(sync(info), transaction_id, refund_id)

    assert (result["Resolution"], result["Status"]) == ("RECORD_SUCCESS", "REFUND-SUCCESS")
    entries = operations.ledger_entries(info, transaction_id)
    assert (entries[-1]["Refunded"], entries[-1]["OperationID"]) == ("15.00", refund_id)
    assert_unchanged(info, entries, entries)
    # The payment takes operations again: the rest can be refunded, and no more.
    started = client.refund(sfn, info.refund_state_machine_arn, transaction_id, f"{transaction_id}-r2", None)
    done = operations.wait_for_execution(info, started.execution_arn, timeout_seconds=60)
    assert (json.loads(done["output"])["Status"], json.loads(done["output"])["Amount"]) == ("REFUND-SUCCESS", "25.00")
    assert operations.ledger_entries(info, transaction_id)[-1]["Refunded"] == "40.00"


def test_the_command_exits_0_once_nothing_is_left_unresolved(stack, info, transaction_id, capsys):
    fail_with_outcome_unknown(stack, info, transaction_id, charged=False)

    assert cli.main(["sync", "--endpoint", info.endpoint_url]) == 0

    printed = capsys.readouterr().out
    assert f"resolved  {transaction_id}: RECORD_NOT_CHARGED -> PAYMENT-FAILED" in printed


def test_a_reversal_whose_answer_was_lost_is_found_by_the_next_run_not_sent_again(stack, info, transaction_id):
    fail_with_outcome_unknown(stack, info, transaction_id, charged=True)
    reference = reversal_reference(transaction_id)
    stack.sandbox.faults.add(
        FaultRule("timeout_after_charge", match={"ssl_transaction_type": "ccvoid", "ssl_merchant_txn_id": reference})
    )
    stack.sandbox.faults.add(
        FaultRule(
            "drop_before_charge", times=0, match={"ssl_transaction_type": "txnquery", "ssl_merchant_txn_id": reference}
        )
    )

    first = result_for(sync(info), transaction_id)
    stack.sandbox.faults.clear()

    assert first["Outcome"] == "LEFT_FOR_AN_OPERATOR" and "unknown" in first["Detail"]
    assert operations.ledger_entries(info, transaction_id)[-1]["Status"] == "PAYMENT-REVERSING"
    assert len(charges(stack, reference)) == 1  # the void went through; its answer did not

    second = result_for(sync(info), transaction_id)

    assert (second["Outcome"], second["Status"]) == ("RESOLVED", "PAYMENT-REVERSED")
    [void] = charges(stack, reference)  # found by asking, never sent twice
    assert operations.ledger_entries(info, transaction_id)[-1]["ProcessorTransactionID"] == void["ssl_txn_id"]


def test_a_sale_that_may_still_be_landing_is_not_judged_until_it_has_surely_landed(stack, info, transaction_id):
    # Every attempt's sale is lost on the way but the last, which Converge files 2.5 s after it arrived:
    # after the client gave up and the payment ended FAILED, outcome unknown.
    sales = {"ssl_transaction_type": "ccsale", "ssl_merchant_txn_id": transaction_id}
    stack.sandbox.faults.add(FaultRule("drop_before_charge", times=4, match=sales))
    stack.sandbox.faults.add(FaultRule("charge_in_flight", delay_ms=2500, match=sales))
    execution = run_payment(info, card_request(transaction_id))
    assert json.loads(execution["cause"])["Failure"]["Code"] == "PROCESSOR_OUTCOME_UNKNOWN"

    # A run now would find nothing at Converge: it must not conclude "not charged"
    early = result_for(sync(info), transaction_id)

    assert (early["Outcome"], early["Resolution"]) == ("NOT_YET", None)
    assert operations.ledger_entries(info, transaction_id)[-1]["ReasonCode"] == "PROCESSOR_OUTCOME_UNKNOWN"

    # Once the last sale has surely landed (its claim, then the grace, a connect and two reads), it is found
    claims = [r for r in operations.audit_records(info, transaction_id) if r["Operation"] == SALE_ATTEMPT]
    last_claim = max(parse_time(r["CreatedAt"]) for r in claims)
    environment = info.client("lambda").get_function_configuration(FunctionName="PaymentResolveUnresolved")
    timeouts = environment["Environment"]["Variables"]
    lands_by = last_claim + dt.timedelta(
        seconds=topology.PROCESSOR_TIME_BUDGET.claim_grace_seconds
        + float(timeouts[topology.CONVERGE_CONNECT_TIMEOUT_SECONDS])
        + 2 * float(timeouts[topology.CONVERGE_READ_TIMEOUT_SECONDS])
    )
    time.sleep(max(0.0, (lands_by - dt.datetime.now(dt.UTC)).total_seconds()) + 0.1)

    later = result_for(sync(info), transaction_id)

    assert (later["Resolution"], later["Status"]) == ("REVERSE", "PAYMENT-REVERSED")
    assert [c["approved_charge"] for c in charges(stack, transaction_id)] == [False]  # voided
