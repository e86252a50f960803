"""The terminal entry records what happened to the money, whatever step failed on the way."""

import pytest

from payments import ledger, topology
from payments.ledger import LedgerRepository
from payments.recording import record_progress, record_unsuccessful
from payments.state import PaymentFacts, WorkflowState
from tests.adapters.conftest import items_of

EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:PaymentWorkflow:order-ab"
PAYMENT = PaymentFacts(
    TransactionID="order-ab",
    Amount="25.00",
    Currency="USD",
    ProcessorID="elavon",
    PaymentMethodType="card",
    SecureToken="AYADeJ",
)
APPROVED = {"ssl_result": "0", "ssl_result_message": "APPROVAL", "ssl_txn_id": "T-1", "ssl_approval_code": "A1"}


@pytest.fixture
def repository(dynamodb):
    repository = LedgerRepository(topology.LEDGER_TABLE.name, client=dynamodb)
    record_progress(repository, PAYMENT, ledger.INITIATED, EXECUTION)
    record_progress(repository, PAYMENT, ledger.PENDING, EXECUTION)
    return repository


def terminal(dynamodb):
    entries = items_of(dynamodb, topology.LEDGER_TABLE.name, "order-ab")
    return {k: v.get("S") for k, v in max(entries, key=lambda e: int(e["EntryNumber"]["N"])).items()}


def test_an_approval_the_workflow_lost_on_the_way_is_still_recorded_as_success(repository, dynamodb):
    # Given CallProcessor's approved result in the state, and a failure before Normalize
    state = WorkflowState(
        Payment=PAYMENT, Ledger={"LastEntry": 2}, Processor={"Result": APPROVED}, Failure={"Error": "States.Timeout"}
    )

    response = record_unsuccessful(repository, state, ledger.FAILED, EXECUTION)

    assert response["Status"] == ledger.SUCCESS
    assert terminal(dynamodb)["Status"] == ledger.SUCCESS and terminal(dynamodb)["ProcessorTransactionID"] == "T-1"


def test_a_decline_is_recorded_as_a_decline_never_as_a_success(repository, dynamodb):
    declined = {"Status": "DECLINED", "ReasonCode": "DO_NOT_HONOR", "ReasonMessage": "DECLINED"}
    state = WorkflowState(Payment=PAYMENT, Ledger={"LastEntry": 2}, Outcome=declined)

    response = record_unsuccessful(repository, state, ledger.DECLINED, EXECUTION)

    assert response["Status"] == ledger.DECLINED
    assert terminal(dynamodb)["Status"] == ledger.DECLINED


def test_a_failure_while_charging_is_an_unknown_outcome(repository, dynamodb):
    state = WorkflowState(Payment=PAYMENT, Ledger={"LastEntry": 2}, Failure={"Error": "Lambda.Unknown"})

    record_unsuccessful(repository, state, ledger.FAILED, EXECUTION)

    assert terminal(dynamodb)["ReasonCode"] == "PROCESSOR_OUTCOME_UNKNOWN"


def test_a_card_gone_from_the_vault_is_no_unknown_outcome(repository, dynamodb):
    state = WorkflowState(Payment=PAYMENT, Ledger={"LastEntry": 2}, Failure={"Error": "CardNotVaulted"})

    record_unsuccessful(repository, state, ledger.FAILED, EXECUTION)

    assert terminal(dynamodb)["ReasonCode"] == "CARD_NOT_IN_VAULT"
