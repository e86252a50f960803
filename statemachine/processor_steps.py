"""The two steps every workflow that calls a processor shares: the call itself, and Normalize.

The call retries what processed nothing or left the outcome unknown (it asks before it sends again),
and anything else twice; `never_retried` names what repeating cannot help.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from payments import topology
from statemachine.policy import EXECUTION_ARN, Catch, Retry, lambda_task, payload_of

PROCESSOR_RETRY = Retry(("ProcessorUnavailable", "ProcessorTimeout", "States.Timeout"), 4, interval_seconds=2)
PROCESSOR_LAST_RESORT = Retry(("States.ALL",), 2, interval_seconds=2)
OUTCOME_FIELDS = ("Status", "ReasonCode", "ReasonMessage", "ProcessorTransactionID", "ApprovalCode")


def processor_call(
    step: str, *, comment: str, subject: str, never_retried: tuple[str, ...], catch: Sequence[Catch], next_state: str
) -> dict[str, Any]:
    """The call step: `subject` ("Payment", "Operation") is what it is given; its answer goes to $.Processor."""
    return lambda_task(
        step,
        comment=comment,
        payload=payload_of(subject, ExecutionArn=EXECUTION_ARN, RetryCount="$$.State.RetryCount"),
        timeout_seconds=topology.PROCESSOR_TIME_BUDGET.state_timeout_seconds,
        result_selector={"Result.$": "$.Payload.Result", "Calls.$": "$.Payload.Calls"},
        result_path="$.Processor",
        retry_first=[Retry(never_retried, max_attempts=0)],
        retry_after=[PROCESSOR_RETRY, PROCESSOR_LAST_RESORT],
        catch=catch,
        next_state=next_state,
    )


def normalize(step: str, *, subject: str, on_error: Catch, next_state: str) -> dict[str, Any]:
    """The Normalize function on the call's result: its outcome goes to $.Outcome."""
    return lambda_task(
        step,
        function_step="Normalize",
        comment="Map the processor's result to APPROVED, DECLINED or ERROR.",
        payload=payload_of(
            TransactionID=f"$.{subject}.TransactionID",
            ProcessorID=f"$.{subject}.ProcessorID",
            Result="$.Processor.Result",
        ),
        result_selector={f"{name}.$": f"$.Payload.{name}" for name in OUTCOME_FIELDS},
        result_path="$.Outcome",
        catch=[on_error],
        next_state=next_state,
    )
