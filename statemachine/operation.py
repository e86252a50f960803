"""The operation workflow: capture, void or refund a payment, exactly once, never more than it allows.

See docs/architecture.md#operations-after-a-payment. Emitted as statemachine/operation.asl.json by `make asl`.
Admission judges the operation against the payment's ledger and appends its INITIATED entry (or
records the refusal as its one entry, `<KIND>-DECLINED`); PENDING is written before the processor
call; exactly one terminal entry ends it, then the Audit step stores what the call step did not.
"""

from __future__ import annotations

from typing import Any

from statemachine.policy import (
    EXECUTION_ARN,
    Catch,
    catch_all,
    choice,
    fail,
    lambda_task,
    payload_of,
    terminal_entry,
    unsuccessful_entry,
    when_present,
)
from statemachine.processor_steps import normalize, processor_call

NEVER_RETRIED = ("ProcessorRejected", "WorkflowStateInvalid", "ChargeRefused", "OperationRefused")
# The operation's own audit trail: operations of one payment may run at the same time.
AUDIT_TRAIL = "States.Format('{}/{}', $.Operation.TransactionID, $.Operation.OperationID)"


def definition() -> dict[str, Any]:
    return {
        "Comment": "Operation workflow: admit against the ledger, pending, the processor once, terminal entry, audit.",
        "StartAt": "AdmitOperation",
        "TimeoutSeconds": 3600,
        "States": {**_admission(), **_call(), **_terminal_entries(), **_audit_and_end()},
    }


def _admission() -> dict[str, Any]:
    return {
        "AdmitOperation": lambda_task(
            "AdmitOperation",
            comment=(
                "Validate the input and judge it against the payment's ledger: append INITIATED (the amount is "
                "held), or the refusal as the operation's one entry, <KIND>-DECLINED with its reason."
            ),
            payload=payload_of(Request="$", ExecutionArn=EXECUTION_ARN),
            output_path="$.Payload",
            # No catch-all: admission that fails after its retries fails the execution at this task, so
            # that a redrive runs admission again (it finds its own INITIATED entry and goes on).
            catch=[Catch(("InvalidOperationRequest", "OperationRefused"), "ReadRejection", "$")],
            next_state="IsAdmitted",
        ),
        "ReadRejection": {
            "Type": "Pass",
            "Comment": "Keep the error's name and AdmitOperation's reason (field and why, never the input).",
            "Parameters": {"Error.$": "$.Error", "Rejection.$": "States.StringToJson($.Cause)"},
            "Next": "IsInvalid",
        },
        "IsInvalid": choice(
            "$.Error", {"InvalidOperationRequest": "InvalidOperationRequest"}, default="OperationNotRecorded"
        ),
        "InvalidOperationRequest": fail("InvalidOperationRequest", CausePath="$.Rejection.errorMessage"),
        "OperationNotRecorded": fail(
            "OperationRefused",
            "No ledger to record the refusal in: an unknown payment, or an OperationID of another execution.",
            CausePath="$.Rejection.errorMessage",
        ),
        "IsAdmitted": choice("$.Admission.Status", {"ADMITTED": "OperationPending"}, default="OperationDeclinedEnd"),
        "OperationDeclinedEnd": {
            "Type": "Succeed",
            "Comment": "Refused by the payment's history, recorded as <KIND>-DECLINED; nothing was sent.",
            "OutputPath": "$.Admission.Response",
        },
        "OperationPending": lambda_task(
            "OperationPending",
            comment="The operation's PENDING entry, before any money moves.",
            payload=payload_of("Operation", ExecutionArn=EXECUTION_ARN),
            result_selector={"LastEntry.$": "$.Payload.EntryNumber"},
            result_path="$.Ledger",
            catch=[catch_all("OperationFailed")],
            next_state="CallOperationProcessor",
        ),
    }


def _call() -> dict[str, Any]:
    return {
        "CallOperationProcessor": processor_call(
            "CallOperationProcessor",
            comment=(
                "Send the capture, void or refund exactly once, tagged with the OperationID: a retried attempt "
                "asks the processor by it before sending. A void of a settled charge and a refund of an unsettled "
                "one are refused (OperationRefused), nothing sent."
            ),
            subject="Operation",
            never_retried=NEVER_RETRIED,
            catch=[Catch(("OperationRefused",), "OperationDeclined"), catch_all("OperationFailed")],
            next_state="NormalizeOperation",
        ),
        "NormalizeOperation": normalize(
            "NormalizeOperation",
            subject="Operation",
            on_error=catch_all("OperationFailed"),
            next_state="IsOperationApproved",
        ),
        "IsOperationApproved": choice(
            "$.Outcome.Status", {"APPROVED": "OperationSuccess", "DECLINED": "OperationDeclined"}, "OperationFailed"
        ),
    }


def _terminal_entries() -> dict[str, Any]:
    def terminal(step: str, comment: str, payload: dict[str, str], on_error: Catch) -> dict[str, Any]:
        function_step = "OperationSuccess" if step == "OperationSuccess" else "OperationFailed"
        return terminal_entry(
            step,
            function_step=function_step,
            comment=comment,
            payload=payload,
            on_error=on_error,
            next_state="AnyCallsToAudit",
        )

    return {
        "OperationSuccess": terminal(
            "OperationSuccess",
            "Terminal entry: <KIND>-SUCCESS. The money moved.",
            payload_of("Operation", "Outcome", Ledger="$.Ledger", ExecutionArn=EXECUTION_ARN),
            catch_all("OperationFailed"),
        ),
        "OperationDeclined": terminal(
            "OperationDeclined",
            "Terminal entry: <KIND>-DECLINED, declined by the processor or refused before sending. The hold ends.",
            unsuccessful_entry("DECLINED"),
            catch_all("OperationFailed"),
        ),
        "OperationFailed": terminal(
            "OperationFailed",
            "Terminal entry: <KIND>-FAILED (or SUCCESS, if the processor approved). After a send whose outcome is "
            "unknown the hold stays, and the payment takes no other operation until reconciled.",
            unsuccessful_entry("FAILED"),
            catch_all("OperationUnrecorded"),
        ),
        "OperationUnrecorded": fail(
            "OperationOutcomeUnknown",
            "Not even the failure could be recorded: the ledger holds the operation pending. Not a failure: status "
            "sync ends it (its PaymentReconciled event says how); an operator is alarmed.",
            CausePath="States.Format('Operation {} of payment {} ended without a terminal ledger entry: {}', "
            "$.Operation.OperationID, $.Operation.TransactionID, $.Failure.Error)",
        ),
    }


def _audit_and_end() -> dict[str, Any]:
    return {
        # A Catch on the call step leaves no $.Processor: its calls were written by the step itself.
        "AnyCallsToAudit": when_present("$.Processor.Calls", "AuditOperation", "IsOperationSettled"),
        "AuditOperation": lambda_task(
            "AuditOperation",
            function_step="Audit",
            comment="One encrypted audit record per processor call not already written, in the operation's trail.",
            payload={"TransactionID.$": AUDIT_TRAIL, **payload_of("Processor", ExecutionArn=EXECUTION_ARN)},
            result_path=None,
            catch=[catch_all("IsOperationSettled", result_path="$.AuditFailure")],
            next_state="IsOperationSettled",
        ),
        "IsOperationSettled": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.Result.Response.Failure", "IsPresent": True, "Next": "OperationFailedEnd"}],
            "Default": "OperationEnded",
        },
        "OperationFailedEnd": fail("OperationFailed", CausePath="States.JsonToString($.Result.Response)"),
        "OperationEnded": {
            "Type": "Succeed",
            "Comment": "<KIND>-SUCCESS or <KIND>-DECLINED; the output is the operation's response.",
            "OutputPath": "$.Result.Response",
        },
    }
