"""Daily reconciliation against the processor (docs/architecture.md#daily-reconciliation).

Emitted as statemachine/reconciliation.asl.json by `make asl`. Scheduled once a day in AWS (an empty
input: yesterday, UTC); `python -m local reconcile --date YYYY-MM-DD` starts it locally.
PlanReconciliation cuts the day (and a margin either side) into time windows; a Distributed Map lists
each window at the processor in a child execution of its own (at most MAX_CONCURRENCY at once: each holds
a connection to the processor), storing the listing in the report bucket and handing back only its
counts; MatchLedger reads the listings and the ledger, records the settled charges, stores the report and
answers with its summary. A window that cannot be listed is reported incomplete, never skipped in silence.
"""

from __future__ import annotations

from typing import Any

from payments import topology
from statemachine.policy import EXECUTION_ARN, Catch, Retry, catch_all, fail, lambda_task, payload_of

# Windows listed at once: each holds one connection to the processor for as long as it pages.
MAX_CONCURRENCY = 4
# A listing moves no money: asking again is always safe.
LISTING_RETRY = Retry(("ProcessorUnavailable", "ProcessorTimeout", "States.Timeout"), 3, interval_seconds=2)
# Matching a busy day reads every window's listing and the day's ledger approvals.
MATCH_TIMEOUT_SECONDS = 900


def definition() -> dict[str, Any]:
    return {
        "Comment": "Daily reconciliation: list the day at the processor window by window, match it to the ledger.",
        "StartAt": "PlanReconciliation",
        "TimeoutSeconds": 3 * 3600,
        "States": {**_plan(), **_listing(), **_matching()},
    }


def _plan() -> dict[str, Any]:
    return {
        "PlanReconciliation": lambda_task(
            "PlanReconciliation",
            comment="Validate the input (Date, default yesterday; WindowMinutes) and cut the day into windows.",
            payload=payload_of(Request="$", Run="$$.Execution.Name"),
            output_path="$.Payload",
            catch=[Catch(("InvalidReconciliationRequest",), "ReadRejection", "$")],
            next_state="ListWindows",
        ),
        "ReadRejection": {
            "Type": "Pass",
            "Comment": "Keep the plan's reason (field and why, never the input).",
            "Parameters": {"Rejection.$": "States.StringToJson($.Cause)"},
            "Next": "InvalidReconciliationRequest",
        },
        "InvalidReconciliationRequest": fail("InvalidReconciliationRequest", CausePath="$.Rejection.errorMessage"),
    }


def _listing() -> dict[str, Any]:
    list_window = lambda_task(
        "ListProcessorWindow",
        comment="List one window at the processor, every page; store it in the report bucket; answer with counts.",
        payload=payload_of("Window", "Prefix", "ProcessorID"),
        timeout_seconds=topology.PROCESSOR_TIME_BUDGET.state_timeout_seconds,
        output_path="$.Payload",
        retry_first=[Retry(("ProcessorRejected",), max_attempts=0)],
        retry_after=[LISTING_RETRY],
        catch=[catch_all("WindowNotListed")],
        next_state="WindowListed",
    )
    return {
        "ListWindows": {
            "Type": "Map",
            "Comment": "One child execution per window (a Distributed Map: a busy day has many windows).",
            "ItemsPath": "$.Windows",
            "MaxConcurrency": MAX_CONCURRENCY,
            "ItemSelector": {
                "Window.$": "$$.Map.Item.Value",
                "Prefix.$": "$.Prefix",
                "ProcessorID.$": "$.ProcessorID",
            },
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "ListProcessorWindow",
                "States": {
                    "ListProcessorWindow": list_window,
                    "WindowListed": {"Type": "Succeed"},
                    "WindowNotListed": {
                        "Type": "Pass",
                        "Comment": "Not listed: the report names the window incomplete, and the error says why.",
                        "Parameters": {"Index.$": "$.Window.Index", "Complete": False, "Error.$": "$.Failure.Error"},
                        "End": True,
                    },
                },
            },
            "ResultPath": "$.Listings",
            "Next": "MatchLedger",
        },
    }


def _matching() -> dict[str, Any]:
    return {
        "MatchLedger": lambda_task(
            "MatchLedger",
            comment=(
                "Match the listings to the ledger's approvals; append PAYMENT-SETTLED for each settled charge; "
                "store the report; publish a metric per category; answer with the summary."
            ),
            payload=payload_of(
                "Date", "ProcessorID", "Run", "Prefix", "Windows", "Listings", ExecutionArn=EXECUTION_ARN
            ),
            timeout_seconds=MATCH_TIMEOUT_SECONDS,
            output_path="$.Payload",
            # Nothing to undo if it fails: the run fails (the executions-failed alarm pages), and a run again
            # writes nothing twice.
            catch=[],
            next_state="AnyMismatch",
        ),
        "AnyMismatch": {
            "Type": "Choice",
            "Comment": "Every transaction matched and every window listed in full, or not.",
            "Choices": [
                {
                    "And": [
                        {"Variable": "$.Mismatches", "NumericEquals": 0},
                        {"Variable": "$.Complete", "BooleanEquals": True},
                    ],
                    "Next": "Reconciled",
                }
            ],
            "Default": "MismatchesFound",
        },
        "Reconciled": {"Type": "Succeed", "Comment": "Every transaction of the day matched."},
        "MismatchesFound": {
            "Type": "Succeed",
            "Comment": "The report names each mismatch; the ReconciliationMismatches metric's alarm pages.",
        },
    }
