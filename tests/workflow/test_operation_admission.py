"""Two operations admitted at the same instant against one payment, on the local stack, with real threads.

The ledger's conditional append is the lock: of two refunds of 60.00 on a 100.00 sale, exactly one
is admitted (its REFUND-INITIATED entry appended), the other is refused EXCEEDS_REFUNDABLE before
anything could be sent. The race is run many times, each from a barrier, so that both admissions
read the same history.
"""

import threading
import time
from decimal import Decimal

import pytest

from local import operations as stack_operations
from local.sandbox import FaultRule
from local.verify_ledger import verify_payment
from payments.chain import typed
from payments.ledger import LedgerRepository
from payments.operation_admission import admission_step, admit_operation
from payments.operations import OperationRefused, OperationRequest
from tests.workflow.conftest import card_request, run_payment

ROUNDS = 12


def race(info, transaction_id, *requests):
    """Admit every request at once, one thread each: (admitted entries, refusal reasons)."""
    repository = LedgerRepository(info.ledger_table, client=info.client("dynamodb"))
    barrier = threading.Barrier(len(requests))
    admitted, refused, errors = [], [], []

    def admit(request):
        barrier.wait()
        try:
            admitted.append(admit_operation(repository, request, f"arn:exec:{request.OperationID}"))
        except OperationRefused as refusal:
            refused.append(refusal.reason)
        except Exception as error:  # a thread's failure must fail the test, not vanish
            errors.append(error)

    threads = [threading.Thread(target=admit, args=(request,)) for request in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    return admitted, refused


def refund(transaction_id, operation_id, amount):
    return OperationRequest("refund", operation_id, transaction_id, Decimal(amount))


def test_of_two_refunds_of_60_on_a_100_sale_started_at_once_exactly_one_is_admitted(info, transaction_id):
    for round_number in range(ROUNDS):
        # Given a settled sale of 100.00
        payment_id = f"{transaction_id}-{round_number}"
        assert run_payment(info, card_request(payment_id, amount="100.00"))["status"] == "SUCCEEDED"

        # When two refunds of 60.00 are admitted at the same instant
        admitted, refused = race(info, payment_id, refund(payment_id, "a", "60.00"), refund(payment_id, "b", "60.00"))

        # Then one is admitted; the other is refused before any processor call, and ends there,
        # REFUND-DECLINED with its reason on the ledger
        assert len(admitted) == 1 and refused == ["EXCEEDS_REFUNDABLE"], (round_number, admitted, refused)
        entries = stack_operations.ledger_entries(info, payment_id)
        assert [e["Status"] for e in entries] == [
            "PAYMENT-INITIATED",
            "PAYMENT-PENDING",
            "PAYMENT-SUCCESS",
            "REFUND-INITIATED",
            "REFUND-DECLINED",
        ]
        assert entries[3]["OperationID"] == admitted[0].OperationID and entries[3]["Amount"] == "60.00"
        assert entries[4]["OperationID"] != admitted[0].OperationID
        assert entries[4]["ReasonCode"] == "EXCEEDS_REFUNDABLE"
        # And the history still verifies: the operation's entry is chained after the payment's
        assert verify_payment(payment_id, [typed(e) for e in entries], []) == []


def test_refunds_that_fit_together_are_all_admitted(info, transaction_id):
    assert run_payment(info, card_request(transaction_id, amount="100.00"))["status"] == "SUCCEEDED"

    admitted, refused = race(info, transaction_id, *(refund(transaction_id, f"r{n}", "25.00") for n in range(4)))

    assert refused == [] and sorted(e.EntryNumber for e in admitted) == [4, 5, 6, 7]


def test_a_refused_operation_asked_again_is_refused_again_with_one_entry(info, transaction_id):
    assert run_payment(info, card_request(transaction_id, amount="100.00"))["status"] == "SUCCEEDED"
    repository = LedgerRepository(info.ledger_table, client=info.client("dynamodb"))
    too_much = refund(transaction_id, "too-much", "100.01")

    reasons = []
    for _ in range(2):  # the second: a retry of the same execution whose answer was lost
        try:
            admit_operation(repository, too_much, "arn:exec:too-much")
        except OperationRefused as refusal:
            reasons.append(refusal.reason)

    assert reasons == ["EXCEEDS_REFUNDABLE", "EXCEEDS_REFUNDABLE"]
    assert [e["Status"] for e in stack_operations.ledger_entries(info, transaction_id)][3:] == ["REFUND-DECLINED"]


def test_an_operation_id_reused_by_an_execution_of_the_same_name_for_another_operation_is_refused(info, transaction_id):
    # Once Step Functions has forgotten an execution, a new one may take its name, and so its ARN.
    assert run_payment(info, card_request(transaction_id, amount="100.00"))["status"] == "SUCCEEDED"
    repository = LedgerRepository(info.ledger_table, client=info.client("dynamodb"))
    admit_operation(repository, refund(transaction_id, "r1", "10.00"), "arn:exec:r1")

    again = admit_operation(repository, refund(transaction_id, "r1", "10.00"), "arn:exec:r1")
    with pytest.raises(OperationRefused) as other_amount:
        admit_operation(repository, refund(transaction_id, "r1", "25.00"), "arn:exec:r1")
    with pytest.raises(OperationRefused) as other_kind:
        admit_operation(repository, OperationRequest("void", "r1", transaction_id), "arn:exec:r1")

    assert again.Status == "REFUND-INITIATED" and again.Amount == "10.00"
    assert other_amount.value.reason == other_kind.value.reason == "DUPLICATE_OPERATION_ID"
    assert len(stack_operations.ledger_entries(info, transaction_id)) == 4


def test_an_operation_on_a_payment_still_running_is_refused_without_taking_its_entry(stack, info, transaction_id):
    # The sale is slow to answer: the payment has written INITIATED and PENDING when the void arrives
    stack.sandbox.faults.add(
        FaultRule(
            "latency", delay_ms=1500, match={"ssl_merchant_txn_id": transaction_id, "ssl_transaction_type": "ccsale"}
        )
    )
    arn = stack_operations.start_payment(info, card_request(transaction_id, amount="100.00"))
    repository = LedgerRepository(info.ledger_table, client=info.client("dynamodb"))
    deadline = time.monotonic() + 30
    while len(stack_operations.ledger_entries(info, transaction_id)) < 2:  # PENDING written: the sale is on its way
        assert time.monotonic() < deadline, "the payment never reached PAYMENT-PENDING"
        time.sleep(0.02)

    with pytest.raises(OperationRefused) as refused:
        admit_operation(repository, OperationRequest("void", "v1", transaction_id), "arn:exec:v1")

    assert refused.value.reason == "PAYMENT_IN_PROGRESS"
    payment = stack_operations.wait_for_execution(info, arn, timeout_seconds=60)
    assert payment["status"] == "SUCCEEDED"
    assert [e["Status"] for e in stack_operations.ledger_entries(info, transaction_id)] == [
        "PAYMENT-INITIATED",
        "PAYMENT-PENDING",
        "PAYMENT-SUCCESS",
    ]


def test_a_reused_name_for_another_request_is_refused_not_answered_with_the_first_ones_entry(info, transaction_id):
    assert run_payment(info, card_request(transaction_id, amount="100.00"))["status"] == "SUCCEEDED"
    repository = LedgerRepository(info.ledger_table, client=info.client("dynamodb"))
    first = {"Operation": "refund", "OperationID": "r1", "TransactionID": transaction_id, "Amount": "200.00"}
    refused = admission_step(repository, first, "r1", "arn:exec:r1")  # recorded: REFUND-DECLINED

    again = admission_step(repository, first, "r1", "arn:exec:r1")
    with pytest.raises(OperationRefused) as other:
        admission_step(repository, first | {"Amount": "10.00"}, "r1", "arn:exec:r1")

    assert refused == again and refused["Admission"]["Response"]["Decline"]["Code"] == "EXCEEDS_REFUNDABLE"
    assert other.value.reason == "DUPLICATE_OPERATION_ID"
