"""For upstream services: start a payment through the intake, so that a duplicate can never become a second charge;
and capture, void or refund it, each started once under its OperationID.

The intake (a Lambda function, invoked synchronously) validates the request, keeps the card out of
Step Functions and starts the execution named after the TransactionID. The same request again is
answered with the same execution; a different request under a used TransactionID is refused with
DuplicateTransactionID, changing nothing. A refusal is raised as a typed error with the field and
the reason; an intake that could not finish (throttled, a dependency down) raises
IntakeUnavailable, and the same call may simply be repeated.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})


class PaymentRefused(Exception):
    """The intake refused the request; nothing was written, started or charged."""

    def __init__(self, error_type: str, detail: dict[str, Any]) -> None:
        self.error_type = error_type
        self.field: str | None = detail.get("Field")
        self.reason: str = str(detail.get("Message", ""))
        self.transaction_id: str | None = detail.get("TransactionID")
        super().__init__(f"{error_type}: {self.field or ''} {self.reason}".strip())


class InvalidPaymentRequest(PaymentRefused):
    """The request is invalid: `field` says which field, `reason` why."""


class DuplicateTransactionID(PaymentRefused):
    """The TransactionID was already used for a different payment request."""


class IntakeUnavailable(Exception):
    """The intake failed for a reason of its own; the same request may be sent again."""


_REFUSALS = {"InvalidPaymentRequest": InvalidPaymentRequest, "DuplicateTransactionID": DuplicateTransactionID}


@dataclass(frozen=True)
class StartedPayment:
    transaction_id: str
    execution_arn: str
    already_started: bool  # True when this call found the payment started earlier


def start_payment(
    lambda_client: Any, intake_function: str, request: dict[str, Any], attempts: int = 4, backoff_seconds: float = 0.2
) -> StartedPayment:
    """Invoke the intake with the payment request; its answer names the payment's execution.

    An intake that failed for a reason of its own is asked again (it is idempotent), up to
    `attempts` times with exponential backoff; a refusal is final and raised at once.
    """
    for attempt in range(1, attempts + 1):
        try:
            return _invoke_intake(lambda_client, intake_function, request)
        except IntakeUnavailable:
            if attempt == attempts:
                raise
            time.sleep(backoff_seconds * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


def _invoke_intake(lambda_client: Any, intake_function: str, request: dict[str, Any]) -> StartedPayment:
    reply = lambda_client.invoke(FunctionName=intake_function, Payload=json.dumps(request).encode())
    payload = json.loads(reply["Payload"].read() or b"{}")
    if reply.get("FunctionError"):
        error_type = str(payload.get("errorType", ""))
        if error_type in _REFUSALS:
            raise _REFUSALS[error_type](error_type, _detail(payload.get("errorMessage", "")))
        raise IntakeUnavailable(f"the intake failed ({error_type or 'unknown error'}); the request may be repeated")
    return StartedPayment(payload["TransactionID"], payload["ExecutionArn"], bool(payload.get("AlreadyStarted")))


def execution_arn_for(state_machine_arn: str, transaction_id: str) -> str:
    return state_machine_arn.replace(":stateMachine:", ":execution:") + ":" + transaction_id


def wait_for_payment(
    stepfunctions: Any, execution_arn: str, timeout_seconds: float = 300, poll_seconds: float = 0.05
) -> dict[str, Any]:
    """DescribeExecution until the execution ends. A real service would rather react to its events."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        description: dict[str, Any] = stepfunctions.describe_execution(executionArn=execution_arn)
        if description["status"] in TERMINAL:
            return description
        if time.monotonic() > deadline:
            raise TimeoutError(f"{execution_arn} still running after {timeout_seconds}s")
        time.sleep(poll_seconds)


def _detail(message: str) -> dict[str, Any]:
    try:
        value = json.loads(message)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# -- the operations after a payment: capture, void, refund ------------------------------------------


class DuplicateOperationID(Exception):
    """The OperationID was already used for a different operation; nothing was started."""


class InvalidOperation(Exception):
    """The operation request is malformed (`field` says which, `reason` why); nothing was started.

    Checked here, before StartExecution, because Step Functions keeps an execution's name and input
    for 90 days: an OperationID or a Reason holding a card number must never reach it.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field} {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class StartedOperation:
    operation_id: str
    execution_arn: str
    already_started: bool  # True when this call found the same operation started earlier


def capture(
    stepfunctions: Any, state_machine_arn: str, transaction_id: str, operation_id: str, amount: str | None = None
) -> StartedOperation:
    """Capture an authorization, all of it or `amount` (once: the rest is released)."""
    return start_operation(
        stepfunctions, state_machine_arn, _operation("capture", transaction_id, operation_id, amount)
    )


def void(stepfunctions: Any, state_machine_arn: str, transaction_id: str, operation_id: str) -> StartedOperation:
    """Void an unsettled sale or capture, or release an authorization."""
    return start_operation(stepfunctions, state_machine_arn, _operation("void", transaction_id, operation_id, None))


def refund(
    stepfunctions: Any,
    state_machine_arn: str,
    transaction_id: str,
    operation_id: str,
    amount: str | None = None,
    reason: str | None = None,
) -> StartedOperation:
    """Refund all that is left of a settled charge, or `amount` of it."""
    request = _operation("refund", transaction_id, operation_id, amount)
    if reason is not None:
        request["Reason"] = reason
    return start_operation(stepfunctions, state_machine_arn, request)


def start_operation(stepfunctions: Any, state_machine_arn: str, request: dict[str, Any]) -> StartedOperation:
    """StartExecution named after the OperationID: the same operation again finds its execution (already
    started); another operation under a used OperationID raises DuplicateOperationID, starting nothing."""
    from payments.operations import InvalidOperationRequest, parse_operation

    try:
        parse_operation(request)
    except InvalidOperationRequest as invalid:
        raise InvalidOperation(invalid.field, invalid.message) from None
    operation_id = str(request["OperationID"])
    arn = execution_arn_for(state_machine_arn, operation_id)
    try:
        started = stepfunctions.start_execution(
            stateMachineArn=state_machine_arn, name=operation_id, input=json.dumps(request, sort_keys=True)
        )
    except stepfunctions.exceptions.ExecutionAlreadyExists:
        existing = stepfunctions.describe_execution(executionArn=arn)
        if _json_object(existing.get("input", "")) != request:
            raise DuplicateOperationID(
                "this OperationID was already used for a different operation; nothing was started"
            ) from None
        return StartedOperation(operation_id, arn, already_started=True)
    # Step Functions answers a repeated StartExecution with the same input with the running execution.
    return StartedOperation(operation_id, started["executionArn"], already_started=False)


def _operation(kind: str, transaction_id: str, operation_id: str, amount: str | None) -> dict[str, Any]:
    request: dict[str, Any] = {"Operation": kind, "OperationID": operation_id, "TransactionID": transaction_id}
    if amount is not None:
        request["Amount"] = amount
    return request


def _json_object(text: str) -> dict[str, Any]:
    return _detail(text)
