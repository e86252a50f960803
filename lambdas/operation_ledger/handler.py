"""An operation's ledger steps: AdmitOperation, OperationPending, OperationSuccess, OperationFailed.

Four functions, one package: each function's handler setting names its entry point.
"""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from payments import aws, operation_recording, settings, snapshot
from payments.audit import AuditRepository
from payments.ledger import LedgerRepository
from payments.observability import logger, metrics, tracer
from payments.operation_admission import admission_step
from payments.operation_state import (
    OperationEvent,
    OperationFailureEvent,
    OperationOutcomeEvent,
    OperationStartEvent,
)
from payments.operations import InvalidOperationRequest, OperationRefused
from payments.sale_attempts import OPERATION_ATTEMPT, AuditedSaleAttempts
from payments.state import parse_state

# SnapStart (payments.snapshot): the caches of clients and secrets emptied after a restore.
snapshot.register()


def _ledger() -> LedgerRepository:
    return LedgerRepository(settings.ledger_table_name())


# No correlation_id_path: the raw input is untrusted until parsed.
@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def admit(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse_state(event, OperationStartEvent)
    name = step.ExecutionArn.rpartition(":")[2]
    try:
        state = admission_step(_ledger(), step.Request, name, step.ExecutionArn)
    except InvalidOperationRequest as rejection:
        logger.warning("operation request rejected", extra={"field": rejection.field, "reason": rejection.message})
        raise
    except OperationRefused as refusal:
        logger.warning("operation refused, nothing recorded", extra={"reason": refusal.reason})
        raise
    logger.info("operation admitted or refused", extra={"admission": state["Admission"]["Status"]})
    return state


@logger.inject_lambda_context(correlation_id_path="Operation.TransactionID", log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def pending(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse_state(event, OperationEvent)
    written = operation_recording.record_pending(_ledger(), step.Operation, step.ExecutionArn)
    logger.info("ledger entry appended", extra=written)
    return written


@logger.inject_lambda_context(correlation_id_path="Operation.TransactionID", log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def succeeded(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse_state(event, OperationOutcomeEvent)
    response = operation_recording.record_success(_ledger(), step.Operation, step.Outcome, step.ExecutionArn)
    metrics.add_metric(name="OperationsApproved", unit=MetricUnit.Count, value=1)
    logger.info("operation recorded", extra={"status": response["Status"]})
    return response


@logger.inject_lambda_context(correlation_id_path="State.Operation.TransactionID", log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def unsuccessful(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """OperationDeclined and OperationFailed: one function, the Status says which entry."""
    step = parse_state(event, OperationFailureEvent)
    state = step.State
    facts = state.Operation
    attempts = AuditedSaleAttempts(
        AuditRepository(settings.audit_table_name()),
        aws.client("dynamodb"),
        facts.audit_partition,
        step.ExecutionArn,
        0,
        context.function_name,
        lambda: "",
        kind=OPERATION_ATTEMPT,
    )
    response = operation_recording.record_unsuccessful(
        _ledger(),
        facts,
        step.Status,
        step.ExecutionArn,
        outcome=state.Outcome,
        result=(state.Processor or {}).get("Result"),
        failure=state.Failure,
        sent=bool(attempts.on_record()),
    )
    metrics.add_metric(name="OperationsNotApproved", unit=MetricUnit.Count, value=1)
    logger.info("operation recorded", extra={"status": response["Status"], "reason": _reason(response)})
    return response


def _reason(response: dict[str, Any]) -> str | None:
    detail = response.get("Decline") or response.get("Failure") or {}
    return detail.get("Code")
