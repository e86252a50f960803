"""Reconciliation's steps: PlanReconciliation, ListProcessorWindow, MatchLedger (payments.reconciliation_run).

Three functions, one package: each function's handler setting names its entry point.
"""

import datetime as dt
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from payments import reconciliation_run, settings, snapshot, topology
from payments.ledger import LedgerRepository
from payments.observability import logger, metrics, tracer
from payments.processors import registry

# SnapStart (payments.snapshot): ListProcessorWindow's processor adapters loaded before the snapshot.
snapshot.register(registry.load, entry_points=("list_window",))


def _store() -> reconciliation_run.ReportStore:
    return reconciliation_run.ReportStore(settings.required(topology.REPORT_BUCKET_NAME))


# No correlation_id_path: the raw input is untrusted until parsed.
@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def plan(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    try:
        request = reconciliation_run.parse_request(event.get("Request"), today=now.date(), now=now)
    except reconciliation_run.InvalidReconciliationRequest as rejection:
        logger.warning("reconciliation request rejected", extra={"field": rejection.field})
        raise
    planned = reconciliation_run.plan(request, run=str(event["Run"]))
    logger.info(
        "reconciliation planned",
        extra={"date": planned["Date"], "windows": len(planned["Windows"]), "provisional": request.provisional},
    )
    return planned


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def list_window(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    processor = registry.processor_for(str(event["ProcessorID"]))
    listed = reconciliation_run.list_window(
        event, processor, _store(), seconds_left=lambda: context.get_remaining_time_in_millis() / 1000
    )
    metrics.add_metric(name="ReconciliationListingPages", unit=MetricUnit.Count, value=listed["Pages"])
    logger.info("processor window listed", extra={k: listed[k] for k in ("Index", "Listed", "Pages", "Complete")})
    return listed


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def match(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report, summary = reconciliation_run.match(
        event, LedgerRepository(settings.ledger_table_name()), _store(), str(event["ExecutionArn"])
    )
    for category, count in report["Counts"].items():
        metrics.add_metric(name=topology.RECONCILIATION_METRICS[category], unit=MetricUnit.Count, value=count)
    # What the alarm watches: every mismatch, and every window whose listing could not be completed.
    alarming = report["Mismatches"] + len(report["IncompleteWindows"])
    metrics.add_metric(name=topology.RECONCILIATION_ALARM_METRIC, unit=MetricUnit.Count, value=alarming)
    logger.info(
        "reconciliation matched",
        extra={
            "date": report["Date"],
            "counts": report["Counts"],
            "complete": report["Complete"],
            "provisional": report["Provisional"],
            "not_yet_settled": report["NotYetSettled"],
        },
    )
    return summary
