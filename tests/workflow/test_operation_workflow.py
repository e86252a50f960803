"""Capture, void and refund through the operation state machine on the local stack, judged by the
ledger and by the Converge sandbox's own record of what it holds."""

import json
import threading
from collections import Counter

import pytest

from local import operations
from local.sandbox import FAULT_KINDS, FaultRule
from local.sandbox.terminal import follow_ons_of
from local.verify_ledger import verify_payment
from payments.chain import typed
from tests.workflow.conftest import card_request, run_payment
from upstream import client


def pay(info, transaction_id, amount="100.00", capture=None):
    execution = run_payment(info, card_request(transaction_id, amount=amount, capture=capture))
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    return json.loads(execution["output"])


def operate(info, kind, transaction_id, operation_id, amount=None):
    request = {"Operation": kind, "OperationID": operation_id, "TransactionID": transaction_id}
    if amount is not None:
        request["Amount"] = amount
    execution = operations.wait_for_execution(info, operations.start_operation(info, request), timeout_seconds=90)
    return execution


def output(execution):
    assert execution["status"] == "SUCCEEDED", (execution.get("error"), execution.get("cause"))
    return json.loads(execution["output"])


def statuses(info, transaction_id):
    return [(e["Status"], e.get("OperationID"), e["Amount"]) for e in operations.ledger_entries(info, transaction_id)]


def held_at_converge(stack, operation_id):
    return follow_ons_of(stack.sandbox.transactions(), operation_id)


def charge_record(stack, processor_transaction_id):
    return next(t for t in stack.sandbox.transactions() if t["ssl_txn_id"] == processor_transaction_id)


def assert_verifies(info, transaction_id):
    entries = [typed(e) for e in operations.ledger_entries(info, transaction_id)]
    assert verify_payment(transaction_id, entries, []) == []


def test_an_authorization_is_captured_in_part_once_and_the_rest_released(stack, info, transaction_id):
    payment = pay(info, transaction_id, capture="manual")
    assert payment["Status"] == "PAYMENT-AUTHORIZED"

    captured = output(operate(info, "capture", transaction_id, f"{transaction_id}-c1", "60.00"))
    again = output(operate(info, "capture", transaction_id, f"{transaction_id}-c2", "10.00"))

    assert captured["Status"] == "CAPTURE-SUCCESS" and captured["Amount"] == "60.00"
    assert again["Status"] == "CAPTURE-DECLINED" and again["Decline"]["Code"] == "ALREADY_CAPTURED"
    assert charge_record(stack, payment["ProcessorTransactionID"])["completed_amount"] == "60.00"
    assert len(held_at_converge(stack, f"{transaction_id}-c1")) == 1
    assert held_at_converge(stack, f"{transaction_id}-c2") == []
    assert statuses(info, transaction_id)[3:] == [
        ("CAPTURE-INITIATED", f"{transaction_id}-c1", "60.00"),
        ("CAPTURE-PENDING", f"{transaction_id}-c1", "60.00"),
        ("CAPTURE-SUCCESS", f"{transaction_id}-c1", "60.00"),
        ("CAPTURE-DECLINED", f"{transaction_id}-c2", "10.00"),
    ]
    assert_verifies(info, transaction_id)


def test_a_sale_voided_before_settlement_never_settles_and_takes_no_refund(stack, info, transaction_id):
    payment = pay(info, transaction_id)

    voided = output(operate(info, "void", transaction_id, f"{transaction_id}-v"))
    stack.sandbox.settle()
    refund = output(operate(info, "refund", transaction_id, f"{transaction_id}-r", "10.00"))

    assert voided["Status"] == "VOID-SUCCESS" and voided["Amount"] == "100.00"
    record = charge_record(stack, payment["ProcessorTransactionID"])
    assert record["voided"] and record["ssl_trans_status"] == "OPN"
    assert refund["Status"] == "REFUND-DECLINED" and refund["Decline"]["Code"] == "ALREADY_VOIDED"
    assert_verifies(info, transaction_id)


def test_an_authorization_is_voided_by_releasing_it(stack, info, transaction_id):
    payment = pay(info, transaction_id, capture="manual")

    voided = output(operate(info, "void", transaction_id, f"{transaction_id}-v"))

    assert voided["Status"] == "VOID-SUCCESS"
    assert charge_record(stack, payment["ProcessorTransactionID"])["deleted"]
    [delete] = held_at_converge(stack, f"{transaction_id}-v")
    assert delete["delete_merchant_txn_id"] == f"{transaction_id}-v"


def test_partial_refunds_up_to_the_amount_charged_and_no_further(stack, info, transaction_id):
    payment = pay(info, transaction_id)
    stack.sandbox.settle()

    first = output(operate(info, "refund", transaction_id, f"{transaction_id}-r1", "30.00"))
    second = output(operate(info, "refund", transaction_id, f"{transaction_id}-r2", "50.00"))
    third = output(operate(info, "refund", transaction_id, f"{transaction_id}-r3", "30.00"))
    rest = output(operate(info, "refund", transaction_id, f"{transaction_id}-r4"))

    assert [first["Status"], second["Status"], rest["Status"]] == ["REFUND-SUCCESS"] * 3
    assert rest["Amount"] == "20.00"  # no amount: all that is left
    assert third["Status"] == "REFUND-DECLINED" and third["Decline"]["Code"] == "EXCEEDS_REFUNDABLE"
    assert held_at_converge(stack, f"{transaction_id}-r3") == []
    assert charge_record(stack, payment["ProcessorTransactionID"])["refunded_amount"] == "100.00"
    # Each operation entry carries the payment's balances once it stands, written with it
    last = operations.ledger_entries(info, transaction_id)[-1]
    assert (last["Status"], last["Captured"], last["Refunded"]) == ("REFUND-SUCCESS", "100.00", "100.00")
    assert_verifies(info, transaction_id)


@pytest.mark.parametrize(
    ("capture", "kind", "amount", "settle", "reason"),
    [
        (None, "capture", "10.00", False, "NOT_AN_AUTHORIZATION"),
        ("manual", "refund", "10.00", False, "NOT_CAPTURED"),
        (None, "refund", "10.00", False, "NOT_SETTLED"),
        (None, "void", None, True, "ALREADY_SETTLED"),
        ("manual", "capture", "100.01", False, "EXCEEDS_AUTHORIZED"),
    ],
)
def test_an_operation_the_payment_does_not_allow_is_refused_before_any_money_moves(
    stack, info, transaction_id, capture, kind, amount, settle, reason
):
    pay(info, transaction_id, capture=capture)
    if settle:
        stack.sandbox.settle()
    operation_id = f"{transaction_id}-x"

    refused = output(operate(info, kind, transaction_id, operation_id, amount))

    assert refused["Status"] == f"{kind.upper()}-DECLINED" and refused["Decline"]["Code"] == reason
    assert held_at_converge(stack, operation_id) == []
    sent = [e.operation for e in stack.sandbox.exchanges() if e.merchant_txn_id == operation_id]
    assert sent == []  # not even asked: nothing carried the OperationID
    assert statuses(info, transaction_id)[-1][0] == f"{kind.upper()}-DECLINED"


def test_an_operation_on_an_unknown_or_declined_payment_is_refused(stack, info, transaction_id):
    unknown = operate(info, "refund", f"{transaction_id}-nobody", f"{transaction_id}-u", "10.00")
    declined = run_payment(info, card_request(transaction_id, number="4000000000000002"))
    on_declined = output(operate(info, "void", transaction_id, f"{transaction_id}-d"))

    assert unknown["status"] == "FAILED" and unknown["error"] == "OperationRefused"
    assert "UNKNOWN_PAYMENT" in unknown["cause"]
    assert json.loads(declined["output"])["Status"] == "PAYMENT-DECLINED"
    assert on_declined["Decline"]["Code"] == "PAYMENT_NOT_APPROVED"


def test_a_malformed_operation_names_the_field_and_writes_nothing(info, transaction_id):
    # Started straight with StartExecution, past the client's own check
    request = {"Operation": "refund", "OperationID": f"{transaction_id}-m", "TransactionID": transaction_id}
    started = info.client("stepfunctions").start_execution(
        stateMachineArn=info.refund_state_machine_arn,
        name=request["OperationID"],
        input=json.dumps(request | {"Amount": "ten"}),
    )
    execution = operations.wait_for_execution(info, started["executionArn"])

    assert execution["status"] == "FAILED" and execution["error"] == "InvalidOperationRequest"
    assert execution["cause"].startswith("Amount ") and "ten" not in execution["cause"]
    assert operations.ledger_entries(info, transaction_id) == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"OperationID": "4111111111111111"}, "OperationID"),
        ({"Reason": "card 4111 1111 1111 1111"}, "Reason"),
        ({"Amount": "ten"}, "Amount"),
    ],
)
def test_the_client_refuses_a_malformed_operation_before_step_functions_stores_anything(
    info, transaction_id, change, field
):
    request = {"Operation": "refund", "OperationID": f"{transaction_id}-q", "TransactionID": transaction_id} | change
    sfn = info.client("stepfunctions")

    with pytest.raises(client.InvalidOperation) as refused:
        client.start_operation(sfn, info.refund_state_machine_arn, request)

    assert refused.value.field == field and "4111" not in str(refused.value)
    executions = sfn.list_executions(stateMachineArn=info.refund_state_machine_arn)["executions"]
    assert request["OperationID"] not in {e["name"] for e in executions}


def test_two_refunds_of_60_on_100_started_at_once_move_60_once(stack, info, transaction_id):
    sfn = info.client("stepfunctions")
    for round_number in range(6):
        payment_id = f"{transaction_id}-{round_number}"
        payment = pay(info, payment_id)
        stack.sandbox.settle()
        barrier = threading.Barrier(2)
        arns, errors = [], []

        def start(operation_id, payment_id=payment_id, barrier=barrier, arns=arns, errors=errors):
            barrier.wait()
            try:
                arns.append(
                    client.refund(sfn, info.refund_state_machine_arn, payment_id, operation_id, "60.00").execution_arn
                )
            except Exception as error:  # a thread's failure must fail the test
                errors.append(error)

        threads = [threading.Thread(target=start, args=(f"{payment_id}-{side}",)) for side in "ab"]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not errors, errors
        outcomes = sorted(
            (o["Status"], (o.get("Decline") or {}).get("Code"))
            for o in (output(operations.wait_for_execution(info, arn, 90)) for arn in arns)
        )

        assert outcomes == [("REFUND-DECLINED", "EXCEEDS_REFUNDABLE"), ("REFUND-SUCCESS", None)], round_number
        returns = [t for t in stack.sandbox.transactions() if t["ssl_transaction_type"] == "RETURN"]
        mine = [t for t in returns if t["original_txn_id"] == payment["ProcessorTransactionID"]]
        assert [t["ssl_amount"] for t in mine] == ["60.00"]
        assert_verifies(info, payment_id)


def test_an_operation_started_twice_runs_once_and_a_reused_operation_id_is_refused(info, transaction_id):
    pay(info, transaction_id, capture="manual")
    sfn = info.client("stepfunctions")
    arn = info.capture_state_machine_arn

    first = client.capture(sfn, arn, transaction_id, f"{transaction_id}-c", "40.00")
    output(operations.wait_for_execution(info, first.execution_arn, 90))
    again = client.capture(sfn, arn, transaction_id, f"{transaction_id}-c", "40.00")

    assert again.already_started and again.execution_arn == first.execution_arn
    with pytest.raises(client.DuplicateOperationID):
        client.capture(sfn, arn, transaction_id, f"{transaction_id}-c", "41.00")


# How many times the operation's request reaches Converge: once when the first was processed (the
# retry finds it by its OperationID), twice when it was not (the retry finds nothing and sends it).
SENDS = {"timeout_after_charge": 1, "charge_in_flight": 1, "latency": 1}


@pytest.mark.parametrize("fault", FAULT_KINDS)
@pytest.mark.parametrize("kind", ["capture", "void", "refund"])
def test_a_fault_on_an_operation_still_moves_the_money_exactly_once(stack, info, transaction_id, kind, fault):
    pay(info, transaction_id, capture="manual" if kind == "capture" else None)
    if kind == "refund":
        stack.sandbox.settle()
    operation_id = f"{transaction_id}-{kind[0]}"
    converge_type = {"capture": "cccomplete", "void": "ccvoid", "refund": "ccreturn"}[kind]
    stack.sandbox.faults.add(
        FaultRule(
            fault,
            match={"ssl_transaction_type": converge_type, "ssl_merchant_txn_id": operation_id},
            delay_ms={"latency": 300, "charge_in_flight": 1000}.get(fault, 0),
        )
    )

    done = output(operate(info, kind, transaction_id, operation_id, "40.00" if kind != "void" else None))

    assert done["Status"] == f"{kind.upper()}-SUCCESS"
    assert len(held_at_converge(stack, operation_id)) == 1
    sends = [e for e in stack.sandbox.exchanges() if e.merchant_txn_id == operation_id and e.operation == converge_type]
    assert len(sends) == SENDS.get(fault, 2)
    assert (fault, operation_id) in stack.sandbox.faults.fired  # the fault did strike
    # And every call Converge answered for it has its record in the operation's own audit trail
    answered = Counter(
        e.operation for e in stack.sandbox.exchanges() if e.merchant_txn_id == operation_id and e.answered
    )
    audited = Counter(r["Operation"] for r in operations.audit_records(info, f"{transaction_id}/{operation_id}"))
    assert answered and all(audited[op] >= n for op, n in answered.items()), (answered, audited)
    assert_verifies(info, transaction_id)
