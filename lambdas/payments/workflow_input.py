"""The execution input: what StartExecution carries. Never a card: a vault reference and card facts instead.

The intake starts card payments with a `vaulted_card` payment method; a payment on a processor
token may also be started directly with the request as it is. A card number sent straight to
StartExecution is refused by Tokenize before anything is written or charged.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError

from payments.errors import InvalidPaymentRequest
from payments.intake import claimed_transaction_id, first_problem, parse_payment_request
from payments.models import CardPaymentMethod, PaymentRequest, ProcessorTokenPaymentMethod, _Strict

VAULTED_CARD = "vaulted_card"
USE_THE_INTAKE = (
    "must not carry card data: card payments start at the intake function, which keeps the card out of Step Functions"
)


class VaultedCardMethod(_Strict):
    """A card the intake put in the CardVault: the reference is the payment's own TransactionID."""

    Type: Literal["vaulted_card"]
    VaultReference: str
    Brand: str = Field(max_length=16)
    Last4: str = Field(pattern=r"^[0-9]{4}$")


# The intake's Lambda request id: CloudTrail's Invoke data event with this request id names the
# principal that asked for the payment (neither Lambda nor Step Functions hands it to us).
INTAKE_REQUEST_ID = Field(default=None, pattern=r"^[A-Za-z0-9-]{1,64}$")


class VaultedCardInput(PaymentRequest):
    PaymentMethod: VaultedCardMethod  # type: ignore[assignment]
    RequestFingerprint: str = Field(max_length=64)
    IntakeRequestId: str | None = INTAKE_REQUEST_ID


class TokenInput(PaymentRequest):
    PaymentMethod: ProcessorTokenPaymentMethod
    RequestFingerprint: str | None = Field(default=None, max_length=64)
    IntakeRequestId: str | None = INTAKE_REQUEST_ID


WorkflowInput = VaultedCardInput | TokenInput


def workflow_input(
    request: PaymentRequest, fingerprint: str, card_facts: dict[str, str] | None, intake_request_id: str
) -> dict[str, Any]:
    """The execution input for a request the intake accepted: the card replaced by its vault reference."""
    fields: dict[str, Any] = request.model_dump(mode="json", exclude_none=True)
    if isinstance(request.PaymentMethod, CardPaymentMethod):
        assert card_facts is not None
        fields["PaymentMethod"] = {"Type": VAULTED_CARD, "VaultReference": request.TransactionID, **card_facts}
    return fields | {"RequestFingerprint": fingerprint, "IntakeRequestId": intake_request_id}


def parse_workflow_input(event: Any, execution_name: str) -> WorkflowInput:
    """Tokenize's view of the execution input. A card in it is refused, whatever else is wrong."""
    method = event.get("PaymentMethod") if isinstance(event, dict) else None
    if isinstance(method, dict) and (method.get("Type") == "card" or "Number" in method or "Cvv" in method):
        raise InvalidPaymentRequest("PaymentMethod", USE_THE_INTAKE, claimed_transaction_id(event))
    if isinstance(method, dict) and method.get("Type") == VAULTED_CARD:
        try:
            parsed = VaultedCardInput.model_validate(event)
        except ValidationError as error:
            raise InvalidPaymentRequest(*first_problem(error), claimed_transaction_id(event)) from None
        if parsed.PaymentMethod.VaultReference != parsed.TransactionID:
            raise InvalidPaymentRequest("PaymentMethod.VaultReference", "must be the payment's TransactionID")
        _same_name(parsed, execution_name)
        return parsed
    if isinstance(event, dict) and "RequestFingerprint" in event:
        try:
            parsed_token = TokenInput.model_validate(event)
        except ValidationError as error:
            raise InvalidPaymentRequest(*first_problem(error), claimed_transaction_id(event)) from None
        _same_name(parsed_token, execution_name)
        return parsed_token
    request = parse_payment_request(event, execution_name=execution_name)
    return TokenInput.model_validate(request.model_dump())


def _same_name(parsed: PaymentRequest, execution_name: str) -> None:
    if parsed.TransactionID != execution_name:
        raise InvalidPaymentRequest("TransactionID", "must equal the execution name", parsed.TransactionID)
