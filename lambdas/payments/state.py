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

import json
from typing import Any, Final, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from payments import snapshot
from payments.errors import WorkflowStateInvalid

APPROVED: Final = "APPROVED"
DECLINED: Final = "DECLINED"
ERROR: Final = "ERROR"
# The capture methods (PaymentFacts.Capture; payments.models validates them in the request).
AUTOMATIC: Final = "automatic"
MANUAL: Final = "manual"


class _State(BaseModel):
    # defer_build: a model's validator is built when it first validates, so each step builds the few models it
    # reads (and those they hold), not all of them at import; before a SnapStart snapshot, all (build_models).
    model_config = ConfigDict(extra="ignore", frozen=True, hide_input_in_errors=True, defer_build=True)


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
        return _parse(event, model)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors(include_input=False))
        raise WorkflowStateInvalid(f"{model.__name__}: {problems}") from None


_ADAPTERS: dict[type[BaseModel], TypeAdapter[Any]] = {}


def _parse(event: Any, model: type[Model]) -> Model:
    """What Powertools' parser `parse(event, model)` does with a model and no envelope (one TypeAdapter per
    model, kept; a str is validated as JSON, falling back to json.loads where pydantic cannot), without
    importing its package, whose event models and pydantic network types every step would load at start."""
    if model not in _ADAPTERS:
        _ADAPTERS[model] = TypeAdapter(model)
    adapter: TypeAdapter[Model] = _ADAPTERS[model]
    if isinstance(event, str):
        try:
            return adapter.validate_json(event)
        except NotImplementedError:
            event = json.loads(event)
    return adapter.validate_python(event)


@snapshot.warm_up
def build_models() -> None:
    """Build every model's validator now, as its first use would: before a SnapStart snapshot."""
    for model in list(globals().values()):
        if isinstance(model, type) and issubclass(model, _State) and model is not _State:
            model.model_rebuild(force=True)
