"""Time per state and state transitions, from the execution histories (what Step Functions itself recorded)."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from typing import Any

from bench.stats import median, percentile
from local import operations
from local.stack import REPO_ROOT
from payments import topology

History = list[dict[str, Any]]


def task_functions() -> dict[str, str]:
    """State name -> the function its Task invokes, read from the ASL's ${...FunctionArn} placeholders."""
    definition = json.loads((REPO_ROOT / topology.ASL_PATH).read_text())
    by_placeholder = {f"${{{spec.placeholder}}}": spec.function_name for spec in topology.FUNCTIONS}
    functions: dict[str, str] = {}

    def walk(states: dict[str, Any]) -> None:
        for name, state in states.items():
            target = (state.get("Parameters") or {}).get("FunctionName")
            if state.get("Type") == "Task" and target in by_placeholder:
                functions[name] = by_placeholder[target]
            for branch in state.get("Branches", []):
                walk(branch.get("States", {}))

    walk(definition["States"])
    return functions


def per_state(
    histories: dict[str, History], handler_ms: dict[str, list[float]], start_dates: dict[str, datetime]
) -> dict[str, Any]:
    """Median and p95 per state (entered -> exited), in order of first appearance, with the handler's own time.

    Also what no state accounts for: from the service accepting StartExecution to the history's
    first event, and between states.
    """
    durations: dict[str, list[float]] = defaultdict(list)
    before_start: list[float] = []
    between: list[float] = []
    totals: list[float] = []
    for arn, events in histories.items():
        runs = operations.timeline(events)
        for run in runs:
            if run.duration_ms is not None:
                durations[run.name].append(run.duration_ms)
        total = execution_ms(events)
        if total is not None:
            totals.append(total)
            between.append(total - sum(run.duration_ms or 0.0 for run in runs))
        if arn in start_dates and events:
            before_start.append((events[0]["timestamp"] - start_dates[arn]).total_seconds() * 1000)
    functions = task_functions()
    states = []
    for name, values in durations.items():
        function = functions.get(name)
        handler = handler_ms.get(function, []) if function else []
        states.append(
            {
                "state": name,
                "function": function,
                "visits": len(values),
                "median_ms": round(median(values), 1),
                "p95_ms": round(percentile(values, 95), 1),
                "handler_median_ms": round(median(handler), 1) if handler else None,
            }
        )
    return {
        "executions": len(histories),
        "states": states,
        "before_first_event_median_ms": _rounded_median(before_start),
        "between_states_median_ms": _rounded_median(between),
        "execution_median_ms": _rounded_median(totals),
    }


def _rounded_median(values: list[float]) -> float | None:
    return round(median(values), 1) if values else None


def execution_ms(events: History) -> float | None:
    started = next((e["timestamp"] for e in events if e["type"] == "ExecutionStarted"), None)
    ended = next((e["timestamp"] for e in events if e["type"] in _EXECUTION_ENDS), None)
    return None if started is None or ended is None else (ended - started).total_seconds() * 1000


# What `includeExecutionData: false` leaves out of each record.
_EXECUTION_DATA = frozenset(
    {"input", "inputDetails", "output", "outputDetails", "parameters", "result", "resultDetails"}
)
_EXECUTION_ENDS = frozenset({"ExecutionSucceeded", "ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"})


def state_transitions(events: History) -> int:
    """What Standard bills: one per state entered, plus one per retry of a Task."""
    entered = sum(1 for event in events if event["type"].endswith("StateEntered"))
    return entered + sum(run.retries for run in operations.timeline(events))


def execution_log_bytes(events: History, execution_arn: str) -> int:
    """Bytes Step Functions would log at level ALL without execution data (one JSON record per history event).

    Computed from the history in the shape of Step Functions' log records, with every input and
    output left out as `includeExecutionData: false` does.
    """
    total = 0
    for event in events:
        details: dict[str, Any] = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
        record = {
            "id": str(event["id"]),
            "type": event["type"],
            "details": {k: v for k, v in details.items() if k not in _EXECUTION_DATA},
            "previous_event_id": str(event.get("previousEventId", 0)),
            "event_timestamp": str(int(event["timestamp"].timestamp() * 1000)),
            "execution_arn": execution_arn,
            "redrive_count": "0",
        }
        total += len(json.dumps(record, default=str).encode()) + 1
    return total
