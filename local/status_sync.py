"""`python -m local sync`: one run of the PaymentStatusSync state machine, and what it did, readable."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import Counter
from collections.abc import Iterable
from typing import Any, NamedTuple

from local.stack import StackInfo
from payments import status_sync
from upstream.client import wait_for_payment

# Outcomes after which nothing is left to do for that payment or operation.
SETTLED_OUTCOMES = frozenset({"RESOLVED", "ALREADY_RESOLVED"})


def run_status_sync(
    info: StackInfo, request: dict[str, Any] | None = None, timeout_seconds: float = 600
) -> dict[str, Any]:
    """Start one sync run (as the schedule does, or with an operator's bounds) and return its output."""
    sfn = info.client("stepfunctions")
    started = sfn.start_execution(
        stateMachineArn=info.status_sync_state_machine_arn,
        name=f"sync-{uuid.uuid4()}",
        input=json.dumps(request or {}),
    )
    description = wait_for_payment(sfn, started["executionArn"], timeout_seconds=timeout_seconds)
    if description["status"] != "SUCCEEDED":
        raise RuntimeError(f"the status sync run ended {description['status']}: {description.get('error', '')}")
    output: dict[str, Any] = json.loads(description["output"])
    output["ExecutionArn"] = started["executionArn"]
    return output


class LedgerRow(NamedTuple):
    """A ledger entry as payments.status_sync reads it."""

    TransactionID: str
    Status: str
    OperationID: str | None
    ReasonCode: str | None
    CreatedAt: str


_EPOCH = "1970-01-01T00:00:00Z"


def unresolved_of(
    transaction_id: str, entries: Iterable[dict[str, Any]], *, now: dt.datetime, pending_deadline: dt.timedelta
) -> list[status_sync.Unresolved]:
    """What status sync would find unresolved in one payment's ledger entries (plain items, in order)."""
    rows = [
        LedgerRow(
            transaction_id,
            str(e["Status"]),
            e.get("OperationID"),
            e.get("ReasonCode"),
            str(e.get("CreatedAt") or _EPOCH),
        )
        for e in entries
    ]
    return status_sync.unresolved_in(transaction_id, rows, now=now, pending_deadline=pending_deadline)


def left_unresolved(output: dict[str, Any]) -> list[dict[str, Any]]:
    return [result for result in output.get("Results", []) if result.get("Outcome") not in SETTLED_OUTCOMES]


def summary_lines(output: dict[str, Any]) -> list[str]:
    results = output.get("Results", [])
    outcomes = Counter(result.get("Outcome") for result in results)
    resolutions = Counter(result.get("Resolution") for result in results if result.get("Outcome") == "RESOLVED")
    lines = [f"status sync: {output.get('Found', 0)} unresolved found, {len(results)} looked at"]
    lines += [f"  {outcome:<22} {count}" for outcome, count in sorted(outcomes.items())]
    lines += [f"    {resolution:<20} {count}" for resolution, count in sorted(resolutions.items())]
    for result in results:
        what = result["TransactionID"] + (f" / {result['OperationID']}" if result.get("OperationID") else "")
        if result.get("Outcome") == "RESOLVED":
            lines.append(f"  resolved  {what}: {result.get('Resolution')} -> {result.get('Status')}")
        elif result.get("Outcome") != "ALREADY_RESOLVED":
            why = result.get("Detail") or result.get("Error") or ""
            lines.append(f"  LEFT      {what}: {result.get('Outcome')} {why}".rstrip())
    if output.get("More"):
        lines.append("  more are unresolved than one run takes: run it again")
    return lines
