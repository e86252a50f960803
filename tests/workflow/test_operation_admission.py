"""Two operations admitted at the same instant against one payment, on the local stack, with real threads.

The ledger's conditional append is the lock: of two refunds of 60.00 on a 100.00 sale, exactly one
is admitted (its REFUND-INITIATED entry appended), the other is refused EXCEEDS_REFUNDABLE before
anything could be sent. The race is run many times, each from a barrier, so that both admissions
read the same history.
"""

import threading
from decimal import Decimal

from local import operations as stack_operations
from local.verify_ledger import verify_payment
from payments.chain import typed
from payments.ledger import LedgerRepository
from payments.operation_admission import admit_operation
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
