"""CallOperationProcessor: send a capture, void or refund exactly once, and report every call."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from payments import crypto, snapshot
from payments.observability import logger, metrics, tracer
from payments.operation_calls import call_operation_processor
from payments.operation_state import OperationCallEvent
from payments.processors import registry
from payments.state import parse_state

# SnapStart (payments.snapshot): the Encryption SDK and the processor adapters loaded before the snapshot.
snapshot.register(crypto.load, registry.load)


@logger.inject_lambda_context(correlation_id_path="Operation.TransactionID", log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse_state(event, OperationCallEvent)
    sent = call_operation_processor(
        step, actor=context.function_name, seconds_left=lambda: context.get_remaining_time_in_millis() / 1000
    )
    metrics.add_metric(name="ProcessorLatency", unit=MetricUnit.Milliseconds, value=sent.latency_ms)
    outcome = sent.calls[-1].Outcome if sent.calls else None
    logger.info(
        "processor answered",
        extra={"outcome": outcome, "latency_ms": sent.latency_ms, "found_by_query": sent.found_by_query},
    )
    return sent.to_state()
