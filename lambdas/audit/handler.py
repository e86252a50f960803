"""Audit: store one encrypted record per processor call (persist_payment_audit_trail)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from payments import settings, snapshot
from payments.audit import AuditRepository, ProcessorCallRecord, persist_payment_audit_trail
from payments.observability import logger, tracer
from payments.state import AuditEvent, parse_state

# SnapStart (payments.snapshot): the caches of clients and secrets emptied after a restore.
snapshot.register()


@logger.inject_lambda_context(correlation_id_path="TransactionID", log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse_state(event, AuditEvent)
    # CallProcessor wrote most records as the calls completed; only the rest are written here.
    pending = [call for call in (step.Processor or {}).get("Calls", []) if not call.get("Persisted")]
    calls = [ProcessorCallRecord.from_state(call) for call in pending]
    repository = AuditRepository(settings.audit_table_name())
    audit_ids = persist_payment_audit_trail(repository, step.TransactionID, step.ExecutionArn, calls)
    logger.info("audit trail written", extra={"records": len(audit_ids)})
    return {"AuditIDs": audit_ids}
