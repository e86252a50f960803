"""`python -m local serve` as a subprocess, driven with boto3 only, as an upstream service would."""

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import pytest
from aws_lambda_powertools.utilities.data_masking import DataMasking
from aws_lambda_powertools.utilities.data_masking.provider.kms.aws_encryption_sdk import AWSEncryptionSDKProvider
from boto3.dynamodb.types import TypeDeserializer

from local.payment_requests import card_request
from tests.card_data import TEST_CVV, card_data_in

REPO = Path(__file__).resolve().parents[2]
# The documented example request, with an expiry that is always in the future.
EXAMPLE_INPUT = card_request("order-8812-1", cvv=TEST_CVV, description="optional, at most 255 characters")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    ready_file = tmp_path_factory.mktemp("serve") / "ready.json"
    output = tmp_path_factory.mktemp("serve") / "output.log"
    with output.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "local", "serve", "--port", "0", "--ready-file", str(ready_file)],
            cwd=REPO,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while not ready_file.exists() or not ready_file.read_text():
            assert process.poll() is None, output.read_text()
            assert time.monotonic() < deadline, "serve did not become ready in 60 s"
            time.sleep(0.05)
        info = json.loads(ready_file.read_text())
        yield {"info": info, "process": process, "output": output}
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


def client(info, service):
    return boto3.client(
        service,
        endpoint_url=info["endpoint_url"],
        region_name=info["region"],
        aws_access_key_id="any",
        aws_secret_access_key="any",
    )


def wait(sfn, arn):
    deadline = time.monotonic() + 60
    while (description := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "execution did not finish in 60 s"
        time.sleep(0.05)
    return description


def sandbox_charges(info, transaction_id):
    url = info["converge_url"].replace("/VirtualMerchantDemo/processxml.do", "/_sandbox/transactions")
    with urllib.request.urlopen(url, timeout=5) as reply:
        return [t for t in json.loads(reply.read()) if t["ssl_merchant_txn_id"] == transaction_id]


def test_ready_file_has_exactly_the_documented_keys(server):
    assert set(server["info"]) == {
        "endpoint_url",
        "region",
        "state_machine_arn",
        "ledger_table",
        "audit_table",
        "card_vault_table",
        "intake_function",
        "kms_key_arn",
        "audit_kms_key_arn",
        "converge_url",
        "converge_credentials",
    }
    assert set(server["info"]["converge_credentials"]) == {"ssl_merchant_id", "ssl_user_id", "ssl_pin"}
    assert server["info"]["converge_url"].endswith("/VirtualMerchantDemo/processxml.do")


def invoke_intake(info, request):
    reply = client(info, "lambda").invoke(FunctionName=info["intake_function"], Payload=json.dumps(request).encode())
    return reply.get("FunctionError"), json.loads(reply["Payload"].read())


def items(info, table, transaction_id):
    deserialize = TypeDeserializer().deserialize
    found = client(info, "dynamodb").query(
        TableName=table,
        KeyConditionExpression="TransactionID = :t",
        ExpressionAttributeValues={":t": {"S": transaction_id}},
        ConsistentRead=True,
    )["Items"]
    return [{k: deserialize(v) for k, v in item.items()} for item in found]


def history(sfn, arn):
    events, kwargs = [], {"executionArn": arn}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events += page["events"]
        if "nextToken" not in page:
            return events
        kwargs["nextToken"] = page["nextToken"]


def test_boto3_payment_end_to_end(server, monkeypatch):
    info = server["info"]
    sfn = client(info, "stepfunctions")
    transaction_id = EXAMPLE_INPUT["TransactionID"]

    # When an upstream service invokes the intake with the card request
    error, answer = invoke_intake(info, EXAMPLE_INPUT)
    assert error is None, answer
    assert answer["TransactionID"] == transaction_id and answer["ExecutionArn"].endswith(f":{transaction_id}")
    execution = wait(sfn, answer["ExecutionArn"])

    # Then the execution it started succeeds with the API response
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    response = json.loads(execution["output"])
    [charge] = sandbox_charges(info, transaction_id)
    assert response == {
        "TransactionID": transaction_id,
        "Status": "PAYMENT-SUCCESS",
        "Amount": "25.00",
        "Currency": "USD",
        "ProcessorID": "elavon",
        "ProcessorTransactionID": charge["ssl_txn_id"],
        "ApprovalCode": charge["ssl_approval_code"],
        "Card": {"Brand": "VISA", "Last4": "1111"},
    }

    # And the ledger holds entries 1, 2, 3 with the contract fields
    entries = items(info, info["ledger_table"], transaction_id)
    assert [(int(e["EntryNumber"]), e["Status"]) for e in entries] == [
        (1, "PAYMENT-INITIATED"),
        (2, "PAYMENT-PENDING"),
        (3, "PAYMENT-SUCCESS"),
    ]
    for entry in entries:
        assert {"TransactionID", "SecureToken", "Amount", "ProcessorID", "Status"} <= entry.keys()

    # And no PAN and no CVV anywhere: execution, history, both tables, the vault (emptied)
    assert card_data_in(json.dumps(sfn.describe_execution(executionArn=answer["ExecutionArn"]), default=str)) == []
    assert card_data_in(json.dumps(history(sfn, answer["ExecutionArn"]), default=str)) == []
    for table in (info["ledger_table"], info["audit_table"]):
        assert card_data_in(json.dumps(items(info, table, transaction_id), default=str)) == []
    assert items(info, info["card_vault_table"], transaction_id) == []

    # And the audit record's EncryptedQuery decrypts, with the key from the ready file and the
    # same encryption context, to the Converge request with the PAN masked and no CVV
    [record, claim] = items(info, info["audit_table"], transaction_id)
    assert (record["Operation"], claim["Operation"]) == ("ccsale", "sale-attempt")
    monkeypatch.setenv("AWS_ENDPOINT_URL", info["endpoint_url"])
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "any")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "any")
    masker = DataMasking(provider=AWSEncryptionSDKProvider(keys=[info["audit_kms_key_arn"]]))
    query = masker.decrypt(record["EncryptedQuery"], transaction_id=transaction_id, purpose="audit")
    assert query["ssl_card_number"] == "41**********1111"
    assert query["ssl_merchant_txn_id"] == transaction_id
    assert "ssl_cvv2cvc2" not in query and "ssl_pin" not in query

    # And the same request again is answered with the same execution, and charges nothing
    error, again = invoke_intake(info, EXAMPLE_INPUT)
    assert error is None and again["ExecutionArn"] == answer["ExecutionArn"] and again["AlreadyStarted"]
    assert len(sandbox_charges(info, transaction_id)) == 1


def test_invalid_input_is_refused_by_the_intake_with_the_field_and_nothing_written(server):
    info = server["info"]
    request = {**EXAMPLE_INPUT, "TransactionID": "order-bad-amount", "Amount": 25.0}

    error, refusal = invoke_intake(info, request)

    assert error and refusal["errorType"] == "InvalidPaymentRequest"
    assert json.loads(refusal["errorMessage"])["Field"] == "Amount"
    assert items(info, info["ledger_table"], "order-bad-amount") == []
    assert items(info, info["card_vault_table"], "order-bad-amount") == []
    assert sandbox_charges(info, "order-bad-amount") == []


def test_a_card_sent_straight_to_start_execution_fails_naming_the_payment_method(server):
    info = server["info"]
    sfn = client(info, "stepfunctions")
    request = {**EXAMPLE_INPUT, "TransactionID": "order-direct-card"}
    arn = sfn.start_execution(
        stateMachineArn=info["state_machine_arn"], name="order-direct-card", input=json.dumps(request)
    )["executionArn"]

    execution = wait(sfn, arn)

    assert execution["status"] == "FAILED" and execution["error"] == "InvalidPaymentRequest"
    assert json.loads(execution["cause"])["Field"] == "PaymentMethod"
    assert items(info, info["ledger_table"], "order-direct-card") == []
    assert sandbox_charges(info, "order-direct-card") == []


def test_stops_cleanly_and_never_logged_card_data(server):
    # Runs last in this module: by now the server has handled every payment above.
    process = server["process"]
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    output = server["output"].read_text()
    assert "[PaymentIntake]" in output and "[PaymentTokenize]" in output  # the functions' logs are scanned
    assert card_data_in(output) == []
