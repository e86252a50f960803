"""Normalize: the processor's own result becomes APPROVED, DECLINED or ERROR."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from payments import snapshot
from payments.observability import logger, tracer
from payments.processors import registry
from payments.processors.registry import normalize
from payments.state import NormalizeEvent, parse_state

# SnapStart (payments.snapshot): the processor adapters loaded before the snapshot.
snapshot.register(registry.load)


@logger.inject_lambda_context(correlation_id_path="TransactionID", log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse_state(event, NormalizeEvent)
    outcome = normalize(step.ProcessorID, step.Result)
    logger.info("processor result normalized", extra={"outcome": outcome.Status, "reason": outcome.ReasonCode})
    return outcome.to_dict()
