"""Tokenize: validate the request and replace the card data with ciphertext and safe facts."""

from __future__ import annotations

from typing import Any

from payments import crypto
from payments.cards import card_brand
from payments.models import CardPaymentMethod, PaymentRequest
from payments.state import CardFacts, LedgerPosition, PaymentFacts


def tokenize(request: PaymentRequest, *, key_arn: str) -> dict[str, Any]:
    """The first workflow state without a PAN: SecureToken (card data, no CVV) plus a CvvToken.

    The CVV is encrypted on its own so that the SecureToken, which the ledger keeps, never
    holds it; the CvvToken lives only in the workflow state until CallProcessor consumes it.
    """
    method = request.PaymentMethod
    transaction_id = request.TransactionID
    card: CardFacts | None = None
    cvv_token: str | None = None
    if isinstance(method, CardPaymentMethod):
        secret = {
            "Type": "card",
            "Number": method.Number,
            "ExpiryMonth": method.ExpiryMonth,
            "ExpiryYear": method.ExpiryYear,
            "HolderName": method.HolderName,
        }
        card = CardFacts(Brand=card_brand(method.Number), Last4=method.Number[-4:])
        cvv_token = crypto.encrypt(
            {"Cvv": method.Cvv}, key_arn=key_arn, transaction_id=transaction_id, purpose=crypto.PURPOSE_SECURE_TOKEN
        )
    else:
        secret = {"Type": "processor_token", "Token": method.Token}
    payment = PaymentFacts(
        TransactionID=transaction_id,
        Amount=request.Amount,
        Currency=request.Currency,
        ProcessorID=request.ProcessorID,
        PaymentMethodType=method.Type,
        SecureToken=crypto.encrypt_token(secret, key_arn=key_arn, transaction_id=transaction_id),
        Card=card,
        Description=request.Description,
    )
    return {
        "Payment": payment.model_dump(),
        "Ledger": LedgerPosition().model_dump(),
        "Processor": {"CvvToken": cvv_token},
    }
