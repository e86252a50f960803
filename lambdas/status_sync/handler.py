"""Status sync's steps: FindUnresolved and ResolveUnresolved (payments.status_sync, payments.status_resolution).

Two functions, one package: each function's handler setting names its entry point.
"""

import datetime as dt
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from payments import aws, crypto, settings
from payments.audit import AuditRepository
from payments.exactly_once import CallRecorder
from payments.ledger import LedgerRepository
from payments.observability import logger, metrics, tracer
from payments.processors import registry
from payments.processors.port import Processor
from payments.sale_attempts import OPERATION_ATTEMPT, AuditedSaleAttempts
from payments.status_resolution import Resolver, find_unresolved
from payments.status_sync import parse_sync_request

# One run resolves at most this many; the rest wait for the next run (a few minutes later).
MAX_PER_RUN = 200


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def find(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_sync_request(event.get("Request"))
    found = find_unresolved(
        LedgerRepository(settings.ledger_table_name()),
        now=_now(),
        pending_deadline=request.pending_deadline,
        lookback=request.lookback,
    )
    metrics.add_metric(name="StatusSyncUnresolvedFound", unit=MetricUnit.Count, value=len(found))
    logger.info("unresolved payments and operations found", extra={"found": len(found)})
    return {
        "Unresolved": [{"TransactionID": u.transaction_id, "OperationID": u.operation_id} for u in found[:MAX_PER_RUN]],
        "Found": len(found),
        "More": len(found) > MAX_PER_RUN,
        "PendingDeadlineSeconds": int(request.pending_deadline.total_seconds()),
    }


@logger.inject_lambda_context(correlation_id_path="Item.TransactionID", log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def resolve(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    item, execution_arn = event["Item"], event["ExecutionArn"]
    audit = AuditRepository(settings.audit_table_name())
    audit_key_arn = settings.audit_kms_key_arn()

    def seal_for(trail: str) -> Any:
        return lambda payload: crypto.encrypt_audit_payload(payload, key_arn=audit_key_arn, transaction_id=trail)

    def recorder_for(trail: str, processor: Processor) -> CallRecorder:
        return CallRecorder(trail, execution_arn, 1, context.function_name, processor, seal_for(trail), audit)

    def attempts_for(trail: str, instruction: Any) -> AuditedSaleAttempts:
        seal = seal_for(trail)
        return AuditedSaleAttempts(
            audit,
            aws.client("dynamodb"),
            trail,
            execution_arn,
            1,
            context.function_name,
            lambda: seal(instruction()),
            kind=OPERATION_ATTEMPT,
        )

    resolver = Resolver(
        ledger=LedgerRepository(settings.ledger_table_name()),
        processor_for=registry.processor_for,
        normalize=registry.normalize,
        recorder_for=recorder_for,
        attempts_for=attempts_for,
        execution_running=_execution_running,
        execution_arn=execution_arn,
        now=_now,
        pending_deadline=dt.timedelta(seconds=int(event["PendingDeadlineSeconds"])),
        seconds_left=lambda: context.get_remaining_time_in_millis() / 1000,
    )
    resolved = resolver.resolve(item["TransactionID"], item.get("OperationID"))
    metrics.add_metric(name=f"StatusSync{_metric_name(resolved.Outcome)}", unit=MetricUnit.Count, value=1)
    logger.info(
        "status sync",
        extra={"operation_id": resolved.OperationID, "outcome": resolved.Outcome, "resolution": resolved.Resolution},
    )
    return resolved.to_state()


def _execution_running(execution_arn: str) -> bool:
    """Whether the execution that wrote the last entry could still write another."""
    client = aws.client("stepfunctions")
    try:
        return client.describe_execution(executionArn=execution_arn)["status"] == "RUNNING"
    except client.exceptions.ExecutionDoesNotExist:
        return False  # its history has expired (90 days after it ended)


def _metric_name(outcome: str) -> str:
    return "".join(part.capitalize() for part in outcome.split("_"))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
