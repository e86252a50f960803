"""CallProcessor: charge the card with Elavon Converge, exactly once, and report the call."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from payments import settings
from payments.audit import AuditRepository
from payments.charging import charge, converge_client
from payments.observability import logger, metrics, tracer
from payments.state import ChargeEvent, parse_state


@logger.inject_lambda_context(correlation_id_path="Payment.TransactionID")
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse_state(event, ChargeEvent)
    charged = charge(
        step,
        client=converge_client(),
        key_arn=settings.kms_key_arn(),
        actor=context.function_name,
        audit=AuditRepository(settings.audit_table_name()),
        seconds_left=context.get_remaining_time_in_millis() / 1000,
    )
    metrics.add_metric(name="ProcessorLatency", unit=MetricUnit.Milliseconds, value=charged.latency_ms)
    logger.info(
        "processor answered",
        extra={
            "ssl_result": charged.result.get("ssl_result"),
            "ssl_result_message": charged.result.get("ssl_result_message"),
            "latency_ms": charged.latency_ms,
            "found_by_query": charged.found_by_query,
        },
    )
    return charged.to_state()
