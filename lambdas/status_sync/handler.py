"""Status sync's steps: FindUnresolved and ResolveUnresolved (payments.status_sync, payments.status_resolution).

Two functions, one package: each function's handler setting names its entry point.
"""

import datetime as dt
import random
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from payments import aws, crypto, settings, snapshot, topology
from payments.audit import AuditRepository
from payments.exactly_once import CallRecorder
from payments.ledger import LedgerRepository
from payments.observability import logger, metrics, tracer
from payments.processors import registry
from payments.processors.port import Processor
from payments.sale_attempts import OPERATION_ATTEMPT, AuditedSaleAttempts, SaleAttempt
from payments.status_resolution import Resolver, find_unresolved
from payments.status_sync import parse_sync_request

# SnapStart (payments.snapshot): ResolveUnresolved's Encryption SDK and processor adapters loaded before the snapshot.
snapshot.register(crypto.load, registry.load, entry_points=("resolve",))

# One run resolves at most this many; the rest wait for the next run (a few minutes later).
MAX_PER_RUN = 200


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def find(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_sync_request(event.get("Request"))
    deadline = int(request.pending_deadline.total_seconds())
    earlier = _earlier_run(event["ExecutionArn"])
    if earlier is not None:
        # Two runs resolving the same payment would race for its entries; the earlier one finishes the work.
        logger.info("another status sync run is in progress; this one does nothing")
        return {"Unresolved": [], "Found": 0, "More": False, "PendingDeadlineSeconds": deadline, "SkippedFor": earlier}
    found = find_unresolved(
        LedgerRepository(settings.ledger_table_name()),
        now=_now(),
        pending_deadline=request.pending_deadline,
        lookback=request.lookback,
    )
    metrics.add_metric(name="StatusSyncUnresolvedFound", unit=MetricUnit.Count, value=len(found))
    logger.info("unresolved payments and operations found", extra={"found": len(found)})
    # In no fixed order: a few that wait for an operator must not keep every later one out of the run.
    chosen = random.sample(found, min(len(found), MAX_PER_RUN))
    return {
        "Unresolved": [{"TransactionID": u.transaction_id, "OperationID": u.operation_id} for u in chosen],
        "Found": len(found),
        "More": len(found) > MAX_PER_RUN,
        "PendingDeadlineSeconds": deadline,
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

    def claims_of(trail: str, kind: str) -> list[SaleAttempt]:
        reader = AuditedSaleAttempts(
            audit, aws.client("dynamodb"), trail, execution_arn, 1, context.function_name, _never_claims, kind=kind
        )
        return reader.on_record()

    resolver = Resolver(
        ledger=LedgerRepository(settings.ledger_table_name()),
        processor_for=registry.processor_for,
        normalize=registry.normalize,
        recorder_for=recorder_for,
        attempts_for=attempts_for,
        claims_of=claims_of,
        execution_quiet_at=_execution_quiet_at,
        execution_arn=execution_arn,
        now=_now,
        pending_deadline=parse_sync_request(
            {"PendingDeadlineSeconds": event["PendingDeadlineSeconds"]}
        ).pending_deadline,
        seconds_left=lambda: context.get_remaining_time_in_millis() / 1000,
    )
    resolved = resolver.resolve(item["TransactionID"], item.get("OperationID"))
    metrics.add_metric(name=f"StatusSync{_metric_name(resolved.Outcome)}", unit=MetricUnit.Count, value=1)
    logger.info(
        "status sync",
        extra={"operation_id": resolved.OperationID, "outcome": resolved.Outcome, "resolution": resolved.Resolution},
    )
    return resolved.to_state()


def _execution_quiet_at(execution_arn: str) -> dt.datetime | None:
    """When the execution that wrote the last entry could no longer act: None while it runs. One that
    ended at a Fail or Succeed state had no step at work; one stopped or timed out may have left a
    Lambda invocation running, for at most its state's timeout."""
    client = aws.client("stepfunctions")
    try:
        # Its status and dates only: the execution's data (and the key that encrypts it) are not needed.
        described = client.describe_execution(executionArn=execution_arn, includedData="METADATA_ONLY")
    except client.exceptions.ExecutionDoesNotExist:
        return dt.datetime.min.replace(tzinfo=dt.UTC)  # its history has expired (90 days after it ended)
    if described["status"] in ("RUNNING", "PENDING_REDRIVE"):
        return None
    stopped: dt.datetime = described["stopDate"]
    if described["status"] in ("ABORTED", "TIMED_OUT"):
        return stopped + dt.timedelta(seconds=topology.PROCESSOR_TIME_BUDGET.state_timeout_seconds)
    return stopped


def _earlier_run(execution_arn: str) -> str | None:
    """Another run of this state machine still going that started before this one, if any. ListExecutions
    returns no execution data (no key needed), and this run is among the running ones."""
    client = aws.client("stepfunctions")
    state_machine_arn = execution_arn.replace(":execution:", ":stateMachine:").rsplit(":", 1)[0]
    pages = client.get_paginator("list_executions").paginate(stateMachineArn=state_machine_arn, statusFilter="RUNNING")
    running = {run["executionArn"]: run["startDate"] for page in pages for run in page["executions"]}
    if execution_arn not in running:
        return None  # not listed yet (ListExecutions is eventually consistent): let this one work
    mine = (running[execution_arn], execution_arn)
    # Two started at once: the first by ARN goes on.
    return min((arn for arn, started in running.items() if (started, arn) < mine), default=None)


def _never_claims() -> str:
    raise AssertionError("reading the claims on record claims nothing")


def _metric_name(outcome: str) -> str:
    return "".join(part.capitalize() for part in outcome.split("_"))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
