"""Turns an execution input into a PaymentRequest, or into one InvalidPaymentRequest naming the field.

The Field of a rejection is always our own text: a field by its name in our models
(`TransactionID`, `PaymentMethod.Number`, ...), `$` for the request as a whole, or
`UNEXPECTED_FIELD` in place of any name no model of ours has (`PaymentMethod.` before it when the
unknown field sits in the payment method). A caller's field name is never repeated, however much
it looks like a name: it is caller-supplied text and may hold a card number.
"""

from __future__ import annotations

import re
from typing import Any, Literal, get_args, get_origin

from pydantic import ValidationError

from payments.errors import InvalidPaymentRequest
from payments.models import PaymentRequest, _Strict

UNEXPECTED_FIELD = "[unexpected field]"
_SURROGATES = re.compile("[\ud800-\udfff]")

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
    "string_unicode": "must not contain lone surrogates (U+D800 to U+DFFF): they are not characters",
    "greater_than_equal": "is below the allowed range",
    "less_than_equal": "is above the allowed range",
}


def parse_payment_request(event: Any, execution_name: str | None = None) -> PaymentRequest:
    """Validate the execution input. The TransactionID must also be the execution's name."""
    transaction_id = claimed_transaction_id(event)
    unreadable = _unreadable_field_name(event)
    if unreadable is not None:
        raise InvalidPaymentRequest(unreadable, "is not an allowed field", transaction_id)
    try:
        request = PaymentRequest.model_validate(event)
    except ValidationError as error:
        field, message = first_problem(error)
        raise InvalidPaymentRequest(field, message, transaction_id) from None
    if execution_name is not None and request.TransactionID != execution_name:
        raise InvalidPaymentRequest("TransactionID", "must equal the execution name", transaction_id)
    return request


def claimed_transaction_id(event: Any) -> str | None:
    """The TransactionID to report back, only if it is well formed (it might be anything)."""
    if isinstance(event, dict):
        candidate = event.get("TransactionID")
        try:
            return PaymentRequest._transaction_id(candidate)
        except Exception:
            return None
    return None


def _unreadable_field_name(event: Any) -> str | None:
    """Where a field name holds a lone surrogate (Pydantic cannot read it, so cannot say where); no
    field of the contract does, so such a field is always unexpected."""
    if not isinstance(event, dict):
        return None
    if any(isinstance(name, str) and _SURROGATES.search(name) for name in event):
        return UNEXPECTED_FIELD
    method = event.get("PaymentMethod")
    if isinstance(method, dict) and any(isinstance(name, str) and _SURROGATES.search(name) for name in method):
        return f"PaymentMethod.{UNEXPECTED_FIELD}"
    return None


def first_problem(error: ValidationError) -> tuple[str, str]:
    problem = error.errors(include_input=False, include_url=False)[0]
    context = problem.get("ctx") or {}
    names, tags = _vocabulary()
    location = list(problem["loc"])
    if len(location) >= 2 and location[0] == "PaymentMethod" and location[1] in tags:
        del location[1]
    field = context.get("field") or _known_path(location, names)
    if problem["type"] == "payment_request":
        message = context["message"]
    else:
        message = _MESSAGES.get(problem["type"], "is not valid")
    if field == "PaymentMethod" and problem["type"] in ("union_tag_invalid", "union_tag_not_found"):
        field = "PaymentMethod.Type"
    return field, message


def _vocabulary() -> tuple[frozenset[str], frozenset[str]]:
    """Every field name of our request models, and the payment method tags (the values of their `Type`).
    Read from the models each time: modules that extend the contract define their models later."""
    names: set[str] = set()
    tags: set[str] = set()
    models: list[type[_Strict]] = [_Strict]
    while models:
        model = models.pop()
        models.extend(model.__subclasses__())
        for name, info in model.model_fields.items():
            names.add(name)
            if name == "Type" and get_origin(info.annotation) is Literal:
                tags.update(str(tag) for tag in get_args(info.annotation))
    return frozenset(names), frozenset(tags)


def _known_path(location: list[int | str], names: frozenset[str]) -> str:
    """The error's location in our words: field names of our models kept, the first other one and
    anything under it replaced by UNEXPECTED_FIELD; `$` for the request itself."""
    named: list[str] = []
    for part in location:
        if not isinstance(part, str) or part not in names:
            named.append(UNEXPECTED_FIELD)
            break
        named.append(part)
    return ".".join(named) or "$"
