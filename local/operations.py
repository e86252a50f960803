"""What the command line does with a stack: start payments and operations, wait for them, trace them.

Everything here goes through boto3 against the stack's endpoint, exactly as an upstream
service or an operator would against AWS.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from local.stack import CONSOLE_PATH, CREDENTIALS, EVENTS_QUEUE, EXECUTION_ENDED_PATH, REGION, StackInfo, ask_stack
from payments import topology
from payments.operations import parse_status
from upstream import client
from upstream.client import TERMINAL, execution_arn_for

_deserializer = TypeDeserializer()


def discover(endpoint_url: str, region: str = REGION) -> StackInfo:
    """The StackInfo of a running `serve`, found from its endpoint alone."""
    import boto3

    sfn = boto3.client("stepfunctions", endpoint_url=endpoint_url, region_name=region, **CREDENTIALS)
    machines = sfn.list_state_machines()["stateMachines"]
    arn = next(m["stateMachineArn"] for m in machines if m["name"] == topology.STATE_MACHINE_NAME)
    operations_arn = next(m["stateMachineArn"] for m in machines if m["name"] == topology.OPERATION_WORKFLOW.name)
    sync_arn = next(m["stateMachineArn"] for m in machines if m["name"] == topology.STATUS_SYNC_WORKFLOW.name)
    reconciliation = topology.RECONCILIATION_WORKFLOW.name
    reconciliation_arn = next(m["stateMachineArn"] for m in machines if m["name"] == reconciliation)
    # The processor's coordinates and the key are in CallProcessor's configuration, as they would be in AWS.
    lambda_client = boto3.client("lambda", endpoint_url=endpoint_url, region_name=region, **CREDENTIALS)
    function = topology.function_by_step("CallProcessor").function_name
    variables = lambda_client.get_function_configuration(FunctionName=function)["Environment"]["Variables"]
    credentials = {
        "ssl_merchant_id": variables[topology.CONVERGE_MERCHANT_ID],
        "ssl_user_id": variables[topology.CONVERGE_USER_ID],
        "ssl_pin": variables[topology.CONVERGE_PIN],
    }
    # The bus is in LedgerEvents' configuration; the queue its rule delivers to, by its name.
    events_function = topology.EVENTS_FUNCTION.function_name
    events_variables = lambda_client.get_function_configuration(FunctionName=events_function)["Environment"]
    sqs = boto3.client("sqs", endpoint_url=endpoint_url, region_name=region, **CREDENTIALS)
    return StackInfo(
        endpoint_url=endpoint_url,
        region=region,
        state_machine_arn=arn,
        capture_state_machine_arn=operations_arn,
        void_state_machine_arn=operations_arn,
        refund_state_machine_arn=operations_arn,
        status_sync_state_machine_arn=sync_arn,
        ledger_table=topology.LEDGER_TABLE.name,
        audit_table=topology.AUDIT_TABLE.name,
        card_vault_table=topology.CARD_VAULT_TABLE.name,
        intake_function=topology.INTAKE_FUNCTION.function_name,
        event_bus_name=events_variables["Variables"][topology.EVENT_BUS_NAME],
        events_queue_url=sqs.get_queue_url(QueueName=EVENTS_QUEUE)["QueueUrl"],
        kms_key_arn=variables[topology.PAYMENT_KMS_KEY_ARN],
        audit_kms_key_arn=variables[topology.AUDIT_KMS_KEY_ARN],
        converge_url=variables[topology.CONVERGE_URL],
        converge_credentials=credentials,
        reconciliation_state_machine_arn=reconciliation_arn,
        report_bucket=_report_bucket(lambda_client),
        console_url=endpoint_url.rstrip("/") + CONSOLE_PATH,
    )


def _report_bucket(lambda_client: Any) -> str:
    """Reconciliation's bucket, as MatchLedger is configured with it."""
    function = topology.function_by_step("MatchLedger").function_name
    variables = lambda_client.get_function_configuration(FunctionName=function)["Environment"]["Variables"]
    return str(variables[topology.REPORT_BUCKET_NAME])


def execution_arn(info: StackInfo, transaction_id: str) -> str:
    return execution_arn_for(info.state_machine_arn, transaction_id)


def start_payment(info: StackInfo, request: dict[str, Any]) -> str:
    """Through the intake, as an upstream service starts one: the execution ARN, or a typed refusal."""
    return client.start_payment(info.client("lambda"), info.intake_function, request).execution_arn


def start_operation(info: StackInfo, request: dict[str, Any]) -> str:
    """StartExecution of a capture, void or refund, named after its OperationID (client.start_operation)."""
    state_machine = {
        "capture": info.capture_state_machine_arn,
        "void": info.void_state_machine_arn,
        "refund": info.refund_state_machine_arn,
    }.get(str(request.get("Operation")), info.refund_state_machine_arn)
    return client.start_operation(info.client("stepfunctions"), state_machine, request).execution_arn


def wait_for_execution(info: StackInfo, arn: str, timeout_seconds: float = 120.0) -> dict[str, Any]:
    """DescribeExecution of the execution once it has ended. The stack says when it ends
    (EXECUTION_ENDED_PATH), so nothing polls: one DescribeExecution per wait."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        ended = _execution_ended(info, arn, max(0.0, min(deadline - time.monotonic(), 30.0)))
        description: dict[str, Any] = info.client("stepfunctions").describe_execution(executionArn=arn)
        if description["status"] in TERMINAL:
            return description
        if ended:
            raise RuntimeError(f"{arn} ended, but DescribeExecution says {description['status']}")
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{arn} still running after {timeout_seconds}s")


def _execution_ended(info: StackInfo, arn: str, timeout: float) -> bool:
    ended = ask_stack(info.endpoint_url, EXECUTION_ENDED_PATH, {"arn": arn}, timeout)
    if ended is None:
        raise RuntimeError(f"the stack at {info.endpoint_url} cannot say whether an execution has ended")
    return ended


def ledger_entries(info: StackInfo, transaction_id: str) -> list[dict[str, Any]]:
    return _items_of(info, info.ledger_table, transaction_id)


def vault_item(info: StackInfo, transaction_id: str) -> dict[str, Any] | None:
    """The card vault's item for a payment (ciphertexts), or None: there is none once the payment has ended."""
    item = info.client("dynamodb").get_item(
        TableName=info.card_vault_table, Key={"TransactionID": {"S": transaction_id}}, ConsistentRead=True
    )
    return _plain(item["Item"]) if "Item" in item else None


def audit_records(info: StackInfo, transaction_id: str) -> list[dict[str, Any]]:
    return _items_of(info, info.audit_table, transaction_id)


def _items_of(info: StackInfo, table: str, transaction_id: str) -> list[dict[str, Any]]:
    pages = (
        info.client("dynamodb")
        .get_paginator("query")
        .paginate(
            TableName=table,
            KeyConditionExpression="TransactionID = :id",
            ExpressionAttributeValues={":id": {"S": transaction_id}},
            ConsistentRead=True,
        )
    )
    return [_plain(item) for page in pages for item in page["Items"]]


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    values = {key: _deserializer.deserialize(value) for key, value in item.items()}
    return {
        key: int(value) if key in ("EntryNumber", "Attempt", "LatencyMs") else value for key, value in values.items()
    }


@dataclass
class StateRun:
    """One visit to a state, as the timeline shows it."""

    name: str
    started: datetime
    ended: datetime | None = None
    attempts: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def duration_ms(self) -> float | None:
        return None if self.ended is None else (self.ended - self.started).total_seconds() * 1000

    @property
    def retries(self) -> int:
        return max(0, self.attempts - 1)


def execution_history(info: StackInfo, arn: str) -> list[dict[str, Any]]:
    sfn = info.client("stepfunctions")
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events.extend(page["events"])
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]


def timeline(events: list[dict[str, Any]]) -> list[StateRun]:
    """One StateRun per state entered, in order. Each event is put on the visit its `previousEventId`
    chain leads to, so a Map's iterations, running side by side, keep their own attempts and errors and
    the Map its own exit (the last visit entered, where the chain is missing)."""
    runs: list[StateRun] = []
    run_of: dict[int, StateRun] = {}
    current: StateRun | None = None
    for event in events:
        kind = event["type"]
        run = run_of.get(event.get("previousEventId", -1), current)
        if kind.endswith("StateEntered"):
            run = current = StateRun(event["stateEnteredEventDetails"]["name"], event["timestamp"])
            runs.append(run)
        elif run is None:
            continue
        elif kind in ("TaskScheduled", "LambdaFunctionScheduled"):
            run.attempts += 1
        elif kind in ("TaskFailed", "LambdaFunctionFailed", "TaskTimedOut", "LambdaFunctionTimedOut"):
            details = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
            run.errors.append(details.get("error", kind))
        elif kind.endswith("StateExited") or (kind.startswith("Execution") and run.ended is None):
            run.ended = event["timestamp"]
        if "id" in event:
            run_of[event["id"]] = run
    return runs


@dataclass
class OperationTrace:
    """One capture, void or refund of a payment: its execution, its ledger entries and its audit trail."""

    operation_id: str
    operation: str  # capture, void or refund
    execution_arn: str
    description: dict[str, Any] | None
    runs: list[StateRun]
    entries: list[dict[str, Any]]  # its own ledger entries, in order
    audit: list[dict[str, Any]]  # its trail: audit partition <TransactionID>/<OperationID>

    @property
    def status(self) -> str:
        """The operation's latest ledger Status: its terminal one once it has ended."""
        return str(self.entries[-1]["Status"]) if self.entries else "(none)"

    @property
    def trail(self) -> str:
        """Its entries' stages, e.g. "INITIATED → PENDING → SUCCESS" (a refusal is just "DECLINED")."""
        return " → ".join(str(entry["Status"]).partition("-")[2] for entry in self.entries) or "(none)"


@dataclass
class PaymentTrace:
    """A payment's whole history: its execution, then each operation's; the one ledger partition; the audit
    records of the payment's trail (`audit`) and of each operation's (`operations[i].audit`)."""

    transaction_id: str
    description: dict[str, Any] | None
    runs: list[StateRun]
    ledger: list[dict[str, Any]]
    audit: list[dict[str, Any]]
    operations: list[OperationTrace] = field(default_factory=list)

    @property
    def ledger_trail(self) -> str:
        """The payment's own statuses, then each operation as its latest status, in ledger order:
        "PAYMENT-INITIATED → PAYMENT-PENDING → PAYMENT-SUCCESS → REFUND-SUCCESS → REFUND-DECLINED"."""
        latest = {op.operation_id: op.status for op in self.operations}
        steps: list[str] = []
        seen: set[str] = set()
        for entry in _in_order(self.ledger):
            operation_id = entry.get("OperationID")
            if not operation_id:
                steps.append(str(entry["Status"]))
            elif operation_id not in seen:
                seen.add(operation_id)
                steps.append(latest.get(operation_id, str(entry["Status"])))
        return " → ".join(steps) or "(none)"


def trace_payment(info: StackInfo, transaction_id: str) -> PaymentTrace:
    description, runs = _execution(info, execution_arn(info, transaction_id))
    ledger = _in_order(ledger_entries(info, transaction_id))
    return PaymentTrace(
        transaction_id,
        description,
        runs,
        ledger,
        _in_chain_order(audit_records(info, transaction_id)),
        [trace_operation(info, transaction_id, operation_id, ledger) for operation_id in operation_ids(ledger)],
    )


def operation_ids(ledger: list[dict[str, Any]]) -> list[str]:
    """The OperationIDs of the payment's captures, voids and refunds, in the order of their first entries
    (not the reference a reversal by status sync is recorded under: that is no operation)."""
    return list(
        dict.fromkeys(
            str(e["OperationID"])
            for e in _in_order(ledger)
            if e.get("OperationID") and parse_status(str(e["Status"])) is not None
        )
    )


def trace_operation(
    info: StackInfo, transaction_id: str, operation_id: str, ledger: list[dict[str, Any]]
) -> OperationTrace:
    entries = [entry for entry in _in_order(ledger) if entry.get("OperationID") == operation_id]
    # Each entry names the execution that wrote it; the operation's name is its OperationID.
    arn = str(entries[0].get("ExecutionArn") or "") if entries else ""
    if not arn:
        arn = execution_arn_for(info.refund_state_machine_arn, operation_id)
    description, runs = _execution(info, arn)
    parsed = parse_status(str(entries[0]["Status"])) if entries else None
    return OperationTrace(
        operation_id,
        parsed[0] if parsed else "?",
        arn,
        description,
        runs,
        entries,
        _in_chain_order(audit_records(info, f"{transaction_id}/{operation_id}")),
    )


def _execution(info: StackInfo, arn: str) -> tuple[dict[str, Any] | None, list[StateRun]]:
    try:
        description = info.client("stepfunctions").describe_execution(executionArn=arn)
        return description, timeline(execution_history(info, arn))
    except ClientError as error:
        if error.response["Error"]["Code"] not in ("ExecutionDoesNotExist", "InvalidArn"):
            raise
        return None, []


def _in_order(ledger: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(ledger, key=lambda entry: int(entry["EntryNumber"]))


def _in_chain_order(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A trail's records as they were chained (the key, AuditID, sorts claims after the calls)."""
    return sorted(records, key=lambda r: (int(r.get("ChainSeq") or 0), str(r.get("CreatedAt", ""))))


def settle_sandbox(info: StackInfo) -> list[str]:
    """Close the Converge sandbox's open batch through its control API (POST /_sandbox/settle): open sales,
    completions and returns settle, and can then be refunded but no longer voided. The ssl_txn_ids settled."""

    from local.sandbox.server import SETTLE_PATH

    url = _sandbox_url(info, SETTLE_PATH)
    request = urllib.request.Request(url, data=b"", method="POST")  # noqa: S310 - the stack's own loopback sandbox
    with urllib.request.urlopen(request, timeout=5) as reply:  # noqa: S310
        return [str(txn_id) for txn_id in json.loads(reply.read())["settled"]]


def _sandbox_url(info: StackInfo, path: str) -> str:
    """A control-API URL of the stack's sandbox, from the Converge URL its functions are configured with."""
    from local.sandbox.server import XML_PATH

    if not info.converge_url.endswith(XML_PATH):
        raise ValueError(f"the stack's Converge URL is not the local sandbox's: {info.converge_url}")
    return info.converge_url[: -len(XML_PATH)] + path


def add_sandbox_fault(info: StackInfo, rule: dict[str, Any]) -> None:
    """Switch a fault on in the Converge sandbox through its control API (POST /_sandbox/faults)."""
    from local.sandbox.server import FAULTS_PATH

    request = urllib.request.Request(  # noqa: S310 - the stack's own loopback sandbox
        _sandbox_url(info, FAULTS_PATH),
        data=json.dumps(rule).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5):  # noqa: S310
        pass


def sandbox_charges(info: StackInfo) -> list[dict[str, Any]]:
    """The Converge sandbox's own record of transactions (masked), from its control API."""

    from local.sandbox.server import TRANSACTIONS_PATH

    url = _sandbox_url(info, TRANSACTIONS_PATH)
    with urllib.request.urlopen(url, timeout=5) as reply:  # noqa: S310 - loopback URL from our own stack
        return list(json.loads(reply.read()))
