"""Tokenize: the card comes out of the vault into the SecureToken; the CVV stays in the vault."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any, Literal

from payments import crypto
from payments.cards import card_brand
from payments.errors import InvalidPaymentRequest
from payments.state import CardFacts, LedgerPosition, PaymentFacts

if TYPE_CHECKING:
    from payments.vault import CardVault
    from payments.workflow_input import WorkflowInput


def tokenize(request: WorkflowInput, *, key_arn: str, vault: CardVault) -> dict[str, Any]:
    """The workflow state: who pays what, with a SecureToken (`encrypt_token`) and card facts.

    The SecureToken holds card number, expiry and holder, never the CVV: the ledger keeps it. The
    CVV is read from the vault by CallProcessor only, and never enters the workflow state.
    """
    # Imported here, not with the module: CallProcessor imports this module for token_binding alone, and
    # has no use for the request models (the Tokenize step has loaded them by then, to parse its input).
    from payments.fingerprints import vaulted_request_fingerprint
    from payments.vault import CardNotInVault
    from payments.workflow_input import VaultedCardInput

    transaction_id = request.TransactionID
    card: CardFacts | None = None
    method_type: Literal["card", "processor_token"]
    if isinstance(request, VaultedCardInput):
        try:
            vaulted = vault.card(transaction_id)
        except CardNotInVault:
            raise InvalidPaymentRequest(
                "PaymentMethod.VaultReference", "no card is in the vault for this payment (expired?)", transaction_id
            ) from None
        # Only the request the intake vaulted the card for may use it: an execution started by anyone
        # else with this vault reference (another amount, say) is refused before anything is written.
        # The fingerprint is recomputed from this input and the vaulted card, never taken from the input.
        recomputed = vaulted_request_fingerprint(request, card_brand(vaulted.number), vaulted.number[-4:])
        if not hmac.compare_digest(vaulted.fingerprint, recomputed):
            raise InvalidPaymentRequest(
                "RequestFingerprint", "does not match the request the card was vaulted for", transaction_id
            )
        secret: dict[str, Any] = {
            "Type": "card",
            "Number": vaulted.number,
            "ExpiryMonth": vaulted.expiry_month,
            "ExpiryYear": vaulted.expiry_year,
            "HolderName": vaulted.holder_name,
        }
        card = CardFacts(Brand=card_brand(vaulted.number), Last4=vaulted.number[-4:])
        method_type = "card"
    else:
        secret = {"Type": "processor_token", "Token": request.PaymentMethod.Token}
        method_type = "processor_token"
    payment = PaymentFacts(
        TransactionID=transaction_id,
        Amount=request.Amount,
        Currency=request.Currency,
        ProcessorID=request.ProcessorID,
        PaymentMethodType=method_type,
        SecureToken=crypto.encrypt_token(secret, key_arn=key_arn, binding=token_binding(request)),
        Card=card,
        Description=request.Description,
        Capture=request.capture_mode,
        StartedVia="intake" if request.IntakeRequestId else "StartExecution",
        IntakeRequestId=request.IntakeRequestId,
    )
    return {"Payment": payment.to_dict(), "Ledger": LedgerPosition().to_dict()}


def token_binding(payment: WorkflowInput | PaymentFacts) -> crypto.TokenBinding:
    """The one charge a SecureToken may pay for: CallProcessor opens it with the same four values."""
    return crypto.TokenBinding(
        payment.TransactionID, payment.Amount, payment.Currency, payment.ProcessorID, payment.Capture or "automatic"
    )
