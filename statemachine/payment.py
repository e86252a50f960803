"""The payment workflow: validate and tokenize, ledger, charge exactly once, normalize, terminal entry, audit.

See docs/architecture.md#the-flow. Emitted as statemachine/payment.asl.json by `make asl`.
"""

from __future__ import annotations

from typing import Any

from payments import topology
from statemachine.policy import (
    EXECUTION_ARN,
    Catch,
    Retry,
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

CARD_VAULT_TABLE = "${" + topology.CARD_VAULT_TABLE_PLACEHOLDER + "}"
NEVER_RETRIED = ("ProcessorRejected", "WorkflowStateInvalid", "CardNotVaulted", "ChargeRefused")  # repeating can't help


def definition() -> dict[str, Any]:
    return {
        "Comment": "Payment workflow: Tokenize, ledger, the card processor, normalize, terminal ledger entry, audit.",
        "StartAt": "Tokenize",
        "TimeoutSeconds": 3600,
        "States": {**_intake(), **_progress(), **_charge(), **_terminal_entries(), **_audit_and_end()},
    }


def _intake() -> dict[str, Any]:
    return {
        "Tokenize": lambda_task(
            "Tokenize",
            comment="Validate the input; take the card out of the vault into a SecureToken. No state ever holds a PAN.",
            payload=payload_of(Request="$", ExecutionName="$$.Execution.Name", ExecutionArn=EXECUTION_ARN),
            output_path="$.Payload",
            catch=[Catch(("InvalidPaymentRequest",), "ReadRejection", "$"), catch_all("DiscardCard", "$")],
            next_state="LedgerInitiated",
        ),
        "ReadRejection": {
            "Type": "Pass",
            "Comment": "The Catch replaced the state (and the card in it) with the error; keep Tokenize's reason.",
            "Parameters": {"Rejection.$": "States.StringToJson($.Cause)"},
            "Next": "InvalidPaymentRequest",
        },
        "InvalidPaymentRequest": fail("InvalidPaymentRequest", CausePath="$.Rejection.errorMessage"),
        "DiscardCard": {
            "Type": "Task",
            "Comment": "Tokenize failed for good: no terminal ledger step will run, so the card leaves the vault here.",
            "Resource": "arn:aws:states:::dynamodb:deleteItem",
            "Parameters": {"TableName": CARD_VAULT_TABLE, "Key": {"TransactionID": {"S.$": "$$.Execution.Name"}}},
            "ResultPath": None,
            "Retry": [Retry(("States.ALL",), 3).asl()],
            "Catch": [catch_all("TokenizationFailed", result_path=None).asl()],
            "Next": "TokenizationFailed",
        },
        "TokenizationFailed": fail(
            "PaymentFailed", Cause="Tokenize failed after its retries; nothing written or charged."
        ),
    }


def _progress() -> dict[str, Any]:
    entries = {
        "LedgerInitiated": ("Ledger entry 1: PAYMENT-INITIATED.", "LedgerPending"),
        "LedgerPending": ("Ledger entry 2: PAYMENT-PENDING, before any money moves.", "CallProcessor"),
    }
    return {
        step: lambda_task(
            step,
            comment=comment,
            payload=payload_of("Payment", ExecutionArn=EXECUTION_ARN),
            result_selector={"LastEntry.$": "$.Payload.EntryNumber"},
            result_path="$.Ledger",
            catch=[catch_all("LedgerFailed")],
            next_state=next_state,
        )
        for step, (comment, next_state) in entries.items()
    }


def _charge() -> dict[str, Any]:
    return {
        "CallProcessor": processor_call(
            "CallProcessor",
            comment=(
                "Charge the card exactly once: a retried attempt asks the processor (by TransactionID) before it "
                "sends a sale. Never retries ProcessorRejected. The CVV comes from the vault, and leaves it once "
                "the processor has answered."
            ),
            subject="Payment",
            never_retried=NEVER_RETRIED,
            catch=[catch_all("LedgerFailed")],
            next_state="Normalize",
        ),
        "Normalize": normalize(
            "Normalize", subject="Payment", on_error=catch_all("LedgerFailed"), next_state="IsApproved"
        ),
        "IsApproved": choice(
            "$.Outcome.Status", {"APPROVED": "LedgerSuccess", "DECLINED": "LedgerDeclined"}, default="LedgerFailed"
        ),
    }


def _terminal_entries() -> dict[str, Any]:
    """LedgerSuccess, and LedgerDeclined/LedgerFailed, which both run the LedgerFailed function."""

    def terminal(step: str, comment: str, payload: dict[str, str], on_error: Catch) -> dict[str, Any]:
        function_step = "LedgerSuccess" if step == "LedgerSuccess" else "LedgerFailed"
        return terminal_entry(
            step,
            function_step=function_step,
            comment=comment,
            payload=payload,
            on_error=on_error,
            next_state="AnyCallsToAudit",
        )

    return {
        "LedgerSuccess": terminal(
            "LedgerSuccess",
            "Terminal ledger entry: PAYMENT-SUCCESS.",
            payload_of("Payment", "Ledger", "Outcome", ExecutionArn=EXECUTION_ARN),
            catch_all("LedgerFailed"),
        ),
        "LedgerDeclined": terminal(
            "LedgerDeclined",
            "Terminal ledger entry: PAYMENT-DECLINED. A decline is an outcome, not a failure.",
            unsuccessful_entry("PAYMENT-DECLINED"),
            catch_all("LedgerFailed"),
        ),
        "LedgerFailed": terminal(
            "LedgerFailed",
            "Terminal ledger entry: PAYMENT-FAILED, unless this execution already wrote a terminal entry.",
            unsuccessful_entry("PAYMENT-FAILED"),
            catch_all("LedgerUnrecorded"),
        ),
        "LedgerUnrecorded": fail(
            "PaymentOutcomeUnknown",
            "Not even the failure could be recorded: the ledger holds the payment pending. Not a failure: status "
            "sync ends it (its PaymentReconciled event says how); an operator is alarmed.",
            CausePath="States.Format('Payment {} ended without a terminal ledger entry: {}', "
            "$.Payment.TransactionID, $.Failure.Error)",
        ),
    }


def _audit_and_end() -> dict[str, Any]:
    return {
        "AnyCallsToAudit": when_present("$.Processor.Calls", "Audit", "IsSettled"),
        "Audit": lambda_task(
            "Audit",
            comment=(
                "One encrypted audit record per processor call not already written by CallProcessor. Runs after the "
                "terminal ledger entry: if it fails for good, the payment still ends as the ledger says (the "
                "AuditErrors alarm pages)."
            ),
            payload=payload_of("Processor", TransactionID="$.Payment.TransactionID", ExecutionArn=EXECUTION_ARN),
            result_path=None,
            catch=[catch_all("IsSettled", result_path="$.AuditFailure")],
            next_state="IsSettled",
        ),
        "IsSettled": choice("$.Result.Response.Status", {"PAYMENT-FAILED": "PaymentFailed"}, default="PaymentSettled"),
        "PaymentFailed": fail("PaymentFailed", CausePath="States.JsonToString($.Result.Response)"),
        "PaymentSettled": {
            "Type": "Succeed",
            "Comment": "PAYMENT-SUCCESS or PAYMENT-DECLINED; the output is the API response.",
            "OutputPath": "$.Result.Response",
        },
    }
