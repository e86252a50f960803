"""An operation's workflow state between steps, as models. AdmitOperation builds it; every later step reads it.

Layout:  $.Operation  what is captured, voided or refunded, of which payment (no card data at all)
         $.Ledger     the last ledger entry this execution wrote
         $.Admission  {Status}: ADMITTED, or the <KIND>-DECLINED refusal with its Response
         $.Processor  {Result, Calls}, once the processor step has run
         $.Outcome    the normalized processor outcome
         $.Result     {Response}: the operation's response, set by its terminal ledger step
         $.Failure    {Error, Cause} from a Catch
"""

from __future__ import annotations

from typing import Any, Literal

from payments.state import CaughtError, LedgerPosition, ProcessorOutcome, _State, field

ADMITTED = "ADMITTED"


class OperationFacts(_State):
    Operation: Literal["capture", "void", "refund"]
    OperationID: str
    TransactionID: str
    Amount: str  # what the operation moves; for a void, what the payment charged or authorized
    Currency: str
    ProcessorID: str
    ProcessorTransactionID: str  # the payment's own transaction at the processor
    OfAuthorization: bool = False  # an authorization never captured: a void releases it

    @property
    def audit_partition(self) -> str:
        """The operation's own audit trail (one chain per operation: operations of a payment may overlap)."""
        return f"{self.TransactionID}/{self.OperationID}"


class OperationStartEvent(_State):
    Request: Any
    ExecutionArn: str


class OperationEvent(_State):
    Operation: OperationFacts
    ExecutionArn: str


class OperationCallEvent(_State):
    Operation: OperationFacts
    ExecutionArn: str
    RetryCount: int = 0


class OperationOutcomeEvent(_State):
    Operation: OperationFacts
    Ledger: LedgerPosition
    Outcome: ProcessorOutcome
    ExecutionArn: str


class OperationState(_State):
    """The whole state, as OperationFailed sees it: anything after Operation may be missing."""

    Operation: OperationFacts
    Ledger: LedgerPosition = field(default_factory=LedgerPosition)
    Processor: dict[str, Any] | None = None
    Outcome: ProcessorOutcome | None = None
    Failure: CaughtError | None = None


class OperationFailureEvent(_State):
    State: OperationState
    Status: Literal["DECLINED", "FAILED"]
    ExecutionArn: str
