"""For upstream services: start a payment through the intake, so that a duplicate can never become a second charge.

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
