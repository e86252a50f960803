"""The whole workflow on the local stack: statemachine/payment.asl.json run by moto, real handlers."""

import json

import pytest
from aws_lambda_powertools.utilities.data_masking import DataMasking
from aws_lambda_powertools.utilities.data_masking.provider.kms.aws_encryption_sdk import AWSEncryptionSDKProvider

from local import operations
from local.card_scan import stack_credentials
from local.payment_requests import DECLINING, VISA, token_request
from payments.fingerprints import request_fingerprint
from payments.intake import parse_payment_request
from payments.vault import CardVault, VaultedCard
from tests.workflow.conftest import card_request, run_payment
from upstream import client
from upstream.client import InvalidPaymentRequest

CONTRACT_FIELDS = {"TransactionID", "SecureToken", "Amount", "ProcessorID", "Status"}


def charges_for(info, transaction_id):
    return [c for c in operations.sandbox_charges(info) if c["ssl_merchant_txn_id"] == transaction_id]


def test_approved_payment_writes_three_ledger_entries_and_audits_its_one_sale(info, transaction_id):
    # Given a valid Visa payment
    # When it runs through the workflow
    execution = run_payment(info, card_request(transaction_id))

    # Then the execution succeeds with the API response
    assert execution["status"] == "SUCCEEDED"
    response = json.loads(execution["output"])
    charge = charges_for(info, transaction_id)
    assert len(charge) == 1 and charge[0]["ssl_result"] == "0"
    assert response == {
        "TransactionID": transaction_id,
        "Status": "PAYMENT-SUCCESS",
        "Amount": "25.00",
        "Currency": "USD",
        "ProcessorID": "elavon",
        "ProcessorTransactionID": charge[0]["ssl_txn_id"],
        "ApprovalCode": charge[0]["ssl_approval_code"],
        "Card": {"Brand": "VISA", "Last4": "1111"},
    }
    # And the ledger holds entries 1, 2, 3 with the contract fields, all from this execution
    entries = operations.ledger_entries(info, transaction_id)
    assert [(e["EntryNumber"], e["Status"]) for e in entries] == [
        (1, "PAYMENT-INITIATED"),
        (2, "PAYMENT-PENDING"),
        (3, "PAYMENT-SUCCESS"),
    ]
    for entry in entries:
        assert entry.keys() >= CONTRACT_FIELDS
        assert entry["ExecutionArn"] == execution["executionArn"]
        assert entry["Amount"] == "25.00" and entry["CardLast4"] == "1111"
    assert entries[2]["ProcessorTransactionID"] == charge[0]["ssl_txn_id"]
    # And two audit records: the sale attempt claimed before the sale left, and the one processor call
    records = operations.audit_records(info, transaction_id)
    assert [(r["Operation"], r["Outcome"], r["Actor"]) for r in records] == [
        ("ccsale", "APPROVED", "PaymentCallProcessor"),
        ("sale-attempt", "SENDING", "PaymentCallProcessor"),
    ]


def test_audit_payload_decrypts_to_the_masked_request_without_cvv(info, transaction_id, monkeypatch):
    # Given an approved payment
    run_payment(info, card_request(transaction_id, cvv="847"))
    record = operations.audit_records(info, transaction_id)[0]

    # When an auditor decrypts the stored query with the key and the same encryption context
    monkeypatch.setenv("AWS_ENDPOINT_URL", info.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    masker = DataMasking(provider=AWSEncryptionSDKProvider(keys=[info.audit_kms_key_arn]))
    query = masker.decrypt(record["EncryptedQuery"], transaction_id=transaction_id, purpose="audit")
    response = masker.decrypt(record["EncryptedResponse"], transaction_id=transaction_id, purpose="audit")

    # Then it is the Converge request with the PAN masked and no CVV or PIN
    assert query["ssl_transaction_type"] == "ccsale"
    assert query["ssl_merchant_txn_id"] == transaction_id
    assert query["ssl_card_number"] == "41**********1111"
    assert "ssl_cvv2cvc2" not in query and "ssl_pin" not in query
    assert response["ssl_result"] == "0"
    # And the ciphertext is bound to this payment: another TransactionID cannot open it
    with pytest.raises(Exception):  # noqa: B017 - Powertools raises its own context-mismatch error type
        masker.decrypt(record["EncryptedQuery"], transaction_id="another-payment", purpose="audit")


def test_decline_is_an_outcome_not_a_failure(info, transaction_id):
    execution = run_payment(info, card_request(transaction_id, number="4000000000000002"))

    assert execution["status"] == "SUCCEEDED"
    response = json.loads(execution["output"])
    assert response["Status"] == "PAYMENT-DECLINED"
    assert response["Decline"] == {"Code": "DO_NOT_HONOR", "Message": "DECLINED"}
    assert "ApprovalCode" not in response
    entries = operations.ledger_entries(info, transaction_id)
    assert [e["Status"] for e in entries] == ["PAYMENT-INITIATED", "PAYMENT-PENDING", "PAYMENT-DECLINED"]
    assert (entries[2]["ReasonCode"], entries[2]["ReasonMessage"]) == ("DO_NOT_HONOR", "DECLINED")
    assert [c["ssl_result"] for c in charges_for(info, transaction_id)] == ["1"]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda r: r["PaymentMethod"].update(Number="4111111111111112"), "PaymentMethod.Number"),
        (lambda r: r.update(Amount=25.0), "Amount"),
        (lambda r: r.update(Currency="KWD"), "Currency"),
        (lambda r: r["PaymentMethod"].update(ExpiryYear=2020), "PaymentMethod.ExpiryYear"),
        (lambda r: r.update(Unexpected="x"), "[unexpected field]"),
    ],
)
def test_invalid_request_is_refused_naming_the_field_and_writes_nothing(stack, info, transaction_id, mutate, field):
    request = card_request(transaction_id)
    mutate(request)
    calls_before = stack.runtime.invocations.count("PaymentCallProcessor")

    with pytest.raises(InvalidPaymentRequest) as refused:
        operations.start_payment(info, request)

    assert refused.value.transaction_id == transaction_id and refused.value.field == field and refused.value.reason
    assert operations.trace_payment(info, transaction_id).description is None
    assert operations.vault_item(info, transaction_id) is None
    assert operations.ledger_entries(info, transaction_id) == []
    assert charges_for(info, transaction_id) == []
    assert stack.runtime.invocations.count("PaymentCallProcessor") == calls_before


def test_transient_lambda_service_error_is_retried(stack, info, transaction_id):
    # Given the Lambda service fails the first CallProcessor invoke
    stack.runtime.faults.inject("PaymentCallProcessor", "service_error")

    execution = run_payment(info, card_request(transaction_id))

    # Then Step Functions retried it and the payment went through once
    assert execution["status"] == "SUCCEEDED"
    run = next(r for r in operations.trace_payment(info, transaction_id).runs if r.name == "CallProcessor")
    assert run.errors == ["Lambda.ServiceException"] and run.retries == 1
    assert len(charges_for(info, transaction_id)) == 1


def test_ledger_write_retried_after_it_already_succeeded_is_a_no_op(stack, info, transaction_id):
    # Given LedgerPending writes entry 2 but its response is lost, so Step Functions retries it
    stack.runtime.faults.inject("PaymentLedgerPending", "lose_response")

    execution = run_payment(info, card_request(transaction_id))

    # Then the retry finds its own entry and succeeds without writing another
    assert execution["status"] == "SUCCEEDED"
    run = next(r for r in operations.trace_payment(info, transaction_id).runs if r.name == "LedgerPending")
    assert run.retries == 1
    assert [e["Status"] for e in operations.ledger_entries(info, transaction_id)] == [
        "PAYMENT-INITIATED",
        "PAYMENT-PENDING",
        "PAYMENT-SUCCESS",
    ]


def test_terminal_write_retried_after_it_already_succeeded_keeps_one_terminal_entry(stack, info, transaction_id):
    stack.runtime.faults.inject("PaymentLedgerSuccess", "lose_response")

    execution = run_payment(info, card_request(transaction_id))

    assert execution["status"] == "SUCCEEDED"
    assert json.loads(execution["output"])["Status"] == "PAYMENT-SUCCESS"
    assert [e["EntryNumber"] for e in operations.ledger_entries(info, transaction_id)] == [1, 2, 3]


def test_the_same_request_after_it_finished_is_answered_with_its_execution_and_charges_nothing(info, transaction_id):
    request = card_request(transaction_id)
    first = run_payment(info, request)

    again = client.start_payment(info.client("lambda"), info.intake_function, request)

    assert again.already_started and again.execution_arn == first["executionArn"]
    assert operations.vault_item(info, transaction_id) is None  # nothing new was vaulted
    assert len(charges_for(info, transaction_id)) == 1
    assert len(operations.ledger_entries(info, transaction_id)) == 3


def test_transaction_id_must_be_the_execution_name(info, transaction_id):
    # A token payment may start without the intake; its TransactionID must still name the execution.
    request = token_request("7595301425001111", transaction_id)
    arn = info.client("stepfunctions").start_execution(
        stateMachineArn=info.state_machine_arn, name=f"{transaction_id}-other", input=json.dumps(request)
    )["executionArn"]

    execution = operations.wait_for_execution(info, arn)

    assert execution["error"] == "InvalidPaymentRequest"
    assert json.loads(execution["cause"])["Field"] == "TransactionID"
    assert operations.ledger_entries(info, transaction_id) == []


def test_a_card_tokenize_never_took_leaves_the_vault_when_the_payment_fails(stack, info, transaction_id):
    # Given the Lambda service failing every Tokenize attempt (one, then four retries)
    stack.runtime.faults.inject("PaymentTokenize", "service_error", times=5)

    execution = run_payment(info, card_request(transaction_id))

    # Then the payment fails before any ledger entry, and the state machine itself removed the card
    assert execution["status"] == "FAILED" and execution["error"] == "PaymentFailed"
    assert operations.ledger_entries(info, transaction_id) == []
    assert operations.vault_item(info, transaction_id) is None
    assert [r.name for r in operations.trace_payment(info, transaction_id).runs][-2:] == [
        "DiscardCard",
        "TokenizationFailed",
    ]


@pytest.mark.parametrize("carried", ["made up", "copied"])
def test_a_vaulted_card_serves_only_the_request_it_was_vaulted_for(stack, info, transaction_id, carried):
    # Given a card vaulted for a request of 25.00 whose intake has not started its execution yet
    request = card_request(transaction_id)
    fingerprint = request_fingerprint(parse_payment_request(request))
    vault = CardVault(info.card_vault_table, info.kms_key_arn, 900, client=info.client("dynamodb"))
    with stack_credentials(info):
        vault.deposit(transaction_id, VaultedCard(VISA, 12, 2031), "847", fingerprint=fingerprint)
    calls_before = stack.runtime.invocations.count("PaymentCallProcessor")

    # When someone allowed to start executions starts one on that card for 9999.00, with a made-up
    # fingerprint or the true request's copied
    forged = request | {
        "Amount": "9999.00",
        "PaymentMethod": {"Type": "vaulted_card", "VaultReference": transaction_id, "Brand": "VISA", "Last4": "1111"},
        "RequestFingerprint": fingerprint if carried == "copied" else "anything",
    }
    arn = info.client("stepfunctions").start_execution(
        stateMachineArn=info.state_machine_arn, name=transaction_id, input=json.dumps(forged)
    )["executionArn"]
    execution = operations.wait_for_execution(info, arn)

    # Then Tokenize, recomputing the fingerprint from what it was given, refuses it: nothing written
    assert execution["error"] == "InvalidPaymentRequest"
    assert json.loads(execution["cause"])["Field"] == "RequestFingerprint"
    assert operations.ledger_entries(info, transaction_id) == []
    assert charges_for(info, transaction_id) == []
    assert stack.runtime.invocations.count("PaymentCallProcessor") == calls_before


def test_call_processor_invoked_again_with_a_settled_payments_recorded_input_charges_nothing(info, transaction_id):
    # Given a settled payment, and CallProcessor's input as Step Functions recorded it
    execution = run_payment(info, card_request(transaction_id))
    scheduled = next(
        json.loads(e["taskScheduledEventDetails"]["parameters"])["Payload"]
        for e in operations.execution_history(info, execution["executionArn"])
        if e["type"] == "TaskScheduled" and "CallProcessor" in e["taskScheduledEventDetails"]["parameters"]
    )
    lambda_client = info.client("lambda")

    # When someone invokes the function directly with it, as recorded and with a larger amount
    for payload in (scheduled, scheduled | {"Payment": scheduled["Payment"] | {"Amount": "4999.00"}}):
        reply = lambda_client.invoke(FunctionName="PaymentCallProcessor", Payload=json.dumps(payload).encode())
        error = json.loads(reply["Payload"].read())

        # Then it refuses before any processor call
        assert reply.get("FunctionError") and error["errorType"] == "ChargeRefused"
    assert len(charges_for(info, transaction_id)) == 1


def test_each_ledger_entry_names_how_the_payment_was_started(info, transaction_id):
    # Given a card payment through the intake, and a token payment started directly (a token
    # Converge does not know: it ends PAYMENT-FAILED, with its entries written all the same)
    through_intake = run_payment(info, card_request(transaction_id))
    direct_id = f"{transaction_id}-direct"
    direct_arn = info.client("stepfunctions").start_execution(
        stateMachineArn=info.state_machine_arn,
        name=direct_id,
        input=json.dumps(token_request("7595301425001111", direct_id)),
    )["executionArn"]
    operations.wait_for_execution(info, direct_arn)

    # Then every entry of the first names the intake invocation that started it (CloudTrail's
    # Invoke event with that request id names the caller), and the second a direct StartExecution
    intake_request_id = json.loads(through_intake["input"])["IntakeRequestId"]
    assert intake_request_id
    assert {(e["StartedVia"], e["IntakeRequestId"]) for e in operations.ledger_entries(info, transaction_id)} == {
        ("intake", intake_request_id)
    }
    direct = operations.ledger_entries(info, direct_id)
    assert len(direct) == 3
    assert all(e["StartedVia"] == "StartExecution" and "IntakeRequestId" not in e for e in direct)


def test_a_manual_capture_payment_ends_authorized_holding_the_amount_without_charging_it(stack, info, transaction_id):
    # Given a card payment that asks to be authorized now and captured later
    execution = run_payment(info, card_request(transaction_id, capture="manual"))

    # Then it ends PAYMENT-AUTHORIZED with Converge's authorization as its ProcessorTransactionID
    assert execution["status"] == "SUCCEEDED"
    response = json.loads(execution["output"])
    [authorization] = [t for t in stack.sandbox.transactions() if t["ssl_merchant_txn_id"] == transaction_id]
    assert authorization["ssl_transaction_type"] == "AUTHONLY" and authorization["ssl_result"] == "0"
    assert response["Status"] == "PAYMENT-AUTHORIZED"
    assert response["ProcessorTransactionID"] == authorization["ssl_txn_id"]
    # And nothing is charged until a capture: the sandbox counts no approved charge
    assert not authorization["approved_charge"]
    entries = operations.ledger_entries(info, transaction_id)
    assert [(e["Status"], e["Capture"]) for e in entries] == [
        ("PAYMENT-INITIATED", "manual"),
        ("PAYMENT-PENDING", "manual"),
        ("PAYMENT-AUTHORIZED", "manual"),
    ]
    assert [r["Operation"] for r in operations.audit_records(info, transaction_id)] == ["ccauthonly", "sale-attempt"]


def test_a_declined_authorization_ends_declined(info, transaction_id):
    execution = run_payment(info, card_request(transaction_id, number=DECLINING, capture="manual"))

    assert json.loads(execution["output"])["Status"] == "PAYMENT-DECLINED"
