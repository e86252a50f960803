"""LedgerFailed: the terminal PAYMENT-DECLINED or PAYMENT-FAILED entry; returns the API response."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from payments import ledger, settings, snapshot
from payments.ledger import LedgerRepository
from payments.observability import logger, metrics, tracer
from payments.recording import record_unsuccessful
from payments.state import FailureEvent, parse_state
from payments.vault import forget_card

# SnapStart (payments.snapshot): the caches of clients and secrets emptied after a restore.
snapshot.register()


@logger.inject_lambda_context(correlation_id_path="State.Payment.TransactionID", log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse_state(event, FailureEvent)
    repository = LedgerRepository(settings.ledger_table_name())
    response = record_unsuccessful(repository, step.State, step.Status, step.ExecutionArn)
    forget_card(step.State.Payment.TransactionID)
    metric = "PaymentsDeclined" if response["Status"] == ledger.DECLINED else "PaymentsFailed"
    metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)
    logger.info("payment recorded", extra={"status": response["Status"], "reason": _reason(response)})
    return response


def _reason(response: dict[str, Any]) -> str | None:
    detail = response.get("Decline") or response.get("Failure") or {}
    return detail.get("Code")
