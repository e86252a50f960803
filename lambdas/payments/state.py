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

import inspect
import json
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Final, Literal, Self, TypeVar, Union, cast, dataclass_transform

from payments import snapshot
from payments.errors import WorkflowStateInvalid

APPROVED: Final = "APPROVED"
DECLINED: Final = "DECLINED"
ERROR: Final = "ERROR"
# The capture methods (PaymentFacts.Capture; payments.models validates them in the request).
AUTOMATIC: Final = "automatic"
MANUAL: Final = "manual"


T = TypeVar("T")


class _Factory:
    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make


def field(*, default_factory: Callable[[], T]) -> T:
    """A field's default made anew for each model, as dataclasses.field(default_factory=...)."""
    return cast(T, _Factory(default_factory))


@dataclass_transform(frozen_default=True, kw_only_default=True, field_specifiers=(field,))
class _State:
    """A frozen model made with keyword arguments, each field checked against its type as it is made (an
    object given for a model field becomes that model); `parse_state` builds one from a step's input,
    ignoring unknown keys.

    Neither pydantic nor dataclasses: every step imports this module, pydantic was a third of a step's
    cold import, and dataclasses' generated methods ~0.6 ms a model (bench/README.md, cold start). The
    request the intake reads is still pydantic's (payments.models): that is the API's boundary; this is
    the state our own steps wrote."""

    _names: ClassVar[tuple[str, ...]] = ()
    _defaults: ClassVar[dict[str, Any]] = {}
    _types: ClassVar[dict[str, Any] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        names, defaults = dict.fromkeys(cls._names), dict(cls._defaults)
        for name, annotation in inspect.get_annotations(cls).items():
            if str(annotation).startswith(("ClassVar", "typing.ClassVar")):
                raise TypeError(f"{cls.__name__}.{name}: a model holds fields only")
            names[name] = None
            if name in cls.__dict__:
                default = cls.__dict__[name]
                if isinstance(default, list | dict | set):  # one object for every model: use field(default_factory=...)
                    raise TypeError(f"{cls.__name__}.{name}: a mutable default would be shared")
                defaults[name] = default
                delattr(cls, name)
        cls._names, cls._defaults = tuple(names), defaults
        cls._types = None  # resolved on first use: the annotations may name models defined later

    def __init__(self, **values: Any) -> None:
        model = type(self)
        types_of = model._types if model._types is not None else _resolve(model)
        unknown = values.keys() - types_of.keys()
        if unknown:  # only code can get here (parse_state takes the fields it knows): no name is echoed
            raise TypeError(f"{model.__name__}: {len(unknown)} unknown field(s)")
        for name, annotation in types_of.items():
            if name in values:
                value = values[name]
            elif name in model._defaults:
                default = model._defaults[name]
                value = default.make() if isinstance(default, _Factory) else default
            else:
                raise _Mismatch((name,), "is required")
            object.__setattr__(self, name, _value(annotation, value, (name,)))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._names)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = (f"{name}={'...' if name in _NOT_SHOWN else repr(getattr(self, name))}" for name in self._names)
        return f"{type(self).__name__}({', '.join(shown)})"

    def copy_with(self, **changes: Any) -> Self:
        """A copy with the fields given changed, checked as any new model is."""
        return type(self)(**{name: getattr(self, name) for name in self._names} | changes)

    def to_dict(self) -> dict[str, Any]:
        """The model as the JSON object a later step reads (a copy: nothing in it is shared with the model)."""
        return {name: _plain(getattr(self, name)) for name in self._names}


# Never in a repr (a test's failure, a log line, an f-string): the raw input of a direct StartExecution, which
# could hold anything a caller sent; the processor's answer; the SecureToken.
_NOT_SHOWN = frozenset({"Request", "Processor", "Result", "SecureToken"})


def _resolve(model: type[_State]) -> dict[str, Any]:
    """The model's field types, each checked to be one `_value` knows, so that a model it cannot check
    fails on its first use in any test, not on the first input that reaches the unknown branch."""
    hints = typing.get_type_hints(model)
    resolved = {name: hints[name] for name in model._names}
    for name, annotation in resolved.items():
        if not _supported(annotation):
            raise TypeError(f"{model.__name__}.{name}: {annotation!r} is not a type the workflow state uses")
    model._types = resolved
    return resolved


def _supported(annotation: Any) -> bool:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation in (Any, str, bool, int) or (isinstance(annotation, type) and issubclass(annotation, _State)):
        return True
    if origin is Literal:
        return all(type(arg) is str for arg in args)
    if origin is Union or origin is types.UnionType:
        present = [arg for arg in args if arg is not type(None)]
        return len(present) == 1 and type(None) in args and _supported(present[0])
    if origin is dict:
        return all(_supported(arg) for arg in args)
    return False


@snapshot.warm_up
def resolve_models() -> None:
    """Resolve every workflow model's field types now, as its first use would: before a SnapStart snapshot."""
    pending = list(_State.__subclasses__())
    while pending:
        model = pending.pop()
        pending += model.__subclasses__()
        if model._types is None and model.__module__.startswith("payments."):
            _resolve(model)


def _plain(value: Any) -> Any:
    if isinstance(value, _State):
        return value.to_dict()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


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
    Ledger: LedgerPosition = field(default_factory=LedgerPosition)
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


Model = TypeVar("Model", bound=_State)


class _Mismatch(ValueError):
    def __init__(self, path: tuple[str, ...], problem: str) -> None:
        super().__init__(f"{'.'.join(path) or '(the state)'}: {problem}")
        self.path, self.problem = path, problem

    def under(self, path: tuple[str, ...]) -> _Mismatch:
        return _Mismatch((*path, *self.path), self.problem)


def parse_state(event: Any, model: type[Model]) -> Model:
    """Parse a step's input; a mismatch is a workflow bug, reported without echoing the input."""
    if isinstance(event, str | bytes):
        try:
            event = json.loads(event)
        except (ValueError, RecursionError):
            raise WorkflowStateInvalid(f"{model.__name__}: (the state): is not JSON") from None
    try:
        return _model(model, event, ())
    except _Mismatch as mismatch:
        raise WorkflowStateInvalid(f"{model.__name__}: {mismatch}") from None


def _model(model: type[Model], value: Any, path: tuple[str, ...]) -> Model:
    if isinstance(value, model):
        return value
    if not isinstance(value, Mapping):
        raise _Mismatch(path, "must be an object")
    try:
        return model(**{name: value[name] for name in model._names if name in value})
    except _Mismatch as mismatch:
        raise mismatch.under(path) from None


def _value(annotation: Any, value: Any, path: tuple[str, ...]) -> Any:
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return value
    if isinstance(annotation, type) and issubclass(annotation, _State):
        return _model(annotation, value, path)
    if annotation is str or annotation is bool:
        if type(value) is not annotation:
            raise _Mismatch(path, f"must be a {'string' if annotation is str else 'boolean'}")
        return value
    if annotation is int:
        if type(value) is not int:
            raise _Mismatch(path, "must be an integer")
        return value
    if origin is Literal:
        allowed = typing.get_args(annotation)
        if type(value) is not str or value not in allowed:
            raise _Mismatch(path, "must be one of " + ", ".join(map(repr, allowed)))
        return value
    if origin is Union or origin is types.UnionType:
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        (present,) = (option for option in options if option is not type(None))
        return _value(present, value, path)
    if origin is dict:
        key_type, value_type = typing.get_args(annotation)
        if not isinstance(value, Mapping):
            raise _Mismatch(path, "must be an object")
        return {
            _value(key_type, k, (*path, "(key)")): _value(value_type, v, (*path, "(value)")) for k, v in value.items()
        }
    raise TypeError(f"{path}: {annotation!r} is not a type the workflow state uses")
