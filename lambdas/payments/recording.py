"""The four ledger steps: two progress entries, then exactly one terminal entry."""

from __future__ import annotations

import json
from typing import Any

from payments import ledger
from payments.ledger import LedgerEntry, LedgerRepository
from payments.processors.registry import normalize
from payments.responses import api_response
from payments.state import APPROVED, DECLINED, MANUAL, PaymentFacts, ProcessorOutcome, WorkflowState

# What a Catch hands us, turned into the reason an operator reads on the terminal entry.
FAILURE_REASONS = {
    "ProcessorTimeout": "PROCESSOR_OUTCOME_UNKNOWN",
    "ProcessorUnavailable": "PROCESSOR_UNAVAILABLE",
    "ProcessorRejected": "PROCESSOR_REJECTED",
    "StorageUnavailable": "STORAGE_UNAVAILABLE",
    "KeyServiceUnavailable": "KEY_SERVICE_UNAVAILABLE",
    "LedgerConflict": "LEDGER_CONFLICT",
    "EntryAlreadyExists": "LEDGER_CONFLICT",
    "States.Timeout": "STEP_TIMED_OUT",
    "CardNotVaulted": "CARD_NOT_IN_VAULT",
    "ChargeRefused": "CHARGE_REFUSED",
}


def _entry(payment: PaymentFacts, number: int, status: str, execution_arn: str, **terminal: str | None) -> LedgerEntry:
    return LedgerEntry(
        TransactionID=payment.TransactionID,
        EntryNumber=number,
        Status=status,
        SecureToken=payment.SecureToken,
        Amount=payment.Amount,
        Currency=payment.Currency,
        ProcessorID=payment.ProcessorID,
        ExecutionArn=execution_arn,
        CreatedAt=ledger.now_iso(),
        CardBrand=payment.Card.Brand if payment.Card else None,
        CardLast4=payment.Card.Last4 if payment.Card else None,
        Capture=payment.Capture if payment.Capture == MANUAL else None,  # absent: a sale, as always
        StartedVia=payment.StartedVia,
        IntakeRequestId=payment.IntakeRequestId,
        **terminal,
    )


def record_progress(
    repository: LedgerRepository, payment: PaymentFacts, status: str, execution_arn: str
) -> dict[str, Any]:
    """LedgerInitiated (entry 1) and LedgerPending (entry 2)."""
    number = {ledger.INITIATED: 1, ledger.PENDING: 2}[status]
    written = ledger.persist_payment_ledger(repository, _entry(payment, number, status, execution_arn))
    return {"EntryNumber": written.EntryNumber, "Status": written.Status}


def record_success(
    repository: LedgerRepository, payment: PaymentFacts, last_entry: int, outcome: ProcessorOutcome, execution_arn: str
) -> dict[str, Any]:
    if outcome.Status != APPROVED:
        raise ValueError(f"LedgerSuccess reached with outcome {outcome.Status}")
    entry = _entry(
        payment,
        last_entry + 1,
        ledger.AUTHORIZED if payment.Capture == MANUAL else ledger.SUCCESS,
        execution_arn,
        ProcessorTransactionID=outcome.ProcessorTransactionID,
        ApprovalCode=outcome.ApprovalCode,
    )
    return api_response(payment, ledger.persist_terminal_entry(repository, entry))


def record_unsuccessful(
    repository: LedgerRepository, state: WorkflowState, status: str, execution_arn: str
) -> dict[str, Any]:
    """LedgerDeclined and LedgerFailed: the terminal entry of a payment that did not complete normally.

    The ledger records what happened to the money. If the processor approved the charge and a
    later step failed, the terminal entry is PAYMENT-SUCCESS all the same: writing PAYMENT-FAILED
    over a charge that stands would be the one lie a ledger must never tell.
    """
    approval = _approval_in(state)
    if approval is not None:
        return record_success(repository, state.Payment, state.Ledger.LastEntry, approval, execution_arn)
    code, message = _reason(state, status)
    outcome = state.Outcome
    entry = _entry(
        state.Payment,
        state.Ledger.LastEntry + 1,
        status,
        execution_arn,
        ProcessorTransactionID=outcome.ProcessorTransactionID if outcome else None,
        ReasonCode=code,
        ReasonMessage=message,
    )
    return api_response(state.Payment, ledger.persist_terminal_entry(repository, entry))


def _approval_in(state: WorkflowState) -> ProcessorOutcome | None:
    if state.Outcome is not None:
        return state.Outcome if state.Outcome.Status == APPROVED else None
    result = (state.Processor or {}).get("Result")
    if isinstance(result, dict):
        outcome = normalize(state.Payment.ProcessorID, result)
        return outcome if outcome.Status == APPROVED else None
    return None


def _reason(state: WorkflowState, status: str) -> tuple[str, str]:
    outcome = state.Outcome
    if status == ledger.DECLINED:
        if outcome is None or outcome.Status != DECLINED:
            raise ValueError("LedgerDeclined reached without a declined outcome")
        return outcome.ReasonCode or "DO_NOT_HONOR", outcome.ReasonMessage or "DECLINED"
    if state.Failure is not None:
        error = state.Failure.Error
        code = FAILURE_REASONS.get(error, "SYSTEM_ERROR")
        if _failed_while_charging(state) and code not in ledger.NOTHING_SENT_REASONS:
            code = "PROCESSOR_OUTCOME_UNKNOWN"  # CallProcessor stopped mid-call: a charge may stand
        return code, _failure_message(error, state.Failure.Cause)
    if outcome is not None:
        return outcome.ReasonCode or "PROCESSOR_ERROR", outcome.ReasonMessage or "processor error"
    return "SYSTEM_ERROR", "the workflow failed without a recorded cause"


def _failed_while_charging(state: WorkflowState) -> bool:
    """The failure came from CallProcessor: PENDING was written and no processor result came back."""
    return state.Ledger.LastEntry >= 2 and state.Outcome is None and "Result" not in (state.Processor or {})


def _failure_message(error: str, cause: str | None) -> str:
    """The error type and, for Lambda errors, its message (our messages never carry card data)."""
    try:
        detail = json.loads(cause or "").get("errorMessage", "")
    except (ValueError, AttributeError):
        detail = ""
    return f"{error}: {detail}"[:500] if detail else error
