"""Status sync: no payment or operation left unknown (docs/architecture.md#status-sync-and-reconciliation).

Emitted as statemachine/status_sync.asl.json by `make asl`. Scheduled every few minutes in AWS (with
an empty input); `python -m local sync` starts it locally. FindUnresolved reads the ledger's
EntriesByStatus index for endings that say nothing of the money; each is resolved in its own Map
iteration (asked of the processor, settled by new ledger entries, its calls audited). An iteration
that fails leaves its payment as it was, for the next run: the run still ends, and its output says
what is left.
"""

from __future__ import annotations

from typing import Any

from statemachine.policy import EXECUTION_ARN, catch_all, lambda_task, payload_of, when_present

# Resolutions of one run at once: each may wait on the processor for a minute.
MAX_CONCURRENCY = 4


def definition() -> dict[str, Any]:
    return {
        "Comment": "Status sync: find unresolved payments and operations, resolve each against the processor.",
        "StartAt": "FindUnresolved",
        "TimeoutSeconds": 3600,
        "States": {
            "FindUnresolved": lambda_task(
                "FindUnresolved",
                comment="Payments and operations that ended with their outcome unknown, or are pending past the "
                "deadline, from the ledger's EntriesByStatus index.",
                payload=payload_of(Request="$", ExecutionArn=EXECUTION_ARN),
                output_path="$.Payload",
                # Nothing to clean up if it fails: the run fails, and the next one finds the same.
                catch=[],
                next_state="ResolveEach",
            ),
            "ResolveEach": {
                "Type": "Map",
                "Comment": "One iteration per unresolved payment or operation.",
                "ItemsPath": "$.Unresolved",
                "MaxConcurrency": MAX_CONCURRENCY,
                "ItemSelector": {
                    "Item.$": "$$.Map.Item.Value",
                    "ExecutionArn.$": EXECUTION_ARN,
                    "PendingDeadlineSeconds.$": "$.PendingDeadlineSeconds",
                },
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "ResolveUnresolved",
                    "States": _resolution(),
                },
                "ResultPath": "$.Results",
                "Next": "SyncEnded",
            },
            "SyncEnded": {
                "Type": "Pass",
                "Comment": "What was found, and what became of each.",
                "Parameters": {"Found.$": "$.Found", "More.$": "$.More", "Results.$": "$.Results"},
                "End": True,
            },
        },
    }


def _resolution() -> dict[str, Any]:
    return {
        "ResolveUnresolved": lambda_task(
            "ResolveUnresolved",
            comment="Ask the processor by the reference; append the resolution (or the reversal) to the ledger.",
            payload=payload_of("Item", "PendingDeadlineSeconds", "ExecutionArn"),
            output_path="$.Payload",
            timeout_seconds=110,
            catch=[catch_all("ResolutionFailed")],
            next_state="AnyCallsToAudit",
        ),
        "ResolutionFailed": {
            "Type": "Pass",
            "Comment": "Left as it was for the next run; the error's name says why (its cause may be long).",
            "Parameters": {
                "TransactionID.$": "$.Item.TransactionID",
                "OperationID.$": "$.Item.OperationID",
                "Outcome": "FAILED",
                "Error.$": "$.Failure.Error",
            },
            "End": True,
        },
        "AnyCallsToAudit": when_present("$.Processor.Calls[0]", "AuditResolution", "Resolved"),
        "AuditResolution": lambda_task(
            "AuditResolution",
            function_step="Audit",
            comment="One encrypted audit record per processor call not already written, in its own trail.",
            payload={"TransactionID.$": "$.AuditTrail", **payload_of("Processor", ExecutionArn=EXECUTION_ARN)},
            result_path=None,
            catch=[catch_all("Resolved", result_path="$.AuditFailure")],
            next_state="Resolved",
        ),
        "Resolved": {
            "Type": "Pass",
            "Parameters": {
                "TransactionID.$": "$.TransactionID",
                "OperationID.$": "$.OperationID",
                "Outcome.$": "$.Outcome",
                "Resolution.$": "$.Resolution",
                "Status.$": "$.Status",
                "Detail.$": "$.Detail",
            },
            "End": True,
        },
    }
