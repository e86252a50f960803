"""LedgerInitiated and LedgerPending: append entry 1 (PAYMENT-INITIATED) or 2 (PAYMENT-PENDING).

Two functions, one package: each function's handler setting names its entry point.
"""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from payments import ledger, settings, snapshot
from payments.ledger import LedgerRepository
from payments.observability import logger, tracer
from payments.recording import record_progress
from payments.state import LedgerEvent, parse_state

# SnapStart (payments.snapshot): the caches of clients and secrets emptied after a restore.
snapshot.register()


def _append(status: str, event: dict[str, Any]) -> dict[str, Any]:
    step = parse_state(event, LedgerEvent)
    repository = LedgerRepository(settings.ledger_table_name())
    written = record_progress(repository, step.Payment, status, step.ExecutionArn)
    logger.info("ledger entry appended", extra=written)
    return written


@logger.inject_lambda_context(correlation_id_path="Payment.TransactionID", log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def initiated(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _append(ledger.INITIATED, event)


@logger.inject_lambda_context(correlation_id_path="Payment.TransactionID", log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def pending(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _append(ledger.PENDING, event)
