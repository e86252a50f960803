"""payments.state: each step reads its input into frozen models, checked field by field, without pydantic."""

from __future__ import annotations

import json

import pytest

from payments.errors import WorkflowStateInvalid
from payments.operation_state import OperationFailureEvent
from payments.state import ChargeEvent, FailureEvent, LedgerPosition, NormalizeEvent, PaymentFacts, parse_state

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
