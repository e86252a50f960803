"""`python -m local serve` as a subprocess, driven with boto3 only, as an upstream service would."""

import json
import re
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
        "capture_state_machine_arn",
        "void_state_machine_arn",
        "refund_state_machine_arn",
        "ledger_table",
        "audit_table",
        "card_vault_table",
        "intake_function",
        "event_bus_name",
        "events_queue_url",
        "kms_key_arn",
        "audit_kms_key_arn",
        "converge_url",
        "converge_credentials",
        "status_sync_state_machine_arn",
        "reconciliation_state_machine_arn",
        "report_bucket",
        "console_url",
    }
    assert server["info"]["console_url"] == server["info"]["endpoint_url"] + "/console"
    assert set(server["info"]["converge_credentials"]) == {"ssl_merchant_id", "ssl_user_id", "ssl_pin"}
    assert server["info"]["converge_url"].endswith("/VirtualMerchantDemo/processxml.do")
    # Capture, void and refund run on one state machine; the ready file names it under each.
    operations = {server["info"][f"{kind}_state_machine_arn"] for kind in ("capture", "void", "refund")}
    assert len(operations) == 1 and operations != {server["info"]["state_machine_arn"]}
    # The payments bus, and the queue its rule delivers every ledger event to, as a subscriber would use them
    info = server["info"]
    assert info["event_bus_name"] == "payments"
    assert client(info, "events").describe_event_bus(Name=info["event_bus_name"])["Name"] == "payments"
    queue = client(info, "sqs").get_queue_attributes(QueueUrl=info["events_queue_url"], AttributeNames=["QueueArn"])
    events = client(info, "events")
    targets = {
        rule["Name"]: [
            t["Arn"] for t in events.list_targets_by_rule(Rule=rule["Name"], EventBusName="payments")["Targets"]
        ]
        for rule in events.list_rules(EventBusName=info["event_bus_name"])["Rules"]
    }
    # Two subscribers: the queue the ready file names, and the console's event history (a log group)
    assert sorted(targets) == ["ledger-events-to-log", "ledger-events-to-queue"]
    assert targets["ledger-events-to-queue"] == [queue["Attributes"]["QueueArn"]]
    assert targets["ledger-events-to-log"][0].endswith(":log-group:/payments/local/ledger-events")


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


def run_cli(server, *args):
    """`python -m local <args> --endpoint <the served stack>`, as an operator types it."""
    done = subprocess.run(
        [sys.executable, "-m", "local", *args, "--endpoint", server["info"]["endpoint_url"]],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert not done.stderr.strip() or done.returncode, done.stderr
    return done.returncode, done.stdout


def cli_in_process(capsys, server, *args):
    """The same command line, run in this process (a second or two less than a subprocess each)."""
    from local import cli

    capsys.readouterr()
    status = cli.main([*args, "--endpoint", server["info"]["endpoint_url"]])
    return status, capsys.readouterr().out


def response_in(output):
    """The operation's response, printed as indented JSON before the trace."""
    lines = output.splitlines()
    start = lines.index("{")
    return json.loads("\n".join(lines[start : lines.index("}", start) + 1]))


def paid(info, transaction_id, amount, capture=None):
    error, answer = invoke_intake(info, card_request(transaction_id, amount=amount, capture=capture))
    assert error is None, answer
    execution = wait(client(info, "stepfunctions"), answer["ExecutionArn"])
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    return json.loads(execution["output"])


def ledger_statuses(info, transaction_id):
    entries = sorted(items(info, info["ledger_table"], transaction_id), key=lambda e: int(e["EntryNumber"]))
    return [(e["Status"], e.get("OperationID")) for e in entries]


def test_capture_void_refund_and_settle_from_the_command_line(server, capsys):
    info = server["info"]
    authorization = paid(info, "cli-auth", "80.00", capture="manual")
    paid(info, "cli-sale", "40.00")
    paid(info, "cli-refunded", "100.00")

    # capture: part of an authorization, under the OperationID given
    status, output = run_cli(server, "capture", "cli-auth", "--amount", "50.00", "--operation-id", "cli-auth-c")
    assert status == 0, output
    assert response_in(output) | {"ProcessorTransactionID": "", "ApprovalCode": ""} == {
        "TransactionID": "cli-auth",
        "OperationID": "cli-auth-c",
        "Operation": "capture",
        "Status": "CAPTURE-SUCCESS",
        "Amount": "50.00",
        "Currency": "USD",
        "ProcessorID": "elavon",
        "ProcessorTransactionID": "",
        "ApprovalCode": "",
    }
    [completed] = [c for c in sandbox_charges(info, "cli-auth") if c["completion_merchant_txn_id"] == "cli-auth-c"]
    assert completed["ssl_txn_id"] == authorization["ProcessorTransactionID"]
    assert completed["completed_amount"] == "50.00"
    assert ledger_statuses(info, "cli-auth")[3:] == [
        ("CAPTURE-INITIATED", "cli-auth-c"),
        ("CAPTURE-PENDING", "cli-auth-c"),
        ("CAPTURE-SUCCESS", "cli-auth-c"),
    ]
    assert "Operation cli-auth-c (capture 50.00): execution SUCCEEDED, CAPTURE-SUCCESS" in output

    # void: with no --operation-id, a fresh one that no card-number check could mistake
    status, output = cli_in_process(capsys, server, "void", "cli-sale")
    assert status == 0, output
    voided = response_in(output)
    assert voided["Status"] == "VOID-SUCCESS" and voided["Amount"] == "40.00"
    assert re.fullmatch(r"void-[a-z]{16}", voided["OperationID"])
    [sale] = sandbox_charges(info, "cli-sale")
    assert sale["voided"]

    # refund: refused until the sandbox's batch settles, then taken in part
    status, output = cli_in_process(
        capsys, server, "refund", "cli-refunded", "--amount", "30.00", "--operation-id", "cli-r-early"
    )
    assert status == 1 and response_in(output)["Decline"]["Code"] == "NOT_SETTLED"
    status, output = cli_in_process(capsys, server, "settle")
    assert status == 0 and "settled" in output
    status, output = cli_in_process(
        capsys,
        server,
        "refund",
        "cli-refunded",
        "--amount",
        "30.00",
        "--operation-id",
        "cli-r1",
        "--reason",
        "a return",
    )
    assert status == 0, output
    assert response_in(output)["Status"] == "REFUND-SUCCESS"
    # The same OperationID for another request starts nothing, and says so.
    status, output = cli_in_process(
        capsys, server, "refund", "cli-refunded", "--amount", "31.00", "--operation-id", "cli-r1"
    )
    assert status == 1 and "already used for a different operation" in output
    # NOT_SETTLED is learnt from the processor: the early refund was admitted and pending, then declined.
    assert ledger_statuses(info, "cli-refunded")[3:] == [
        ("REFUND-INITIATED", "cli-r-early"),
        ("REFUND-PENDING", "cli-r-early"),
        ("REFUND-DECLINED", "cli-r-early"),
        ("REFUND-INITIATED", "cli-r1"),
        ("REFUND-PENDING", "cli-r1"),
        ("REFUND-SUCCESS", "cli-r1"),
    ]
    assert [c["ssl_amount"] for c in sandbox_charges(info, "cli-r1")] == ["30.00"]  # the RETURN, filed under it


def test_an_operation_id_or_transaction_id_holding_a_card_number_is_refused_before_anything_starts(capsys):
    from local import cli

    card = "4111111111111111"
    for args in (["void", f"op{card}"], ["void", "cli-sale", "--operation-id", f"op-{card}"]):
        with pytest.raises(SystemExit) as exit_:
            cli.main([*args, "--endpoint", "http://127.0.0.1:9"])  # refused before any call to it
        printed = capsys.readouterr()
        assert exit_.value.code == 2 and "must not contain a card number" in printed.err
        assert card_data_in(printed.out + printed.err, cvvs=()) == []


def test_trace_shows_the_payment_then_each_operation_the_ledger_and_every_audit_trail(server):
    # cli-refunded: the payment the command-line test above refunded (refused NOT_SETTLED, then taken).
    status, output = run_cli(server, "trace", "cli-refunded")

    assert status == 0, output
    sections = output.split("\n\n")
    assert sections[0].startswith("Execution cli-refunded: SUCCEEDED") and "CallProcessor" in sections[0]
    assert sections[1].startswith("Operation cli-r-early (refund 30.00): execution SUCCEEDED, REFUND-DECLINED")
    assert sections[2].startswith("Operation cli-r1 (refund 30.00): execution SUCCEEDED, REFUND-SUCCESS")
    assert "CallOperationProcessor" in sections[2] and "OperationSuccess" in sections[2]
    ledger = next(section for section in sections if section.startswith("Ledger ("))
    assert ledger.splitlines()[0] == (
        "Ledger (PAYMENT-INITIATED → PAYMENT-PENDING → PAYMENT-SUCCESS → REFUND-DECLINED → REFUND-SUCCESS)"
    )
    assert "OperationID" in ledger.splitlines()[1]
    rows = [line.split() for line in ledger.splitlines()[3:]]
    assert [(row[0], row[1]) for row in rows] == [
        ("1", "PAYMENT-INITIATED"),
        ("2", "PAYMENT-PENDING"),
        ("3", "PAYMENT-SUCCESS"),
        ("4", "REFUND-INITIATED"),
        ("5", "REFUND-PENDING"),
        ("6", "REFUND-DECLINED"),
        ("7", "REFUND-INITIATED"),
        ("8", "REFUND-PENDING"),
        ("9", "REFUND-SUCCESS"),
    ]
    assert all("cli-r1" in row for row in rows[6:]) and "NOT_SETTLED:" in ledger
    audit = [line.split() for line in sections[-1].splitlines()[3:]]
    trails = {(row[0], row[2]) for row in audit}
    assert {("payment", "ccsale"), ("cli-r-early", "txnquery"), ("cli-r1", "ccreturn")} <= trails
    assert card_data_in(output, cvvs=()) == []


def test_demo_against_the_served_stack_runs_the_operations_too(server, capsys):
    status, output = cli_in_process(capsys, server, "demo")

    assert status == 0, output
    [operations] = [section for section in output.split("\n\n") if section.startswith("Operations\n")]
    rows = operations.splitlines()[3:]
    finals = [re.split(r"\s{2,}", row.strip()) for row in rows]
    # operation, final Status, and the follow-ons the sandbox holds under the OperationID
    assert [(row[3], row[6], row[8]) for row in finals if len(row) > 8 and row[3] in ("capture", "void", "refund")] == [
        ("capture", "CAPTURE-SUCCESS", "1"),
        ("void", "VOID-SUCCESS", "1"),
        ("refund", "REFUND-SUCCESS", "1"),
        ("refund", "REFUND-SUCCESS", "1"),
        ("refund", "REFUND-DECLINED (EXCEEDS_REFUNDABLE)", "0"),
    ]
    assert "settle the sandbox's batch" in operations
    assert re.search(
        r"demo-\w+-9  PAYMENT-INITIATED → PAYMENT-PENDING → PAYMENT-SUCCESS → REFUND-SUCCESS → "
        r"REFUND-SUCCESS → REFUND-DECLINED",
        output,
    )


def test_events_prints_one_line_per_terminal_entry_and_takes_them_off_the_queue(server, capsys):
    info = server["info"]
    paid(info, "cli-events", "12.00", capture="manual")
    status, output = cli_in_process(capsys, server, "capture", "cli-events", "--operation-id", "cli-events-c")
    assert status == 0, output

    # Every entry written so far is delivered before it reads: no waiting and hoping
    status, output = cli_in_process(capsys, server, "events")

    assert status == 0, output
    lines = [line for line in output.splitlines() if "cli-events#" in line]
    assert [line.split()[1:4] for line in lines] == [
        ["PaymentAuthorized", "cli-events#3", "PAYMENT-AUTHORIZED"],
        ["PaymentCaptured", "cli-events#6", "CAPTURE-SUCCESS"],
    ]
    assert "12.00 USD" in lines[0] and "capture cli-events-c" in lines[1] and "card VISA 1111" in lines[1]
    assert card_data_in(output, cvvs=()) == []
    # What it printed was taken off the queue
    status, output = cli_in_process(capsys, server, "events")
    assert status == 0 and "cli-events#" not in output


def test_stops_cleanly_and_never_logged_card_data(server):
    # Runs last in this module: by now the server has handled every payment above.
    process = server["process"]
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    output = server["output"].read_text()
    assert "[PaymentIntake]" in output and "[PaymentTokenize]" in output  # the functions' logs are scanned
    assert f"operations    : {server['info']['capture_state_machine_arn']} (capture, void, refund)" in output
    assert f"python -m local events [--follow] --endpoint {server['info']['endpoint_url']}" in output
    assert "[PaymentLedgerEvents]" in output  # the stream pump delivered the ledger to it
    assert card_data_in(output) == []
