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
from botocore.exceptions import ClientError

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
        "kms_key_arn",
        "converge_url",
        "converge_credentials",
    }
    assert set(server["info"]["converge_credentials"]) == {"ssl_merchant_id", "ssl_user_id", "ssl_pin"}
    assert server["info"]["converge_url"].endswith("/VirtualMerchantDemo/processxml.do")


def test_boto3_payment_end_to_end(server, monkeypatch):
    info = server["info"]
    sfn = client(info, "stepfunctions")
    transaction_id = EXAMPLE_INPUT["TransactionID"]

    # When an upstream service starts the payment, named after its TransactionID
    arn = sfn.start_execution(
        stateMachineArn=info["state_machine_arn"], name=transaction_id, input=json.dumps(EXAMPLE_INPUT)
    )["executionArn"]
    execution = wait(sfn, arn)

    # Then it succeeds with the API response
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
    dynamodb = client(info, "dynamodb")
    deserialize = TypeDeserializer().deserialize
    items = dynamodb.query(
        TableName=info["ledger_table"],
        KeyConditionExpression="TransactionID = :t",
        ExpressionAttributeValues={":t": {"S": transaction_id}},
    )["Items"]
    entries = [{k: deserialize(v) for k, v in item.items()} for item in items]
    assert [(int(e["EntryNumber"]), e["Status"]) for e in entries] == [
        (1, "PAYMENT-INITIATED"),
        (2, "PAYMENT-PENDING"),
        (3, "PAYMENT-SUCCESS"),
    ]
    for entry in entries:
        assert {"TransactionID", "SecureToken", "Amount", "ProcessorID", "Status"} <= entry.keys()

    # And the audit record's EncryptedQuery decrypts, with the key from the ready file and the
    # same encryption context, to the Converge request with the PAN masked and no CVV
    [record] = dynamodb.query(
        TableName=info["audit_table"],
        KeyConditionExpression="TransactionID = :t",
        ExpressionAttributeValues={":t": {"S": transaction_id}},
    )["Items"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", info["endpoint_url"])
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "any")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "any")
    masker = DataMasking(provider=AWSEncryptionSDKProvider(keys=[info["kms_key_arn"]]))
    query = masker.decrypt(record["EncryptedQuery"]["S"], transaction_id=transaction_id, purpose="audit")
    assert query["ssl_card_number"] == "41**********1111"
    assert query["ssl_merchant_txn_id"] == transaction_id
    assert "ssl_cvv2cvc2" not in query and "ssl_pin" not in query

    # And starting the same TransactionID again is refused and charges nothing
    with pytest.raises(ClientError) as refused:
        sfn.start_execution(
            stateMachineArn=info["state_machine_arn"], name=transaction_id, input=json.dumps(EXAMPLE_INPUT)
        )
    assert refused.value.response["Error"]["Code"] == "ExecutionAlreadyExists"
    assert len(sandbox_charges(info, transaction_id)) == 1


def test_invalid_input_fails_with_the_field_and_no_ledger_write(server):
    info = server["info"]
    sfn = client(info, "stepfunctions")
    request = {**EXAMPLE_INPUT, "TransactionID": "order-bad-amount", "Amount": 25.0}
    arn = sfn.start_execution(
        stateMachineArn=info["state_machine_arn"], name="order-bad-amount", input=json.dumps(request)
    )["executionArn"]

    execution = wait(sfn, arn)

    assert execution["error"] == "InvalidPaymentRequest"
    assert json.loads(execution["cause"])["Field"] == "Amount"
    assert (
        client(info, "dynamodb").query(
            TableName=info["ledger_table"],
            KeyConditionExpression="TransactionID = :t",
            ExpressionAttributeValues={":t": {"S": "order-bad-amount"}},
        )["Count"]
        == 0
    )
    assert sandbox_charges(info, "order-bad-amount") == []


def test_stops_cleanly_and_never_logged_card_data(server):
    # Runs last in this module: by now the server has handled every payment above.
    process = server["process"]
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    output = server["output"].read_text()
    assert "[PaymentTokenize]" in output  # the functions' logs are in what we scan
    assert card_data_in(output) == []
