"""CallOperationProcessor: send a capture, void or refund exactly once (payments.exactly_once).

Each request carries the OperationID as its reference at the processor; a retried attempt asks by
it and adopts what it finds. Before a void or a refund is sent, the processor is asked whether the
payment's transaction has settled: a settled charge is not voided (refund it instead), an unsettled
one is not refunded (void it, or refund once its batch has closed). Either refusal ends the
operation `<KIND>-DECLINED`, nothing sent.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from payments import aws, crypto, operations, settings
from payments.audit import AuditRepository
from payments.errors import ChargeRefused
from payments.exactly_once import CallRecorder, ChargeResult, Clock, send_once
from payments.ledger import LedgerEntry, LedgerRepository
from payments.operation_recording import of_authorization, operation_entries, stage_of
from payments.operation_state import OperationCallEvent, OperationFacts
from payments.operations import OperationRefused
from payments.processors import registry
from payments.processors.port import OperationInstruction, Processor, ProcessorCall
from payments.sale_attempts import OPERATION_ATTEMPT, AuditedSaleAttempts, SaleAttempts

_ENDED = (operations.SUCCESS, operations.DECLINED, operations.FAILED)


def call_operation_processor(
    event: OperationCallEvent, *, actor: str, seconds_left: Callable[[], float]
) -> ChargeResult:
    """The step with its real adapters: the payment's processor, the ledger, the operation's audit trail."""
    facts = event.Operation
    processor = registry.processor_for(facts.ProcessorID)
    audit_key_arn = settings.audit_kms_key_arn()
    trail = facts.audit_partition

    def seal(payload: dict[str, Any]) -> str:
        return crypto.encrypt_audit_payload(payload, key_arn=audit_key_arn, transaction_id=trail)

    ledger_repository = LedgerRepository(settings.ledger_table_name())

    def still_pending() -> None:
        refuse_unless_pending(ledger_repository.entries(facts.TransactionID), facts, event.ExecutionArn)

    still_pending()
    audit = AuditRepository(settings.audit_table_name())
    attempt = event.RetryCount + 1
    attempts = AuditedSaleAttempts(
        audit,
        aws.client("dynamodb"),
        trail,
        event.ExecutionArn,
        attempt,
        actor,
        lambda: seal({"Operation": facts.Operation, "Amount": facts.Amount, "Currency": facts.Currency}),
        kind=OPERATION_ATTEMPT,
    )
    recorder = CallRecorder(trail, event.ExecutionArn, attempt, actor, processor, seal, audit)
    return send_operation(
        facts,
        processor=processor,
        attempts=attempts,
        recorder=recorder,
        retried=event.RetryCount > 0,
        still_pending=still_pending,
        seconds_left=seconds_left,
    )


def refuse_unless_pending(entries: list[LedgerEntry], facts: OperationFacts, execution_arn: str) -> None:
    """Send only an operation the ledger holds as pending, from this execution, for this amount, not ended.

    The function can be invoked by more than its state machine; an input replayed from another
    operation's history, or forged with another amount, must never reach the processor.
    """
    mine = operation_entries(entries, facts.OperationID)
    if any(stage_of(entry) in _ENDED for entry in mine):
        raise ChargeRefused("the operation has already ended; nothing was sent")
    pending = next((entry for entry in mine if stage_of(entry) == operations.PENDING), None)
    if pending is None:
        raise ChargeRefused("the ledger holds no PENDING entry for this operation; nothing was sent")
    recorded = (
        pending.Status,
        pending.Amount,
        pending.Currency,
        pending.ProcessorID,
        pending.ExecutionArn,
        of_authorization(entries, facts.OperationID),
    )
    asked = (
        operations.status(facts.Operation, operations.PENDING),
        facts.Amount,
        facts.Currency,
        facts.ProcessorID,
        execution_arn,
        facts.OfAuthorization,
    )
    if recorded != asked:
        raise ChargeRefused("the request differs from the ledger's PENDING entry; nothing was sent")
    payment = next((entry for entry in entries if entry.is_terminal), None)
    if payment is None or payment.ProcessorTransactionID != facts.ProcessorTransactionID:
        raise ChargeRefused("the request names another processor transaction than the payment's; nothing was sent")


def send_operation(
    facts: OperationFacts,
    *,
    processor: Processor,
    attempts: SaleAttempts,
    recorder: CallRecorder,
    retried: bool,
    still_pending: Callable[[], None] = lambda: None,
    seconds_left: Callable[[], float] = lambda: 900.0,
    sleep: Callable[[float], None] | None = None,
    clock: Clock | None = None,
) -> ChargeResult:
    instruction = instruction_of(facts)

    def settlement_allows() -> None:
        if facts.Operation == "capture" or instruction.of_authorization:
            return  # an authorization is in no batch until it is captured
        call, settled = processor.settlement_of(facts.ProcessorTransactionID)
        recorder.record(call)
        if facts.Operation == "void" and settled:
            raise OperationRefused("ALREADY_SETTLED", "the charge has settled: refund it instead")
        if facts.Operation == "refund" and not settled:
            raise OperationRefused("NOT_SETTLED", "the charge has not settled yet: void it, or refund it once settled")

    def send(_: None) -> ProcessorCall:
        return processor.send_operation(instruction)

    return send_once(
        processor=processor,
        reference=facts.OperationID,
        attempts=attempts,
        recorder=recorder,
        retried=retried,
        adopt=lambda lookup: processor.operation_found(lookup, instruction),
        prepare=settlement_allows,
        send=send,
        still_pending=still_pending,
        seconds_left=seconds_left,
        sleep=sleep,
        clock=clock,
        calls_after_wait=3,  # the lookup, the settlement question, the operation
        # Whether Converge lists a completion or a delete under its own merchant id is not documented:
        # a capture or void refused when sent again may be refused because the first one landed.
        rejected_resend_is_unknown=True,
    )


def instruction_of(facts: OperationFacts) -> OperationInstruction:
    return OperationInstruction(
        operation_id=facts.OperationID,
        kind=facts.Operation,
        processor_transaction_id=facts.ProcessorTransactionID,
        amount=None if facts.Operation == "void" else Decimal(facts.Amount),
        currency=facts.Currency,
        of_authorization=facts.OfAuthorization,
    )
