"""The error contract: Step Functions matches errors by their exact class name, never by inheritance.

Every error a step may raise on purpose is stated here once, with how the payment workflow treats
it; the test holds the ASL's Retry lists and the ledger's failure reasons to that table. A new
error class (a subclass of ProcessorTimeout, say) fails the test until someone decides its row:
otherwise it would silently go unretried, or be recorded as SYSTEM_ERROR.
"""

import inspect

import pytest

from payments import audit, errors, ledger, recording
from statemachine import payment

CALL_PROCESSOR = payment.definition()["States"]["CallProcessor"]
STANDARD_TASKS = [
    name
    for name, state in payment.definition()["States"].items()
    if state["Type"] == "Task" and state["Resource"].endswith("lambda:invoke")
]

# error name: (how CallProcessor treats it, how every Lambda task treats it, the ledger's reason code)
CONTRACT = {
    "InvalidPaymentRequest": ("caught", "caught", None),  # Tokenize's own Catch; the intake's function error
    "StorageUnavailable": ("retried", "retried", "STORAGE_UNAVAILABLE"),
    "KeyServiceUnavailable": ("retried", "retried", "KEY_SERVICE_UNAVAILABLE"),
    "LedgerConflict": ("caught", "caught", "LEDGER_CONFLICT"),
    "EntryAlreadyExists": ("caught", "caught", "LEDGER_CONFLICT"),
    "AuditConflict": ("caught", "caught", None),  # only the Audit step raises it; its Catch goes on
    "WorkflowStateInvalid": ("never", "caught", None),
    "ProcessorError": (None, None, None),  # abstract: never raised itself
    "ProcessorUnavailable": ("retried", "caught", "PROCESSOR_UNAVAILABLE"),
    "ProcessorTimeout": ("retried", "caught", "PROCESSOR_OUTCOME_UNKNOWN"),
    "ProcessorRejected": ("never", "caught", "PROCESSOR_REJECTED"),
    "CardNotVaulted": ("never", "caught", "CARD_NOT_IN_VAULT"),
    "ChargeRefused": ("never", "caught", "CHARGE_REFUSED"),
    "DuplicateTransactionID": (None, None, None),  # the intake's function error; no state sees it
    "PaymentError": (None, None, None),  # the base class
}


def raised_error_classes():
    found = {}
    for module in (errors, ledger, audit):
        for name, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, errors.PaymentError):
                found[name] = value
    return found


def treatment(state, name):
    for retrier in state.get("Retry", []):
        if name in retrier["ErrorEquals"]:
            return "never" if retrier["MaxAttempts"] == 0 else "retried"
    return "caught"


def test_every_error_class_has_a_row_in_the_contract():
    assert set(raised_error_classes()) == set(CONTRACT)


@pytest.mark.parametrize("name", sorted(n for n, row in CONTRACT.items() if row[0] is not None))
def test_call_processor_treats_each_error_as_the_contract_says(name):
    assert treatment(CALL_PROCESSOR, name) == CONTRACT[name][0]


@pytest.mark.parametrize("name", sorted(n for n, row in CONTRACT.items() if row[1] is not None))
def test_every_other_lambda_task_treats_each_error_as_the_contract_says(name):
    for task in STANDARD_TASKS:
        if task != "CallProcessor":
            assert treatment(payment.definition()["States"][task], name) == CONTRACT[name][1], task


@pytest.mark.parametrize("name", sorted(n for n, row in CONTRACT.items() if row[2] is not None))
def test_the_ledger_records_each_error_under_its_own_reason(name):
    assert recording.FAILURE_REASONS[name] == CONTRACT[name][2]
