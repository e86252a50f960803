"""One local stack for the whole workflow suite: moto running the real ASL with the real handlers."""

import uuid

import pytest

from local import operations


@pytest.fixture(autouse=True)
def no_leftover_faults(stack):
    yield
    stack.runtime.faults.clear()
    stack.sandbox.faults.clear()


@pytest.fixture
def transaction_id():
    return f"wf-{uuid.uuid4().hex[:16]}"


def card_request(transaction_id, number="4111111111111111", amount="25.00", currency="USD", cvv="847"):
    return {
        "TransactionID": transaction_id,
        "Amount": amount,
        "Currency": currency,
        "ProcessorID": "elavon",
        "PaymentMethod": {
            "Type": "card",
            "Number": number,
            "ExpiryMonth": 12,
            "ExpiryYear": 2030,
            "Cvv": cvv,
            "HolderName": "Ada Lovelace",
        },
        "Description": "workflow test",
    }


def run_payment(info, request):
    arn = operations.start_payment(info, request)
    return operations.wait_for_execution(info, arn, timeout_seconds=60)
