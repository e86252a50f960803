"""LedgerSuccess: the terminal PAYMENT-SUCCESS entry; returns the API response."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from payments import settings, snapshot
from payments.ledger import LedgerRepository
from payments.observability import logger, metrics, tracer
from payments.recording import record_success
from payments.state import OutcomeEvent, parse_state
from payments.vault import forget_card

# SnapStart (payments.snapshot): the caches of clients and secrets emptied after a restore.
snapshot.register()


@logger.inject_lambda_context(correlation_id_path="Payment.TransactionID", log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse_state(event, OutcomeEvent)
    repository = LedgerRepository(settings.ledger_table_name())
    response = record_success(repository, step.Payment, step.Ledger.LastEntry, step.Outcome, step.ExecutionArn)
    forget_card(step.Payment.TransactionID)
    metrics.add_metric(name="PaymentsApproved", unit=MetricUnit.Count, value=1)
    logger.info("payment recorded", extra={"status": response["Status"]})
    return response
