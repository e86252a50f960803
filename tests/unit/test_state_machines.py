"""The committed ASL files are what the builder emits, and every task follows the one retry policy."""

import json

import pytest

from payments import topology
from statemachine import build, payment, policy

WORKFLOW = payment.definition()
TASKS = {name: state for name, state in WORKFLOW["States"].items() if state["Type"] == "Task"}
# Tasks that invoke one of our functions (the rest call an AWS service directly).
LAMBDA_TASKS = {name: state for name, state in TASKS.items() if state["Resource"] == "arn:aws:states:::lambda:invoke"}


def test_every_committed_asl_file_is_the_builders_output():
    assert build.stale_files() == [], "run `make asl` and commit the result"


def test_a_stale_file_is_reported(tmp_path):
    for name in build.WORKFLOWS:
        (tmp_path / name).write_text(build.render(build.WORKFLOWS[name]()).replace("Tokenize", "Tokenise", 1))

    assert build.stale_files(tmp_path) == list(build.WORKFLOWS)


def retriers(state):
    return {tuple(r["ErrorEquals"]): r["MaxAttempts"] for r in state.get("Retry", [])}


@pytest.mark.parametrize("name", sorted(LAMBDA_TASKS))
def test_every_lambda_task_retries_lambda_service_errors_and_our_transient_dependencies(name):
    attempts = retriers(LAMBDA_TASKS[name])

    assert attempts[policy.LAMBDA_SERVICE_ERRORS] == 4
    assert attempts[("StorageUnavailable", "KeyServiceUnavailable")] == 5


def test_the_payment_workflows_retry_table():
    # The whole policy, as an operator reads it: what each task retries, how often, in which order.
    standard = [(policy.LAMBDA_SERVICE_ERRORS, 4), (("StorageUnavailable", "KeyServiceUnavailable"), 5)]
    expected = {name: standard for name in LAMBDA_TASKS}
    expected["DiscardCard"] = [(("States.ALL",), 3)]
    expected["CallProcessor"] = [
        (("ProcessorRejected", "WorkflowStateInvalid", "CardNotVaulted", "ChargeRefused"), 0),
        *standard,
        (("ProcessorUnavailable", "ProcessorTimeout", "States.Timeout"), 4),
        (("States.ALL",), 2),
    ]
    actual = {
        name: [(tuple(r["ErrorEquals"]), r["MaxAttempts"]) for r in state["Retry"]] for name, state in TASKS.items()
    }

    assert actual == expected


def test_the_payment_workflows_catch_table():
    expected = {
        "Tokenize": [(("InvalidPaymentRequest",), "ReadRejection", "$"), (("States.ALL",), "DiscardCard", "$")],
        "DiscardCard": [(("States.ALL",), "TokenizationFailed", None)],
        "LedgerFailed": [(("States.ALL",), "LedgerUnrecorded", "$.Failure")],
        "Audit": [(("States.ALL",), "IsSettled", "$.AuditFailure")],
    }
    for name in TASKS:
        expected.setdefault(name, [(("States.ALL",), "LedgerFailed", "$.Failure")])
    actual = {
        name: [(tuple(c["ErrorEquals"]), c["Next"], c["ResultPath"]) for c in state["Catch"]]
        for name, state in TASKS.items()
    }

    assert actual == expected


def test_every_task_invokes_a_function_the_stacks_create():
    placeholders = {"${" + spec.placeholder + "}" for spec in topology.FUNCTIONS}
    used = {state["Parameters"]["FunctionName"] for state in LAMBDA_TASKS.values()}

    assert used == placeholders


def test_every_transition_lands_on_a_state():
    names = set(WORKFLOW["States"])
    targets = {WORKFLOW["StartAt"]}
    for state in WORKFLOW["States"].values():
        targets |= {state.get("Next"), state.get("Default")} - {None}
        targets |= {c["Next"] for c in state.get("Catch", []) + state.get("Choices", [])}

    assert targets <= names
    assert names - targets == set(), "unreachable states"


def test_the_definition_is_json_path_only():
    text = json.dumps(WORKFLOW)

    assert "QueryLanguage" not in text and "{%" not in text


def test_a_card_tokenize_could_not_take_leaves_the_vault_from_the_state_machine_itself():
    discard = TASKS["DiscardCard"]

    assert discard["Resource"] == "arn:aws:states:::dynamodb:deleteItem"
    assert discard["Parameters"] == {
        "TableName": "${" + topology.CARD_VAULT_TABLE_PLACEHOLDER + "}",
        "Key": {"TransactionID": {"S.$": "$$.Execution.Name"}},
    }
    assert discard["Next"] == "TokenizationFailed"
