"""The workflow state between steps, as models. Tokenize builds it; every later step reads it.

The state never holds a PAN or a CVV: the execution input holds a vault reference, and from
Tokenize on there is only the SecureToken (card number, expiry, holder; no CVV) and card facts.
Layout:  $.Payment   who pays what, with the SecureToken
         $.Ledger    the last ledger entry this execution wrote
         $.Processor {Result, Calls}, once CallProcessor has run
         $.Outcome   the normalized processor outcome
         $.Result    {Response}: the API response, set by the terminal ledger step
         $.Failure   {Error, Cause} from a Catch
"""

from __future__ import annotations

from typing import Any, Final, Literal, TypeVar

from aws_lambda_powertools.utilities.parser import parse
from pydantic import BaseModel, ConfigDict, ValidationError

from payments.errors import WorkflowStateInvalid

APPROVED: Final = "APPROVED"
DECLINED: Final = "DECLINED"
ERROR: Final = "ERROR"


class _State(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, hide_input_in_errors=True)


class CardFacts(_State):
    Brand: str
    Last4: str


class PaymentFacts(_State):
    TransactionID: str
    Amount: str
    Currency: str
    ProcessorID: str
    PaymentMethodType: Literal["card", "processor_token"]
    SecureToken: str
    Card: CardFacts | None = None
    Description: str | None = None
    Capture: Literal["automatic", "manual"] = "automatic"  # manual: authorize only (models.PaymentRequest)
    StartedVia: Literal["intake", "StartExecution"] = "StartExecution"
    IntakeRequestId: str | None = None  # the intake invocation that started it (see workflow_input)


class LedgerPosition(_State):
    LastEntry: int = 0


class ProcessorOutcome(_State):
    Status: Literal["APPROVED", "DECLINED", "ERROR"]
    ReasonCode: str | None = None
    ReasonMessage: str | None = None
    ProcessorTransactionID: str | None = None
    ApprovalCode: str | None = None


class CaughtError(_State):
    Error: str
    Cause: str | None = None


class WorkflowState(_State):
    """The whole state, as LedgerFailed sees it: anything after Payment may be missing."""

    Payment: PaymentFacts
    Ledger: LedgerPosition = LedgerPosition()
    Processor: dict[str, Any] | None = None
    Outcome: ProcessorOutcome | None = None
    Failure: CaughtError | None = None


class TokenizeEvent(_State):
    Request: Any
    ExecutionName: str
    ExecutionArn: str


class LedgerEvent(_State):
    Payment: PaymentFacts
    ExecutionArn: str


class ChargeEvent(_State):
    Payment: PaymentFacts
    ExecutionArn: str
    RetryCount: int = 0


class NormalizeEvent(_State):
    TransactionID: str
    ProcessorID: str
    Result: dict[str, str]


class OutcomeEvent(_State):
    Payment: PaymentFacts
    Ledger: LedgerPosition
    Outcome: ProcessorOutcome
    ExecutionArn: str


class FailureEvent(_State):
    State: WorkflowState
    Status: Literal["PAYMENT-DECLINED", "PAYMENT-FAILED"]
    ExecutionArn: str


class AuditEvent(_State):
    TransactionID: str  # the trail: a payment's, or one operation's (<TransactionID>/<OperationID>)
    Processor: dict[str, Any] | None = None
    ExecutionArn: str


Model = TypeVar("Model", bound=BaseModel)


def parse_state(event: Any, model: type[Model]) -> Model:
    """Parse a step's input; a mismatch is a workflow bug, reported without echoing the input."""
    try:
        return parse(event=event, model=model)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors(include_input=False))
        raise WorkflowStateInvalid(f"{model.__name__}: {problems}") from None
