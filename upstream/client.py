"""For upstream services: start a payment so that a duplicate can never become a second charge.

The execution is named after the TransactionID, so Step Functions itself refuses a second
execution for the same payment. `start_payment` turns that refusal into an answer: the same
request again gets the existing execution; a different request under the same TransactionID
is an error that changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from payments.errors import PaymentError

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})


class DuplicateTransactionID(PaymentError):
    """The TransactionID was already used for a different payment request."""


@dataclass(frozen=True)
class StartedPayment:
    transaction_id: str
    execution_arn: str
    already_started: bool  # True when this call found the payment started earlier


def execution_arn_for(state_machine_arn: str, transaction_id: str) -> str:
    return state_machine_arn.replace(":stateMachine:", ":execution:") + ":" + transaction_id


def start_payment(stepfunctions: Any, state_machine_arn: str, request: dict[str, Any]) -> StartedPayment:
    """StartExecution named after the TransactionID; a duplicate resolves to the existing execution."""
    transaction_id = str(request["TransactionID"])
    body = json.dumps(request, sort_keys=True, separators=(",", ":"))
    try:
        started = stepfunctions.start_execution(stateMachineArn=state_machine_arn, name=transaction_id, input=body)
        return StartedPayment(transaction_id, started["executionArn"], already_started=False)
    except ClientError as error:
        if error.response["Error"]["Code"] != "ExecutionAlreadyExists":
            raise
    arn = execution_arn_for(state_machine_arn, transaction_id)
    existing = stepfunctions.describe_execution(executionArn=arn)
    if _fingerprint(existing.get("input", "")) != _fingerprint(body):
        raise DuplicateTransactionID(
            f"TransactionID {transaction_id} was already used for a different payment request ({arn}); "
            "nothing was started or changed"
        ) from None
    return StartedPayment(transaction_id, arn, already_started=True)


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


def _fingerprint(text: str) -> str:
    """Compares two requests without keeping either: canonical JSON, hashed."""
    try:
        canonical = json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    except ValueError:
        canonical = text
    return hashlib.sha256(canonical.encode()).hexdigest()
