"""What the command line does with a stack: start payments, wait for them, trace them.

Everything here goes through boto3 against the stack's endpoint, exactly as an upstream
service or an operator would against AWS.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from local.stack import CREDENTIALS, REGION, StackInfo
from payments import topology
from upstream import client
from upstream.client import execution_arn_for, wait_for_payment

_deserializer = TypeDeserializer()


def discover(endpoint_url: str, region: str = REGION) -> StackInfo:
    """The StackInfo of a running `serve`, found from its endpoint alone."""
    import boto3

    sfn = boto3.client("stepfunctions", endpoint_url=endpoint_url, region_name=region, **CREDENTIALS)
    machines = sfn.list_state_machines()["stateMachines"]
    arn = next(m["stateMachineArn"] for m in machines if m["name"] == topology.STATE_MACHINE_NAME)
    operations_arn = next(m["stateMachineArn"] for m in machines if m["name"] == topology.OPERATION_WORKFLOW.name)
    # The processor's coordinates and the key are in CallProcessor's configuration, as they would be in AWS.
    lambda_client = boto3.client("lambda", endpoint_url=endpoint_url, region_name=region, **CREDENTIALS)
    function = topology.function_by_step("CallProcessor").function_name
    variables = lambda_client.get_function_configuration(FunctionName=function)["Environment"]["Variables"]
    credentials = {
        "ssl_merchant_id": variables[topology.CONVERGE_MERCHANT_ID],
        "ssl_user_id": variables[topology.CONVERGE_USER_ID],
        "ssl_pin": variables[topology.CONVERGE_PIN],
    }
    return StackInfo(
        endpoint_url=endpoint_url,
        region=region,
        state_machine_arn=arn,
        capture_state_machine_arn=operations_arn,
        void_state_machine_arn=operations_arn,
        refund_state_machine_arn=operations_arn,
        ledger_table=topology.LEDGER_TABLE.name,
        audit_table=topology.AUDIT_TABLE.name,
        card_vault_table=topology.CARD_VAULT_TABLE.name,
        intake_function=topology.INTAKE_FUNCTION.function_name,
        kms_key_arn=variables[topology.PAYMENT_KMS_KEY_ARN],
        audit_kms_key_arn=variables[topology.AUDIT_KMS_KEY_ARN],
        converge_url=variables[topology.CONVERGE_URL],
        converge_credentials=credentials,
    )


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
    return wait_for_payment(info.client("stepfunctions"), arn, timeout_seconds, poll_seconds=0.01)


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
    runs: list[StateRun] = []
    current: StateRun | None = None
    for event in events:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            current = StateRun(event["stateEnteredEventDetails"]["name"], event["timestamp"])
            runs.append(current)
        elif current is None:
            continue
        elif kind in ("TaskScheduled", "LambdaFunctionScheduled"):
            current.attempts += 1
        elif kind in ("TaskFailed", "LambdaFunctionFailed", "TaskTimedOut", "LambdaFunctionTimedOut"):
            details = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
            current.errors.append(details.get("error", kind))
        elif kind.endswith("StateExited") or kind.startswith("Execution"):
            current.ended = event["timestamp"]
    return runs


@dataclass
class PaymentTrace:
    transaction_id: str
    description: dict[str, Any] | None
    runs: list[StateRun]
    ledger: list[dict[str, Any]]
    audit: list[dict[str, Any]]

    @property
    def ledger_trail(self) -> str:
        return " → ".join(entry["Status"] for entry in sorted(self.ledger, key=lambda e: e["EntryNumber"])) or "(none)"


def trace_payment(info: StackInfo, transaction_id: str) -> PaymentTrace:
    arn = execution_arn(info, transaction_id)
    try:
        description = info.client("stepfunctions").describe_execution(executionArn=arn)
        runs = timeline(execution_history(info, arn))
    except ClientError as error:
        if error.response["Error"]["Code"] != "ExecutionDoesNotExist":
            raise
        description, runs = None, []
    return PaymentTrace(
        transaction_id, description, runs, ledger_entries(info, transaction_id), audit_records(info, transaction_id)
    )


def sandbox_charges(info: StackInfo) -> list[dict[str, Any]]:
    """The Converge sandbox's own record of transactions (masked), from its control API."""
    import urllib.request

    from local.sandbox.server import TRANSACTIONS_PATH, XML_PATH

    url = info.converge_url.replace(XML_PATH, TRANSACTIONS_PATH)
    with urllib.request.urlopen(url, timeout=5) as reply:  # noqa: S310 - loopback URL from our own stack
        return list(json.loads(reply.read()))
