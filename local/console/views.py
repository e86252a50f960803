"""What the console shows, read from the stack as an operator reads AWS: Step Functions executions and
their histories, the ledger and audit tables (metadata only: no item's SecureToken, no payload), the
events on the console's own subscription to the payments bus, the Converge sandbox's control API (its
records are masked) and the reconciliation reports in S3. Nothing here writes to the stack.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from local import money, operations, verify_ledger
from local.operations import PaymentTrace, StateRun
from local.sandbox.terminal import follow_ons_of, net_charged
from local.stack import CONSOLE_EVENTS_LOG_GROUP, StackInfo
from local.status_sync import unresolved_of
from payments import ledger, status_sync, topology
from payments.cards import identifier_contains_card_number, mask_card_numbers
from payments.chain import Finding, typed
from payments.operations import parse_status

_deserializer = TypeDeserializer()

# What the payments list reads of each ledger entry: never SecureToken, never a hash input it does not show.
_LISTED = (
    *("TransactionID", "EntryNumber", "#status", "Amount", "Currency"),
    *("CardBrand", "CardLast4", "OperationID", "ReasonCode", "CreatedAt"),
)

# A payment still INITIATED or PENDING this long after its last entry stands out (status sync's own
# deadline is longer: it resolves only what no execution will finish).
PENDING_TOO_LONG = dt.timedelta(minutes=5)

FAILED, UNKNOWN, STUCK = "failed", "outcome unknown", "pending too long"
# An execution started straight through StartExecution may carry any name, a card number too: the console
# shows it masked, links to no page of it, and says so.
CARD_IN_NAME = "card number in its name"


@dataclass(frozen=True)
class PaymentRow:
    transaction_id: str
    status: str  # the payment's latest own ledger Status, or its execution's status while it has none
    amount: str
    currency: str
    card: str  # brand and last 4, as the ledger holds them
    started: dt.datetime | None
    execution_status: str | None
    operations: list[tuple[str, str]]  # (OperationID, its latest Status), in ledger order
    attention: str | None  # FAILED, UNKNOWN, STUCK, CARD_IN_NAME or None
    shown_id: str = ""  # the TransactionID as shown: masked if it holds a card number (then no page links to it)

    @property
    def linked(self) -> bool:
        return self.shown_id == self.transaction_id

    def age(self, now: dt.datetime) -> str:
        return _age(now - self.started) if self.started else ""


@dataclass(frozen=True)
class ProcessorView:
    """The sandbox's records of one payment beside the ledger's net charge."""

    records: list[dict[str, Any]]  # the payment's own charges and every follow-on of its operations
    processor_net: Decimal
    ledger_net: Decimal

    @property
    def agrees(self) -> bool:
        return self.processor_net == self.ledger_net


@dataclass(frozen=True)
class WorkflowRun:
    """One execution, with what the console draws: its definition and the states it visited."""

    definition: dict[str, Any] | None
    description: dict[str, Any] | None
    runs: list[StateRun]


@dataclass
class PaymentPage:
    trace: PaymentTrace
    payment_run: WorkflowRun
    operation_runs: dict[str, WorkflowRun]
    chain_findings: list[Finding]
    events: list[dict[str, Any]]
    processor: ProcessorView | None
    attention: str | None
    resolutions: list[str] = field(default_factory=list)  # what status sync would find unresolved

    @property
    def audit_records(self) -> int:
        return len(self.trace.audit) + sum(len(operation.audit) for operation in self.trace.operations)


class EventLog:
    """The events the payments bus delivered to the console's log group (a rule of its own, as one keeps
    an event history in AWS), by TransactionID, each once (by its EventBridge id). Reading a log takes
    nothing off anything: `python -m local events` and any other subscriber see every event too. A log
    event that is not an EventBridge event is counted, never shown."""

    def __init__(self, caught_up: Callable[[float], bool] | None = None) -> None:
        self._caught_up = caught_up
        self._by_payment: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._seen: set[str] = set()
        self._since = 0  # the latest log timestamp read (ms); a later read starts a while before it
        self.unreadable = 0
        self._lock = threading.Lock()

    def of(self, info: StackInfo, transaction_id: str) -> list[dict[str, Any]]:
        """The payment's events, once every ledger entry written so far has had its event delivered
        (waiting up to 2 s for the stack's stream pump)."""
        if self._caught_up is not None:
            self._caught_up(2.0)
        with self._lock:
            self._read_new(info)
            return sorted(self._by_payment.get(transaction_id, []), key=_ledger_order)

    def _read_new(self, info: StackInfo) -> None:
        # From a minute before the latest read: two events put at once may be stored in either order.
        start = max(self._since - 60_000, 0)
        request: dict[str, Any] = {"logGroupName": CONSOLE_EVENTS_LOG_GROUP, "startTime": start}
        logs = info.client("logs")
        while True:
            page = logs.filter_log_events(**request)
            for log_event in page.get("events", []):
                self._since = max(self._since, int(log_event["timestamp"]))
                self._keep(log_event.get("message", ""))
            if not page.get("nextToken"):
                return
            request["nextToken"] = page["nextToken"]

    def _keep(self, message: str) -> None:
        try:
            event = json.loads(message)
            transaction_id = str(event["detail"]["TransactionID"])
            event_id = str(event["id"])
        except (ValueError, TypeError, KeyError):
            self.unreadable += 1
            return
        if event_id not in self._seen:
            self._seen.add(event_id)
            self._by_payment[transaction_id].append(event)


def _ledger_order(event: dict[str, Any]) -> tuple[int, str]:
    """The order of the entries the events are of (a log is kept in the order events were put)."""
    detail = event.get("detail") or {}
    try:
        return int(detail.get("EntryNumber", 0)), str(event.get("id", ""))
    except (TypeError, ValueError):
        return 0, str(event.get("id", ""))


class RecentRows:
    """The payments list, read again only when the stack has changed since (`changes()`, a DynamoDB
    write or an execution started or ended) or `max_age` seconds have passed (ages, "pending too long"):
    it scans the whole ledger and lists every execution, which moto answers one request at a time, so
    a list refreshed in a loop or searched as one types would otherwise slow every workflow on the
    stack. Without `changes`, it is read every time."""

    def __init__(self, info: StackInfo, changes: Callable[[], object] | None, max_age: float = 30.0) -> None:
        self._info = info
        self._changes = changes
        self._max_age = max_age
        self._read: tuple[object, float, list[PaymentRow]] | None = None
        self._lock = threading.Lock()

    def rows(self, now: dt.datetime) -> list[PaymentRow]:
        with self._lock:
            if self._changes is None:
                return payment_rows(self._info, now)
            seen = self._changes()
            if self._read is None or self._read[0] != seen or time.monotonic() - self._read[1] > self._max_age:
                self._read = (seen, time.monotonic(), payment_rows(self._info, now))
            return self._read[2]


def payment_rows(info: StackInfo, now: dt.datetime) -> list[PaymentRow]:
    """Every payment the stack knows, newest first: each execution of the payment workflow, and each
    TransactionID the ledger holds (an execution may be gone; a refused one wrote no entry)."""
    by_payment: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in _ledger_entries(info):
        by_payment[entry["TransactionID"]].append(entry)
    executions = {e["name"]: e for e in _executions(info, info.state_machine_arn)}
    rows = [
        _row(transaction_id, sorted(by_payment.get(transaction_id, []), key=_entry_number), executions, now)
        for transaction_id in set(by_payment) | set(executions)
    ]
    oldest = dt.datetime.min.replace(tzinfo=dt.UTC)
    return sorted(rows, key=lambda row: (row.started or oldest, row.transaction_id), reverse=True)


def payment_page(info: StackInfo, transaction_id: str, events: EventLog, now: dt.datetime) -> PaymentPage | None:
    """One payment's page, or None if neither the workflow nor the ledger has heard of it."""
    trace = operations.trace_payment(info, transaction_id)
    if trace.description is None and not trace.ledger:
        return None
    findings = verify_ledger.verify_payment(transaction_id, map(typed, trace.ledger), map(typed, trace.audit))
    for operation in trace.operations:
        trail = f"{transaction_id}/{operation.operation_id}"
        findings += verify_ledger.verify_payment(trail, [], map(typed, operation.audit))
    unresolved = _unresolved(trace.ledger, now, status_sync.DEFAULT_PENDING_DEADLINE)
    return PaymentPage(
        trace=trace,
        payment_run=_workflow_run(info, trace.description, trace.runs),
        operation_runs={op.operation_id: _workflow_run(info, op.description, op.runs) for op in trace.operations},
        chain_findings=findings,
        events=events.of(info, transaction_id),
        processor=_processor_view(info, transaction_id, trace),
        attention=_attention(trace.description, trace.ledger, now),
        resolutions=[f"{u.operation_id or 'the payment'}: {u.why.replace('_', ' ').lower()}" for u in unresolved],
    )


def latest_report(info: StackInfo) -> tuple[str, dict[str, Any]] | None:
    """The reconciliation report written last (its key and content), None before the first run."""
    if not info.report_bucket:
        return None
    s3 = info.client("s3")
    latest: dict[str, Any] | None = None
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=info.report_bucket):
        for item in page.get("Contents", []):
            if _is_report(item["Key"]) and (latest is None or item["LastModified"] > latest["LastModified"]):
                latest = item
    if latest is None:
        return None
    body = s3.get_object(Bucket=info.report_bucket, Key=latest["Key"])["Body"].read()
    return latest["Key"], json.loads(body)


def _is_report(key: str) -> bool:
    """A run's report or the day's (reconciliation/<day>/report.json, .../runs/<run>/report.json); not a
    window's listing."""
    return key.startswith(f"{topology.RECONCILIATION_PREFIX}/") and key.endswith("/report.json")


def _row(
    transaction_id: str, entries: list[dict[str, Any]], executions: dict[str, dict[str, Any]], now: dt.datetime
) -> PaymentRow:
    execution = executions.get(transaction_id)
    if identifier_contains_card_number(transaction_id):
        return PaymentRow(
            transaction_id=transaction_id,
            status=(execution or {}).get("status", "(none)"),
            amount="",
            currency="",
            card="",
            started=execution["startDate"] if execution else None,
            execution_status=execution["status"] if execution else None,
            operations=[],
            attention=CARD_IN_NAME,
            shown_id=mask_card_numbers(transaction_id),
        )
    own = [e for e in entries if parse_status(str(e["Status"])) is None and e["Status"] != ledger.SETTLED]
    latest_own = own[-1] if own else None
    first = entries[0] if entries else None
    card = f"{first.get('CardBrand', '')} {first.get('CardLast4', '')}".strip() if first else ""
    started = execution["startDate"] if execution else _parse_time(first["CreatedAt"]) if first else None
    return PaymentRow(
        transaction_id=transaction_id,
        status=str(latest_own["Status"]) if latest_own else (execution or {}).get("status", "(none)"),
        amount=str(first["Amount"]) if first else "",
        currency=str(first.get("Currency", "")) if first else "",
        card=card,
        started=started,
        execution_status=execution["status"] if execution else None,
        operations=_latest_operation_statuses(entries),
        attention=_attention(execution, entries, now),
        shown_id=transaction_id,
    )


def _latest_operation_statuses(entries: list[dict[str, Any]]) -> list[tuple[str, str]]:
    latest: dict[str, str] = {}
    for entry in entries:
        if entry.get("OperationID") and parse_status(str(entry["Status"])) is not None:
            latest[str(entry["OperationID"])] = str(entry["Status"])
    return list(latest.items())


def _attention(execution: dict[str, Any] | None, entries: list[dict[str, Any]], now: dt.datetime) -> str | None:
    """Why a payment stands out: an outcome unknown or still pending long after its last entry (as status
    sync reads the ledger), or a failure (its execution or its own terminal entry)."""
    found = {u.why for u in _unresolved(entries, now, PENDING_TOO_LONG)}
    if "OUTCOME_UNKNOWN" in found:
        return UNKNOWN
    if "PENDING_PAST_DEADLINE" in found or (
        execution and execution["status"] == "RUNNING" and now - execution["startDate"] > PENDING_TOO_LONG
    ):
        return STUCK
    if (execution and execution["status"] in ("FAILED", "TIMED_OUT", "ABORTED")) or any(
        e["Status"] == ledger.FAILED for e in entries
    ):
        return FAILED
    return None


def _unresolved(
    entries: list[dict[str, Any]], now: dt.datetime, deadline: dt.timedelta
) -> list[status_sync.Unresolved]:
    if not entries:
        return []
    in_order = sorted(entries, key=_entry_number)
    return unresolved_of(str(in_order[0]["TransactionID"]), in_order, now=now, pending_deadline=deadline)


def _processor_view(info: StackInfo, transaction_id: str, trace: PaymentTrace) -> ProcessorView | None:
    if not info.converge_url:
        return None
    try:
        records = operations.sandbox_charges(info)
    except (OSError, ValueError):
        return None
    mine = [r for r in records if r.get("ssl_merchant_txn_id") == transaction_id]
    for operation in trace.operations:
        mine += [r for r in follow_ons_of(records, operation.operation_id) if r not in mine]
    return ProcessorView(mine, net_charged(records, transaction_id), money.ledger_net(trace.ledger))


def _workflow_run(info: StackInfo, description: dict[str, Any] | None, runs: list[StateRun]) -> WorkflowRun:
    definition = None
    if description is not None:
        machine = info.client("stepfunctions").describe_state_machine(stateMachineArn=description["stateMachineArn"])
        definition = json.loads(machine["definition"])
    return WorkflowRun(definition, description, runs)


def _ledger_entries(info: StackInfo) -> list[dict[str, Any]]:
    dynamodb = info.client("dynamodb")
    names = {"#status": "Status"}
    entries: list[dict[str, Any]] = []
    for page in dynamodb.get_paginator("scan").paginate(
        TableName=info.ledger_table,
        ProjectionExpression=", ".join(_LISTED),
        ExpressionAttributeNames=names,
        ConsistentRead=True,
    ):
        entries.extend({k: _deserializer.deserialize(v) for k, v in item.items()} for item in page["Items"])
    return entries


def _executions(info: StackInfo, state_machine_arn: str) -> Iterable[dict[str, Any]]:
    sfn = info.client("stepfunctions")
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=state_machine_arn):
        yield from page["executions"]


def _entry_number(entry: dict[str, Any]) -> int:
    return int(entry["EntryNumber"])


def _parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _age(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} d"
