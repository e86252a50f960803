"""LedgerInitiated: append entry 1, PAYMENT-INITIATED."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from payments import ledger, settings
from payments.ledger import LedgerRepository
from payments.observability import logger, tracer
from payments.recording import record_progress
from payments.state import LedgerEvent, parse_state


@logger.inject_lambda_context(correlation_id_path="Payment.TransactionID")
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse_state(event, LedgerEvent)
    repository = LedgerRepository(settings.ledger_table_name())
    written = record_progress(repository, step.Payment, ledger.INITIATED, step.ExecutionArn)
    logger.info("ledger entry appended", extra=written)
    return written
