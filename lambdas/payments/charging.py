"""CallProcessor: charge exactly once (payments.exactly_once) through the payment's processor.

Every sale carries our TransactionID; the claim-and-ask protocol of payments.exactly_once decides
whether an attempt sends a sale or adopts the one an earlier attempt sent.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from payments import aws, crypto, ledger, settings
from payments.audit import AuditRepository
from payments.errors import CardNotVaulted, ChargeRefused, ProcessorRejected, ProcessorTimeout
from payments.exactly_once import CallRecorder, ChargeResult, Clock, send_once
from payments.ledger import LedgerEntry, LedgerRepository
from payments.processors import registry
from payments.processors.port import (
    CardDetails,
    ExpectedSale,
    PaymentInstruction,
    Processor,
    ProcessorCall,
    SaleKind,
    StoredToken,
)
from payments.sale_attempts import AuditedSaleAttempts, SaleAttempts
from payments.state import AUTOMATIC, MANUAL, ChargeEvent, PaymentFacts
from payments.tokenization import token_binding
from payments.vault import CardVault, remove_after_outcome, vault_from_environment

__all__ = ["CallRecorder", "ChargeResult", "call_processor", "charge"]
PaymentSource = Callable[[], CardDetails | StoredToken]  # reads the CVV only when a sale is sent


def call_processor(event: ChargeEvent, *, actor: str, seconds_left: Callable[[], float]) -> ChargeResult:
    """The CallProcessor step with its real adapters: the payment's processor, KMS, the vault, the audit table.

    Once the processor has answered the sale (approved, declined, or rejected our request), the
    CVV is removed from the vault: from then on it exists nowhere. An attempt that got no answer
    keeps it for the retry, which needs it if the processor never took the sale.
    """
    payment = event.Payment
    key_arn = settings.kms_key_arn()
    audit_key_arn = settings.audit_kms_key_arn()
    processor = registry.processor_for(payment.ProcessorID)
    vault = vault_from_environment()

    def seal(payload: dict[str, Any]) -> str:
        return crypto.encrypt_audit_payload(payload, key_arn=audit_key_arn, transaction_id=payment.TransactionID)

    ledger_repository = LedgerRepository(settings.ledger_table_name())

    def still_pending() -> None:
        refuse_unless_pending(ledger_repository.entries(payment.TransactionID), event)

    still_pending()
    audit = AuditRepository(settings.audit_table_name())
    attempts = AuditedSaleAttempts(
        audit,
        aws.client("dynamodb"),
        payment.TransactionID,
        event.ExecutionArn,
        event.RetryCount + 1,
        actor,
        lambda: seal({"Amount": payment.Amount, "Currency": payment.Currency, "ProcessorID": payment.ProcessorID}),
    )
    # Opened before any processor call: a SecureToken made for another charge is refused here.
    secret = open_secure_token(
        payment, key_arn, earlier_attempt=lambda: event.RetryCount > 0 or bool(attempts.on_record())
    )
    recorder = CallRecorder(
        payment.TransactionID, event.ExecutionArn, event.RetryCount + 1, actor, processor, seal, audit
    )
    try:
        charged = charge(
            event,
            processor=processor,
            source=lambda: payment_source(secret, payment.TransactionID, vault),
            card_last4=secret.get("Number", "")[-4:] or None,
            recorder=recorder,
            attempts=attempts,
            still_pending=still_pending,
            seconds_left=seconds_left,
        )
    except ProcessorRejected:
        remove_after_outcome("CVV", lambda: vault.remove_cvv(payment.TransactionID))
        raise
    remove_after_outcome("CVV", lambda: vault.remove_cvv(payment.TransactionID))
    return charged


def refuse_unless_pending(entries: list[LedgerEntry], event: ChargeEvent) -> None:
    """Charge only a payment the ledger holds as pending, for exactly this request, not yet ended.

    CallProcessor can be invoked by more than its state machine (an account administrator can);
    an input replayed from a settled payment's history, or forged with another amount or token,
    must never reach the processor.
    """
    payment = event.Payment
    if any(entry.is_terminal for entry in entries):
        raise ChargeRefused("the payment has already ended; nothing was sent")
    pending = next((entry for entry in entries if entry.Status == ledger.PENDING), None)
    if pending is None:
        raise ChargeRefused("the ledger holds no PAYMENT-PENDING entry for this payment; nothing was sent")
    recorded = (
        pending.Amount,
        pending.Currency,
        pending.ProcessorID,
        pending.SecureToken,
        pending.ExecutionArn,
        pending.Capture or AUTOMATIC,
    )
    asked = (
        payment.Amount,
        payment.Currency,
        payment.ProcessorID,
        payment.SecureToken,
        event.ExecutionArn,
        payment.Capture,
    )
    if recorded != asked:
        raise ChargeRefused("the request differs from the ledger's PAYMENT-PENDING entry; nothing was sent")


def charge(
    event: ChargeEvent,
    *,
    processor: Processor,
    source: PaymentSource,
    card_last4: str | None,
    recorder: CallRecorder,
    attempts: SaleAttempts,
    still_pending: Callable[[], None] = lambda: None,
    seconds_left: Callable[[], float] = lambda: 900.0,
    sleep: Callable[[float], None] | None = None,
    clock: Clock | None = None,
) -> ChargeResult:
    """Send the sale once; with an earlier attempt on record, first wait for it and ask about it.

    `still_pending` raises ChargeRefused if the payment ended meanwhile (it is asked again after a
    wait, just before a new claim); `seconds_left` is the time this invocation has left, now.
    """
    payment = event.Payment
    amount = Decimal(payment.Amount)
    expected = ExpectedSale(payment.TransactionID, amount, payment.Currency, card_last4, _kind(payment))

    def send(method: CardDetails | StoredToken) -> ProcessorCall:
        instruction = PaymentInstruction(payment.TransactionID, amount, payment.Currency, method, payment.Description)
        return processor.authorize(instruction) if payment.Capture == MANUAL else processor.sale(instruction)

    return send_once(
        processor=processor,
        reference=payment.TransactionID,
        attempts=attempts,
        recorder=recorder,
        retried=event.RetryCount > 0,
        adopt=lambda lookup: processor.sale_found(lookup, expected),
        prepare=source,
        send=send,
        still_pending=still_pending,
        seconds_left=seconds_left,
        sleep=sleep,
        clock=clock,
    )


def _kind(payment: PaymentFacts) -> SaleKind:
    return "authorization" if payment.Capture == MANUAL else "sale"


def open_secure_token(payment: PaymentFacts, key_arn: str, earlier_attempt: Callable[[], bool]) -> dict[str, Any]:
    """The SecureToken's content, if it was made for exactly this payment, amount, currency and processor.

    A token that will not open is refused; but if an earlier attempt may have sent a sale (a retry, a
    claim on record), what it did is unknown, and saying "nothing was sent" could hide a charge (a
    token sealed by another version of Tokenize, say): the outcome is then unknown instead.
    """
    try:
        return crypto.decrypt_token(payment.SecureToken, key_arn=key_arn, binding=token_binding(payment))
    except crypto.BoundToAnotherUse:
        if earlier_attempt():
            raise ProcessorTimeout(
                "the SecureToken does not open for this charge, and an earlier attempt may have sent a sale"
            ) from None
        raise ChargeRefused("the SecureToken was made for another charge; nothing was sent") from None


def payment_source(secret: dict[str, Any], transaction_id: str, vault: CardVault) -> CardDetails | StoredToken:
    """The card (or processor token) from the SecureToken, and the CVV from the vault, in memory only."""
    if secret["Type"] != "card":
        return StoredToken(secret["Token"])
    cvv = vault.cvv(transaction_id)
    if cvv is None:
        raise CardNotVaulted("the card's CVV is no longer in the vault (expired or removed); no sale was sent")
    return CardDetails(
        number=secret["Number"],
        expiry_month=secret["ExpiryMonth"],
        expiry_year=secret["ExpiryYear"],
        cvv=cvv,
        holder_name=secret.get("HolderName"),
    )
