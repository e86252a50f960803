"""Turns an execution input into a PaymentRequest, or into one InvalidPaymentRequest naming the field."""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from payments.errors import InvalidPaymentRequest
from payments.models import PaymentRequest

_DISCRIMINATOR_TAGS = {"card", "processor_token"}
_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")

# Pydantic's own messages for these never echo input, but we state them in our words.
_MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "is not an allowed field",
    "union_tag_invalid": "must be 'card' or 'processor_token'",
    "union_tag_not_found": "is required ('card' or 'processor_token')",
    "literal_error": "is not a supported value",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "int_type": "must be an integer",
    "int_from_float": "must be an integer",
    "string_type": "must be a string",
    "greater_than_equal": "is below the allowed range",
    "less_than_equal": "is above the allowed range",
}


def parse_payment_request(event: Any, execution_name: str | None = None) -> PaymentRequest:
    """Validate the execution input. The TransactionID must also be the execution's name."""
    transaction_id = _claimed_transaction_id(event)
    try:
        request = PaymentRequest.model_validate(event)
    except ValidationError as error:
        field, message = _first_problem(error)
        raise InvalidPaymentRequest(field, message, transaction_id) from None
    if execution_name is not None and request.TransactionID != execution_name:
        raise InvalidPaymentRequest("TransactionID", "must equal the execution name", transaction_id)
    return request


def _claimed_transaction_id(event: Any) -> str | None:
    """The TransactionID to report back, only if it is well formed (it might be anything)."""
    if isinstance(event, dict):
        candidate = event.get("TransactionID")
        try:
            return PaymentRequest._transaction_id(candidate)
        except Exception:
            return None
    return None


def _first_problem(error: ValidationError) -> tuple[str, str]:
    problem = error.errors(include_input=False, include_url=False)[0]
    context = problem.get("ctx") or {}
    location = [str(part) for part in problem["loc"]]
    if len(location) >= 2 and location[0] == "PaymentMethod" and location[1] in _DISCRIMINATOR_TAGS:
        del location[1]
    # A field name is caller-supplied text too: an unexpected one is named only if it looks like a name.
    location = [part if _FIELD_NAME.match(part) else "[unexpected field]" for part in location]
    field = context.get("field") or ".".join(location) or "$"
    if problem["type"] == "payment_request":
        message = context["message"]
    else:
        message = _MESSAGES.get(problem["type"], "is not valid")
    if field == "PaymentMethod" and problem["type"] in ("union_tag_invalid", "union_tag_not_found"):
        field = "PaymentMethod.Type"
    return field, message
