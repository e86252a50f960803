"""Everything the invariants look at, gathered once after every execution has ended."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from local import operations
from local.card_scan import audit_payloads, table_items
from local.stack import LocalStack, StackInfo
from upstream.client import execution_arn_for


@dataclass
class Observations:
    """What the system says happened, from its own records (never from the runner's beliefs)."""

    transaction_ids: list[str]
    executions: dict[str, dict[str, Any]]  # DescribeExecution per TransactionID
    ledger: dict[str, list[dict[str, Any]]]  # entries in EntryNumber order
    ledger_changes: list[dict[str, Any]]  # the ledger table's stream records
    audit: dict[str, list[dict[str, Any]]]
    charges: list[dict[str, Any]]  # the Converge sandbox's own transaction record
    answered_calls: dict[str, list[str]]  # operations the sandbox answered, per TransactionID
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    table_items: list[dict[str, Any]] = field(default_factory=list)
    # The audit items' encrypted payloads, opened (see card_scan.audit_payloads)
    audit_payloads: list[dict[str, Any]] = field(default_factory=list)
    vaulted: set[str] = field(default_factory=set)  # TransactionIDs the card vault still holds an item for
    logs: str = ""
    # The operations run on these payments: OperationID -> TransactionID, and DescribeExecution per OperationID
    operations: dict[str, str] = field(default_factory=dict)
    operation_executions: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The events the payments bus delivered to the stack's queue (every one since the stack started, as
    # EventBridge delivers them: detail-type, detail...), read once the stream pump had caught up
    events: list[dict[str, Any]] = field(default_factory=list)
    # When the records were read (ISO 8601 UTC): "now" for what is still pending past a deadline of 0
    observed_at: str = ""
    # The card vault's items' ExpiresAt (epoch seconds, the TTL backstop), per TransactionID
    vault_expires_at: dict[str, int] = field(default_factory=dict)
    # The reconciliation reports of the days the run spans (None: no reconciliation was run), and why a
    # run that was tried could not give one
    reconciliation: list[dict[str, Any]] | None = None
    reconciliation_error: str = ""
    # The stack is shared with other tests (a test session's): their transactions are in its listings
    shared_stack: bool = False

    def operation_entries(self, operation_id: str) -> list[dict[str, Any]]:
        """The ledger entries of one operation, in order."""
        entries = self.ledger.get(self.operations.get(operation_id, ""), [])
        return [e for e in entries if e.get("OperationID") == operation_id]

    def operation_trail(self, operation_id: str) -> list[dict[str, Any]]:
        """The operation's own audit records (partition <TransactionID>/<OperationID>)."""
        return self.audit.get(f"{self.operations.get(operation_id, '')}/{operation_id}", [])


def observe(stack: LocalStack, transaction_ids: list[str], operation_ids: dict[str, str] | None = None) -> Observations:
    """`operation_ids`: OperationID -> TransactionID of the operations run on these payments."""
    info = stack.info
    assert info is not None
    observed_at = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    sfn = info.client("stepfunctions")
    executions, history, operation_executions = {}, {}, {}
    for operation_id in operation_ids or {}:
        arn = execution_arn_for(info.refund_state_machine_arn, operation_id)
        try:
            operation_executions[operation_id] = sfn.describe_execution(executionArn=arn)
        except sfn.exceptions.ExecutionDoesNotExist:
            operation_executions[operation_id] = {"status": "NOT_STARTED"}
            continue
        history[operation_id] = operations.execution_history(info, arn)
    for transaction_id in transaction_ids:
        arn = operations.execution_arn(info, transaction_id)
        try:
            executions[transaction_id] = sfn.describe_execution(executionArn=arn)
        except sfn.exceptions.ExecutionDoesNotExist:
            executions[transaction_id] = {"status": "NOT_STARTED"}  # the intake refused it or never answered
            continue
        history[transaction_id] = operations.execution_history(info, arn)
    audit_items = table_items(info, info.audit_table)
    vault_items = table_items(info, info.card_vault_table)
    items = table_items(info, info.ledger_table) + audit_items
    ledger: dict[str, list[dict[str, Any]]] = defaultdict(list)
    audit: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        target = ledger if "EntryNumber" in item else audit
        target[item["TransactionID"]].append(item)
    for entries in ledger.values():
        entries.sort(key=lambda e: int(e["EntryNumber"]))
    # Every ledger entry written by now has been through LedgerEvents (unless it keeps failing, and then
    # invariant 14 names the entries without an event).
    stack.events_caught_up(timeout=60)
    answered: dict[str, list[str]] = defaultdict(list)
    for exchange in stack.sandbox.exchanges():
        if exchange.answered:
            answered[exchange.merchant_txn_id].append(exchange.operation)
    return Observations(
        transaction_ids=transaction_ids,
        executions=executions,
        ledger=dict(ledger),
        ledger_changes=stream_records(info, info.ledger_table),
        audit=dict(audit),
        charges=stack.sandbox.transactions(),
        answered_calls=dict(answered),
        history=history,
        table_items=items + vault_items,
        audit_payloads=audit_payloads(info, audit_items),
        vaulted={str(item["TransactionID"]) for item in vault_items},
        vault_expires_at={str(item["TransactionID"]): int(item.get("ExpiresAt") or 0) for item in vault_items},
        logs=stack.logs.text(),
        operations=dict(operation_ids or {}),
        operation_executions=operation_executions,
        events=stack.received_events(),
        observed_at=observed_at,
    )


def stream_records(info: StackInfo, table: str) -> list[dict[str, Any]]:
    """Every change the table's stream saw: INSERT, MODIFY or REMOVE."""
    stream_arn = info.client("dynamodb").describe_table(TableName=table)["Table"]["LatestStreamArn"]
    streams = info.client("dynamodbstreams")
    records: list[dict[str, Any]] = []
    for shard in _shards(streams, stream_arn):
        iterator = streams.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            records += page["Records"]
            if not page["Records"]:
                break
            iterator = page.get("NextShardIterator")
    return records


def _shards(streams: Any, stream_arn: str) -> list[dict[str, Any]]:
    shards: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"StreamArn": stream_arn}
    while True:
        description = streams.describe_stream(**kwargs)["StreamDescription"]
        shards += description["Shards"]
        if not description.get("LastEvaluatedShardId"):
            return shards
        kwargs["ExclusiveStartShardId"] = description["LastEvaluatedShardId"]


def execution_output(execution: dict[str, Any]) -> dict[str, Any] | None:
    """The API response: the output of a settled execution, the cause of a PaymentFailed (an operation's:
    OperationFailed) one; None when the caller was given no response it can read (another error, or a
    cause that is not one)."""
    if execution["status"] == "SUCCEEDED":
        text = execution.get("output")
    elif execution["status"] == "FAILED" and execution.get("error") in ("PaymentFailed", "OperationFailed"):
        text = execution.get("cause")
    else:
        return None
    try:
        response = json.loads(text or "")
    except ValueError:
        return None
    return response if isinstance(response, dict) else None
