"""The fault matrix: the whole workflow once per processor fault, judged by the sandbox's own record.

For each payment: a PAYMENT-SUCCESS has exactly one approved charge, a PAYMENT-FAILED has none,
and every call the adapter completed (every request the sandbox answered) has an audit record.
"""

import json

import pytest

from local import operations
from local.faults import FaultSchedule, ScheduledFault
from local.sandbox import FaultRule
from payments import topology
from payments.sale_attempts import SALE_ATTEMPT, parse_time
from tests.workflow.conftest import card_request, run_payment


def approved_charges(stack, transaction_id):
    return [
        t for t in stack.sandbox.transactions() if t["ssl_merchant_txn_id"] == transaction_id and t["approved_charge"]
    ]


def answered_calls(stack, transaction_id):
    return [e.operation for e in stack.sandbox.exchanges() if e.merchant_txn_id == transaction_id and e.answered]


def sales_received(stack, transaction_id):
    """Every ccsale the sandbox received for this payment, answered or not."""
    return [e for e in stack.sandbox.exchanges() if e.merchant_txn_id == transaction_id and e.operation == "ccsale"]


def pay_meeting(stack, info, transaction_id, fault):
    """Run one card payment with `fault` planned for it; the schedule says how often it struck."""
    schedule = FaultSchedule()
    schedule.add(transaction_id, fault)
    stack.apply_fault_schedule(schedule)
    try:
        return run_payment(info, card_request(transaction_id)), schedule
    finally:
        stack.apply_fault_schedule(None)


def call_processor_run(info, transaction_id):
    return next(r for r in operations.trace_payment(info, transaction_id).runs if r.name == "CallProcessor")


def assert_consistent(stack, info, transaction_id, execution):
    entries = operations.ledger_entries(info, transaction_id)
    terminal = entries[-1]["Status"]
    charges = approved_charges(stack, transaction_id)
    if terminal == "PAYMENT-SUCCESS":
        assert len(charges) == 1
        assert entries[-1]["ProcessorTransactionID"] == charges[0]["ssl_txn_id"]
        assert json.loads(execution["output"])["ProcessorTransactionID"] == charges[0]["ssl_txn_id"]
    else:
        assert charges == []
    records = operations.audit_records(info, transaction_id)
    audited = sorted(r["Operation"] for r in records if r["Operation"] != SALE_ATTEMPT)
    assert audited == sorted(answered_calls(stack, transaction_id))
    # And every sale that reached the processor was claimed in the audit trail before it left
    claims = [r for r in records if r["Operation"] == SALE_ATTEMPT]
    assert len(claims) == len(sales_received(stack, transaction_id))
    assert [r["AuditID"] for r in claims] == [f"{SALE_ATTEMPT}#{n:02d}" for n in range(1, len(claims) + 1)]
    return terminal


@pytest.mark.parametrize(
    ("fault", "expected_calls"),
    [
        # the first sale charges but its answer never comes; the retry finds it and sends nothing
        ("timeout_after_charge", ["txnquery"]),
        ("drop_before_charge", ["ccsale", "txnquery"]),
        ("http_500", ["ccsale", "txnquery"]),
        ("error_3000", ["ccsale", "ccsale", "txnquery"]),
        ("error_4017", ["ccsale", "ccsale", "txnquery"]),
        ("error_4022", ["ccsale", "ccsale", "txnquery"]),
    ],
)
def test_a_fault_on_the_first_sale_still_charges_exactly_once(stack, info, transaction_id, fault, expected_calls):
    stack.sandbox.faults.add(
        FaultRule(fault, match={"ssl_transaction_type": "ccsale", "ssl_merchant_txn_id": transaction_id})
    )

    execution = run_payment(info, card_request(transaction_id))

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    assert assert_consistent(stack, info, transaction_id, execution) == "PAYMENT-SUCCESS"
    assert sorted(answered_calls(stack, transaction_id)) == expected_calls
    assert call_processor_run(info, transaction_id).retries == 1


def test_a_slow_answer_within_the_timeout_is_just_slow(stack, info, transaction_id):
    stack.sandbox.faults.add(
        FaultRule(
            "latency", delay_ms=300, match={"ssl_merchant_txn_id": transaction_id, "ssl_transaction_type": "ccsale"}
        )
    )

    execution = run_payment(info, card_request(transaction_id))

    assert execution["status"] == "SUCCEEDED"
    assert assert_consistent(stack, info, transaction_id, execution) == "PAYMENT-SUCCESS"
    [record] = [r for r in operations.audit_records(info, transaction_id) if r["Operation"] == "ccsale"]
    assert record["LatencyMs"] >= 300 and record["Attempt"] == 1


def test_a_processor_that_never_takes_the_sale_ends_failed_with_no_charge(stack, info, transaction_id):
    # Every sale is refused with 4022 ("system unavailable"); queries are answered (and find nothing).
    stack.sandbox.faults.add(
        FaultRule(
            "error_4022", times=0, match={"ssl_transaction_type": "ccsale", "ssl_merchant_txn_id": transaction_id}
        )
    )

    execution = run_payment(info, card_request(transaction_id))

    assert execution["status"] == "FAILED" and execution["error"] == "PaymentFailed"
    assert assert_consistent(stack, info, transaction_id, execution) == "PAYMENT-FAILED"
    assert json.loads(execution["cause"])["Failure"]["Code"] == "PROCESSOR_UNAVAILABLE"
    # And CallProcessor was tried as its own retrier says: once, then four retries, each asking first
    assert call_processor_run(info, transaction_id).attempts == 5
    assert sorted(answered_calls(stack, transaction_id)) == ["ccsale"] * 5 + ["txnquery"] * 4


def test_an_answer_that_never_comes_ends_failed_as_outcome_unknown(stack, info, transaction_id):
    # Every request for this payment, queries included, is dropped: nobody can say whether it charged.
    stack.sandbox.faults.add(FaultRule("drop_before_charge", times=0, match={"ssl_merchant_txn_id": transaction_id}))

    execution = run_payment(info, card_request(transaction_id))

    assert execution["status"] == "FAILED"
    assert json.loads(execution["cause"])["Failure"]["Code"] == "PROCESSOR_OUTCOME_UNKNOWN"
    assert assert_consistent(stack, info, transaction_id, execution) == "PAYMENT-FAILED"


def test_rejected_request_is_never_retried(stack, info, transaction_id):
    # An invalid-credentials answer (4025) would be the same on every attempt: no retry, no charge.
    stack.sandbox.terminal.credentials = type(stack.sandbox.terminal.credentials)(ssl_pin="ROTATED")
    try:
        execution = run_payment(info, card_request(transaction_id))
    finally:
        stack.sandbox.terminal.credentials = type(stack.sandbox.terminal.credentials)()

    assert execution["status"] == "FAILED"
    assert json.loads(execution["cause"])["Failure"]["Code"] == "PROCESSOR_REJECTED"
    assert answered_calls(stack, transaction_id) == ["ccsale"]
    assert assert_consistent(stack, info, transaction_id, execution) == "PAYMENT-FAILED"


def test_call_processor_crashing_after_the_charge_does_not_charge_twice(stack, info, transaction_id):
    # The function charges, then its response is lost: Step Functions retries it.
    stack.runtime.faults.inject("PaymentCallProcessor", "lose_response")

    execution = run_payment(info, card_request(transaction_id))

    assert execution["status"] == "SUCCEEDED"
    assert assert_consistent(stack, info, transaction_id, execution) == "PAYMENT-SUCCESS"
    assert sorted(answered_calls(stack, transaction_id)) == ["ccsale", "txnquery"]


def test_a_declined_sale_found_by_query_stays_declined(stack, info, transaction_id):
    stack.sandbox.faults.add(
        FaultRule(
            "timeout_after_charge", match={"ssl_transaction_type": "ccsale", "ssl_merchant_txn_id": transaction_id}
        )
    )

    execution = run_payment(info, card_request(transaction_id, number="4000000000000002"))

    assert json.loads(execution["output"])["Status"] == "PAYMENT-DECLINED"
    assert assert_consistent(stack, info, transaction_id, execution) == "PAYMENT-DECLINED"
    assert len([t for t in stack.sandbox.transactions() if t["ssl_merchant_txn_id"] == transaction_id]) == 1


def test_an_audit_record_that_could_not_be_written_ahead_is_written_by_the_audit_step(stack, info, transaction_id):
    # Given the fifth PutItem of this payment (CallProcessor's write-ahead audit record, after the
    # intake's vault deposit, ledger entries 1 and 2 and the sale-attempt claim) is throttled past
    # the SDK's three attempts
    execution, schedule = pay_meeting(
        stack, info, transaction_id, ScheduledFault("dynamodb:PutItem", "throttle", count=3, skip=4)
    )

    # Then the payment still succeeds and the Audit step stored the record the state carried
    assert schedule.injected["dynamodb:throttle"] == 3
    assert execution["status"] == "SUCCEEDED"
    assert [r["Operation"] for r in operations.audit_records(info, transaction_id)] == ["ccsale", SALE_ATTEMPT]
    assert assert_consistent(stack, info, transaction_id, execution) == "PAYMENT-SUCCESS"


def test_a_sale_still_in_flight_when_the_retry_comes_is_found_not_repeated(stack, info, transaction_id):
    # Given Converge files the first sale 2 s after it arrived: after the client gave up (1 s read
    # timeout), about when the retry begins (1 s retry delay locally, no jitter), and before the
    # sale has surely landed (its claim + grace 1 s + connect 0.5 s + 2 x read 1 s = 3.5 s).
    stack.sandbox.faults.add(
        FaultRule(
            "charge_in_flight",
            delay_ms=2000,
            match={"ssl_transaction_type": "ccsale", "ssl_merchant_txn_id": transaction_id},
        )
    )

    execution = run_payment(info, card_request(transaction_id))

    # Then the retry found it by query and sent no second sale
    assert execution["status"] == "SUCCEEDED"
    assert assert_consistent(stack, info, transaction_id, execution) == "PAYMENT-SUCCESS"
    assert sorted(answered_calls(stack, transaction_id)) == ["txnquery"]
    # And it asked no sooner than the claimed sale had surely landed
    records = {r["Operation"]: r for r in operations.audit_records(info, transaction_id)}
    environment = info.client("lambda").get_function_configuration(FunctionName="PaymentCallProcessor")
    variables = environment["Environment"]["Variables"]
    lands_within = (
        topology.PROCESSOR_TIME_BUDGET.claim_grace_seconds
        + float(variables[topology.CONVERGE_CONNECT_TIMEOUT_SECONDS])
        + 2 * float(variables[topology.CONVERGE_READ_TIMEOUT_SECONDS])
    )
    claimed, asked = (parse_time(records[op]["CreatedAt"]) for op in (SALE_ATTEMPT, "txnquery"))
    assert (asked - claimed).total_seconds() >= lands_within


def test_a_throttled_ledger_is_retried_by_the_state_machine_until_the_entry_is_written(stack, info, transaction_id):
    # Given DynamoDB throttles this payment's ledger PutItems (after the intake's vault deposit) six
    # times in a row: the SDK's three tries fail twice
    execution, schedule = pay_meeting(
        stack, info, transaction_id, ScheduledFault("dynamodb:PutItem", "throttle", count=6, skip=1)
    )

    # Then LedgerInitiated failed twice with StorageUnavailable, was retried, and the payment settled
    assert schedule.injected["dynamodb:throttle"] == 6
    assert execution["status"] == "SUCCEEDED"
    run = next(r for r in operations.trace_payment(info, transaction_id).runs if r.name == "LedgerInitiated")
    assert (run.attempts, run.errors) == (3, ["StorageUnavailable", "StorageUnavailable"])
    assert assert_consistent(stack, info, transaction_id, execution) == "PAYMENT-SUCCESS"


def test_a_throttled_key_service_is_retried_by_the_state_machine(stack, info, transaction_id):
    # Given KMS throttles Tokenize's data-key request (after the intake's) past the SDK's attempts, once
    execution, _ = pay_meeting(
        stack, info, transaction_id, ScheduledFault("kms:GenerateDataKey", "throttle", count=3, skip=1)
    )

    assert execution["status"] == "SUCCEEDED"
    run = next(r for r in operations.trace_payment(info, transaction_id).runs if r.name == "Tokenize")
    assert (run.attempts, run.errors) == (2, ["KeyServiceUnavailable"])
