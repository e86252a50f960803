"""payments.state: each step reads its input into frozen models, checked field by field, without pydantic."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest

from payments import operation_state, state
from payments.errors import WorkflowStateInvalid
from payments.operation_state import OperationFailureEvent
from payments.state import (
    CardFacts,
    ChargeEvent,
    FailureEvent,
    LedgerPosition,
    NormalizeEvent,
    PaymentFacts,
    TokenizeEvent,
    _State,
    parse_state,
    resolve_models,
)

PAYMENT = {
    "TransactionID": "txn-0001",
    "Amount": "25.00",
    "Currency": "USD",
    "ProcessorID": "converge",
    "PaymentMethodType": "card",
    "SecureToken": "c2VhbGVk",
    "Card": {"Brand": "visa", "Last4": "1111"},
}
CHARGE = {"Payment": PAYMENT, "ExecutionArn": "arn:aws:states:us-east-1:123456789012:execution:Payment:txn-0001"}


def problem(event, model) -> str:
    with pytest.raises(WorkflowStateInvalid) as caught:
        parse_state(event, model)
    return str(caught.value)


def test_a_step_reads_nested_models_with_their_defaults_and_ignores_keys_it_does_not_know():
    step = parse_state({**CHARGE, "Processor": {"Calls": 1}, "RetryCount": 2}, ChargeEvent)

    assert step.RetryCount == 2
    assert step.Payment.Card is not None and step.Payment.Card.Last4 == "1111"
    assert (step.Payment.Capture, step.Payment.Description, step.Payment.StartedVia) == (
        "automatic",
        None,
        "StartExecution",
    )
    assert not hasattr(step, "Processor")


def test_the_state_may_come_as_json_text():
    assert parse_state(json.dumps(CHARGE), ChargeEvent) == parse_state(CHARGE, ChargeEvent)


def test_to_dict_gives_back_what_the_next_step_reads():
    step = parse_state(CHARGE, ChargeEvent)

    assert parse_state(step.to_dict(), ChargeEvent) == step
    assert step.to_dict()["Payment"]["Card"] == {"Brand": "visa", "Last4": "1111"}


def test_models_are_frozen():
    step = parse_state(CHARGE, ChargeEvent)

    with pytest.raises(AttributeError, match="is frozen"):
        step.RetryCount = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"ExecutionArn": None}, "ChargeEvent: ExecutionArn: must be a string"),
        ({"RetryCount": "2"}, "ChargeEvent: RetryCount: must be an integer"),
        ({"RetryCount": True}, "ChargeEvent: RetryCount: must be an integer"),
        ({"Payment": [PAYMENT]}, "ChargeEvent: Payment: must be an object"),
        ({"Payment": {**PAYMENT, "Amount": 25}}, "ChargeEvent: Payment.Amount: must be a string"),
        (
            {"Payment": {**PAYMENT, "PaymentMethodType": "cash"}},
            "ChargeEvent: Payment.PaymentMethodType: must be one of 'card', 'processor_token'",
        ),
        ({"Payment": {**PAYMENT, "Card": {"Brand": "visa"}}}, "ChargeEvent: Payment.Card.Last4: is required"),
    ],
)
def test_a_mismatch_names_the_field_and_the_rule_never_the_value(change, expected):
    assert problem({**CHARGE, **change}, ChargeEvent) == expected


def test_a_missing_field_is_named_with_its_path():
    payment = {key: value for key, value in PAYMENT.items() if key != "SecureToken"}

    assert problem({**CHARGE, "Payment": payment}, ChargeEvent) == "ChargeEvent: Payment.SecureToken: is required"


def test_a_dict_field_checks_keys_and_values_without_naming_either():
    secret = "4111111111111111"

    message = problem({"TransactionID": "t", "ProcessorID": "converge", "Result": {secret: 4}}, NormalizeEvent)

    assert message == "NormalizeEvent: Result.(value): must be a string"
    assert secret not in message


def test_text_that_is_not_json_is_refused_without_echoing_it():
    assert problem("4111111111111111 {", ChargeEvent) == "ChargeEvent: (the state): is not JSON"


def test_a_failure_event_reads_the_whole_state_with_what_is_missing_left_out():
    event = {"State": {"Payment": PAYMENT}, "Status": "PAYMENT-FAILED", "ExecutionArn": CHARGE["ExecutionArn"]}

    step = parse_state(event, FailureEvent)

    assert step.State.Ledger == LedgerPosition(LastEntry=0)
    assert (step.State.Outcome, step.State.Failure) == (None, None)


def test_operation_models_read_the_same_way():
    event = {"State": {"Operation": {"Operation": "void"}}, "Status": "FAILED", "ExecutionArn": "arn"}

    assert problem(event, OperationFailureEvent) == "OperationFailureEvent: State.Operation.OperationID: is required"


def test_a_model_made_in_code_is_checked_too_and_takes_nested_objects():
    facts = PaymentFacts(**{**PAYMENT, "Card": {"Brand": "visa", "Last4": "1111"}})  # type: ignore[arg-type]

    assert facts.Card is not None and facts.Card.Brand == "visa"
    with pytest.raises(ValueError, match=r"^Amount: must be a string$"):
        PaymentFacts(**{**PAYMENT, "Amount": 25})  # type: ignore[arg-type]


def test_copy_with_changes_only_what_it_is_given_and_checks_it():
    step = parse_state(CHARGE, ChargeEvent)

    changed = step.copy_with(RetryCount=1)

    assert (changed.RetryCount, changed.Payment, step.RetryCount) == (1, step.Payment, 0)
    with pytest.raises(ValueError, match=r"^RetryCount: must be an integer$"):
        step.copy_with(RetryCount="1")


def test_repr_never_shows_the_raw_request_the_processor_answer_or_the_secure_token():
    card = "4111111111111111"
    event = {"Request": {"PaymentMethod": {"Type": "card", "Number": card}}, "ExecutionName": "n", "ExecutionArn": "a"}

    shown = repr(parse_state(event, TokenizeEvent)) + repr(parse_state(CHARGE, ChargeEvent))

    assert card not in shown and PAYMENT["SecureToken"] not in shown
    assert "Request=..." in shown and "SecureToken=..." in shown and "TransactionID='txn-0001'" in shown


def test_an_unknown_keyword_is_counted_not_named():
    with pytest.raises(TypeError) as caught:
        CardFacts(Brand="visa", Last4="1111", **{"4111111111111111": 1})  # type: ignore[call-arg]

    assert str(caught.value) == "CardFacts: 1 unknown field(s)"


def test_state_nested_too_deep_is_refused_as_invalid_state():
    assert problem("[" * 100_000, ChargeEvent) == "ChargeEvent: (the state): is not JSON"


def test_a_literal_takes_exactly_a_string():
    class Loose(str):
        def __eq__(self, other):
            return True

        __hash__ = str.__hash__

    message = problem({**CHARGE, "Payment": {**PAYMENT, "PaymentMethodType": Loose("cash")}}, ChargeEvent)

    assert message == "ChargeEvent: Payment.PaymentMethodType: must be one of 'card', 'processor_token'"


def test_a_model_refuses_class_variables_and_shared_mutable_defaults():
    with pytest.raises(TypeError, match=r"^Tagged\.Kind: a model holds fields only$"):

        class Tagged(_State):
            Kind: ClassVar[str] = "x"

    with pytest.raises(TypeError, match=r"^Listed\.Tags: a mutable default would be shared$"):

        class Listed(_State):
            Tags: Any = []  # noqa: RUF012


def test_a_field_of_a_type_the_checks_do_not_know_fails_on_the_models_first_use():
    class Unknown(_State):
        Tags: list[str] | None = None

    with pytest.raises(TypeError, match=r"^Unknown\.Tags: .* is not a type the workflow state uses$"):
        Unknown()


def test_every_workflow_model_resolves_before_a_snapshot():
    models = [m for module in (state, operation_state) for m in vars(module).values() if isinstance(m, type)]
    models = [m for m in models if issubclass(m, _State) and m is not _State]

    resolve_models()

    assert len(models) >= 20
    assert all(model._types is not None for model in models)
