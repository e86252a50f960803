"""The intake against moto: the card goes to the vault, the execution starts with a reference, retries are answered."""

import json

import boto3
import pytest

from local.payment_requests import MASTERCARD, TEST_CVV, VISA, card_request, token_request
from payments import topology
from payments.card_intake import Intake
from payments.errors import DuplicateTransactionID, InvalidPaymentRequest
from payments.vault import CardVault, VaultedCard
from tests.adapters.conftest import REGION, items_of

VAULT = topology.CARD_VAULT_TABLE.name
REQUEST_ID = "8f2b1c9e-4d3a-4b7e-9c1f-2a6d5e8b7c40"  # the intake invocation's Lambda request id


@pytest.fixture
def intake(tables_with_vault):
    kms = boto3.client("kms", region_name=REGION)
    key_arn = kms.create_key()["KeyMetadata"]["Arn"]
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName="states", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    sfn = boto3.client("stepfunctions", region_name=REGION)
    definition = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})
    machine = sfn.create_state_machine(name="PaymentWorkflow", definition=definition, roleArn=role)["stateMachineArn"]
    vault = CardVault(VAULT, key_arn, ttl_seconds=900, client=tables_with_vault)
    return Intake(machine, vault, sfn)


def executions(intake):
    listed = intake.stepfunctions.list_executions(stateMachineArn=intake.state_machine_arn)["executions"]
    return [intake.stepfunctions.describe_execution(executionArn=e["executionArn"]) for e in listed]


def test_a_card_payment_starts_with_a_vault_reference_and_no_card_data(intake, tables_with_vault):
    answer = intake.accept(card_request("order-ab", description="two tickets"), REQUEST_ID)

    [execution] = executions(intake)
    assert answer == {"TransactionID": "order-ab", "ExecutionArn": execution["executionArn"], "AlreadyStarted": False}
    assert execution["name"] == "order-ab"
    started_with = json.loads(execution["input"])
    assert VISA not in execution["input"] and TEST_CVV not in execution["input"]
    assert started_with["PaymentMethod"] == {
        "Type": "vaulted_card",
        "VaultReference": "order-ab",
        "Brand": "VISA",
        "Last4": "1111",
    }
    assert started_with["Amount"] == "25.00" and started_with["Description"] == "two tickets"
    assert started_with["IntakeRequestId"] == REQUEST_ID
    assert started_with["RequestFingerprint"]
    [item] = items_of(tables_with_vault, VAULT, "order-ab")
    assert item["RequestFingerprint"]["S"] == started_with["RequestFingerprint"]
    assert intake.vault.card("order-ab").number == VISA and intake.vault.cvv("order-ab") == TEST_CVV


def test_the_same_request_again_is_answered_with_the_same_execution_and_writes_nothing(intake, tables_with_vault):
    first = intake.accept(card_request("order-ab"), REQUEST_ID)
    vaulted = items_of(tables_with_vault, VAULT, "order-ab")

    again = intake.accept(card_request("order-ab"), REQUEST_ID)

    assert again == first | {"AlreadyStarted": True}
    assert len(executions(intake)) == 1
    assert items_of(tables_with_vault, VAULT, "order-ab") == vaulted


def test_a_retry_after_the_payment_ended_writes_no_new_card(intake, tables_with_vault):
    intake.accept(card_request("order-ab"), REQUEST_ID)
    intake.vault.forget("order-ab")  # what the terminal ledger step does

    assert intake.accept(card_request("order-ab"), REQUEST_ID)["AlreadyStarted"]
    assert items_of(tables_with_vault, VAULT, "order-ab") == []


@pytest.mark.parametrize(
    "change",
    [
        {"Amount": "99.00"},
        {"PaymentMethod": {**card_request()["PaymentMethod"], "Number": MASTERCARD}},
        {"Description": "another order"},
    ],
    ids=["amount", "another-card", "description"],
)
def test_another_request_under_a_used_transaction_id_is_refused_and_changes_nothing(intake, tables_with_vault, change):
    intake.accept(card_request("order-ab"), REQUEST_ID)
    vaulted = items_of(tables_with_vault, VAULT, "order-ab")

    with pytest.raises(DuplicateTransactionID):
        intake.accept(card_request("order-ab") | change, REQUEST_ID)

    assert len(executions(intake)) == 1
    assert items_of(tables_with_vault, VAULT, "order-ab") == vaulted


def test_a_different_card_racing_for_a_vaulted_transaction_id_is_refused_before_any_start(intake, tables_with_vault):
    # Given a card vaulted for order-ab whose execution has not started yet (the first intake is mid-way)
    intake.vault.deposit("order-ab", VaultedCard("5500000000000004", 12, 2031), "123", "another")

    with pytest.raises(DuplicateTransactionID):
        intake.accept(card_request("order-ab"), REQUEST_ID)

    assert executions(intake) == []


def test_a_changed_cvv_is_the_same_payment(intake):
    intake.accept(card_request("order-ab", cvv="123"), REQUEST_ID)

    assert intake.accept(card_request("order-ab", cvv="456"), REQUEST_ID)["AlreadyStarted"]


@pytest.mark.parametrize(
    "guess", ["4012888888801111", "4000056655631111", "4111111111111111"], ids=["guess-1", "guess-2", "right"]
)
def test_the_intake_answers_every_guess_of_the_hidden_digits_alike(intake, guess):
    # Given a payment whose brand, last four and amount anyone allowed to describe it can read
    intake.accept(card_request("order-ab"), REQUEST_ID)

    # When someone tries cards with the same brand and last four under its TransactionID
    answer = intake.accept(
        card_request("order-ab") | {"PaymentMethod": card_request(number=guess)["PaymentMethod"]}, REQUEST_ID
    )

    # Then every guess gets the same answer: the first execution, nothing new written or charged
    assert answer["AlreadyStarted"]
    assert len(executions(intake)) == 1


def test_a_token_payment_starts_without_touching_the_vault(intake, tables_with_vault):
    intake.accept(token_request("7595301425001111", "order-tk"), REQUEST_ID)

    [execution] = executions(intake)
    assert json.loads(execution["input"])["PaymentMethod"] == {"Type": "processor_token", "Token": "7595301425001111"}
    assert items_of(tables_with_vault, VAULT, "order-tk") == []


def test_an_invalid_request_writes_nothing_and_starts_nothing(intake, tables_with_vault):
    with pytest.raises(InvalidPaymentRequest) as rejected:
        intake.accept(card_request("order-ab", amount=25.0), REQUEST_ID)

    assert rejected.value.field == "Amount"
    assert executions(intake) == []
    assert items_of(tables_with_vault, VAULT, "order-ab") == []
