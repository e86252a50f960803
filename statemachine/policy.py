"""The one retry and catch policy every Lambda task of every workflow follows, and the task builder that applies it.

See docs/architecture.md#retry-and-catch-policy. A change of policy is one edit here, then `make asl`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from payments import topology

# Errors of the Lambda service and runtime, not of our code: the invoke may not have run at all,
# or died mid-way. Our handlers are idempotent, so running them again is always safe.
_SERVICE = "ServiceException AWSLambdaException SdkClientException TooManyRequestsException Unknown"
LAMBDA_SERVICE_ERRORS: Final = (
    *(f"Lambda.{name}" for name in _SERVICE.split()),
    "Runtime.ExitError",
    "Sandbox.Timedout",
)
# Our own transient errors: DynamoDB or KMS still failing after the SDK's own retries.
DEPENDENCY_ERRORS: Final = ("StorageUnavailable", "KeyServiceUnavailable")

EXECUTION_ARN: Final = "$$.Execution.Id"
_UNSET = object()


@dataclass(frozen=True)
class Retry:
    """One retrier: exponential backoff with full jitter, or `MaxAttempts: 0` for errors never retried."""

    errors: tuple[str, ...]
    max_attempts: int
    interval_seconds: int = 1
    max_delay_seconds: int = 30

    def asl(self) -> dict[str, Any]:
        if self.max_attempts == 0:
            return {"ErrorEquals": list(self.errors), "MaxAttempts": 0}
        timing = {"IntervalSeconds": self.interval_seconds, "MaxAttempts": self.max_attempts, "BackoffRate": 2}
        return {"ErrorEquals": list(self.errors), **timing, "MaxDelaySeconds": self.max_delay_seconds} | {
            "JitterStrategy": "FULL"
        }


LAMBDA_SERVICE_RETRY: Final = Retry(LAMBDA_SERVICE_ERRORS, max_attempts=4, max_delay_seconds=20)
DEPENDENCY_RETRY: Final = Retry(DEPENDENCY_ERRORS, max_attempts=5, max_delay_seconds=30)
# Every Lambda task retries these, in this order, after any retrier of its own that must match first.
STANDARD_RETRIES: Final = (LAMBDA_SERVICE_RETRY, DEPENDENCY_RETRY)


@dataclass(frozen=True)
class Catch:
    errors: tuple[str, ...]
    next: str
    result_path: str | None = "$.Failure"

    def asl(self) -> dict[str, Any]:
        return {"ErrorEquals": list(self.errors), "ResultPath": self.result_path, "Next": self.next}


def catch_all(next_state: str, result_path: str | None = "$.Failure") -> Catch:
    return Catch(("States.ALL",), next_state, result_path)


def lambda_task(
    step: str,
    *,
    comment: str,
    payload: dict[str, Any],
    next_state: str,
    catch: Sequence[Catch],
    function_step: str | None = None,
    timeout_seconds: int = 30,
    output_path: str | None = None,
    result_selector: dict[str, str] | None = None,
    result_path: str | object | None = _UNSET,
    retry_first: Sequence[Retry] = (),
    retry_after: Sequence[Retry] = (),
) -> dict[str, Any]:
    """A `lambda:invoke` Task under the standard policy, with `retry_first` (errors never retried) before
    the standard retriers and `retry_after` (a step's own transient errors) after them."""
    task: dict[str, Any] = {
        "Type": "Task",
        "Comment": comment,
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": _placeholder(function_step or step), "Payload": payload},
        "TimeoutSeconds": timeout_seconds,
    }
    optional = {"OutputPath": output_path, "ResultSelector": result_selector}
    task |= {key: value for key, value in optional.items() if value is not None}
    if result_path is not _UNSET:
        task["ResultPath"] = result_path
    task["Retry"] = [retry.asl() for retry in (*retry_first, *STANDARD_RETRIES, *retry_after)]
    task["Catch"] = [handler.asl() for handler in catch]
    task["Next"] = next_state
    return task


def _placeholder(step: str) -> str:
    return "${" + topology.function_by_step(step).placeholder + "}"  # what CDK (and the local stack) substitute


def fail(error: str, comment: str | None = None, **cause: str) -> dict[str, Any]:
    """A Fail state; `cause` is `Cause="…"` or `CausePath="…"`."""
    return {"Type": "Fail", **({"Comment": comment} if comment else {}), "Error": error, **cause}


def choice(variable: str, cases: dict[str, str], default: str) -> dict[str, Any]:
    """A Choice on one string variable: `cases` maps each value to the next state."""
    branches = [{"Variable": variable, "StringEquals": value, "Next": target} for value, target in cases.items()]
    return {"Type": "Choice", "Choices": branches, "Default": default}


def terminal_entry(
    step: str, *, function_step: str, comment: str, payload: dict[str, str], on_error: Catch, next_state: str
) -> dict[str, Any]:
    """A step writing a terminal ledger entry: the function's answer, the API response, goes to $.Result.Response."""
    return lambda_task(
        step,
        function_step=function_step,
        comment=comment,
        payload=payload,
        result_selector={"Response.$": "$.Payload"},
        result_path="$.Result",
        catch=[on_error],
        next_state=next_state,
    )


def unsuccessful_entry(status: str) -> dict[str, str]:
    """The payload of a declined or failed terminal entry: the whole state (what failed, if anything)."""
    return payload_of(State="$", Status=status, ExecutionArn=EXECUTION_ARN)


def when_present(variable: str, then: str, otherwise: str) -> dict[str, Any]:
    """A Choice: `then` if `variable` is in the state, else `otherwise` (a path a Catch may have left out)."""
    return {
        "Type": "Choice",
        "Choices": [{"Variable": variable, "IsPresent": True, "Next": then}],
        "Default": otherwise,
    }


def payload_of(*paths: str, **fields: str) -> dict[str, str]:
    """A Lambda payload: `payload_of("Payment", ExecutionArn=EXECUTION_ARN)` → {"Payment.$": "$.Payment", …}."""
    selected = {f"{path}.$": f"$.{path}" for path in paths}
    for name, value in fields.items():
        selected[f"{name}.$" if value.startswith("$") else name] = value
    return selected
