"""The committed ASL files are what the builder emits, and every task follows the one retry policy."""

import json

import pytest

from payments import topology
from statemachine import build, operation, payment, policy, reconciliation, status_sync

WORKFLOW = payment.definition()
OPERATION_WORKFLOW = operation.definition()
OPERATION_TASKS = {name: state for name, state in OPERATION_WORKFLOW["States"].items() if state["Type"] == "Task"}
DEFINITIONS = {
    topology.PAYMENT_WORKFLOW.name: WORKFLOW,
    topology.OPERATION_WORKFLOW.name: OPERATION_WORKFLOW,
    topology.STATUS_SYNC_WORKFLOW.name: status_sync.definition(),
    topology.RECONCILIATION_WORKFLOW.name: reconciliation.definition(),
}
TASKS = {name: state for name, state in WORKFLOW["States"].items() if state["Type"] == "Task"}
# Tasks that invoke one of our functions (the rest call an AWS service directly).
LAMBDA_TASKS = {name: state for name, state in TASKS.items() if state["Resource"] == "arn:aws:states:::lambda:invoke"}


def test_every_committed_asl_file_is_the_builders_output():
    assert build.stale_files() == [], "run `make asl` and commit the result"


def test_a_stale_file_is_reported(tmp_path):
    for name in build.WORKFLOWS:
        (tmp_path / name).write_text(build.render(build.WORKFLOWS[name]()).replace("Comment", "Comments", 1))

    assert build.stale_files(tmp_path) == list(build.WORKFLOWS)


def retriers(state):
    return {tuple(r["ErrorEquals"]): r["MaxAttempts"] for r in state.get("Retry", [])}


@pytest.mark.parametrize("state", [*LAMBDA_TASKS.values(), *OPERATION_TASKS.values()], ids=lambda s: s["Comment"][:30])
def test_every_lambda_task_retries_lambda_service_errors_and_our_transient_dependencies(state):
    attempts = retriers(state)

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


def test_the_operation_workflows_retry_and_catch_tables():
    standard = [(policy.LAMBDA_SERVICE_ERRORS, 4), (("StorageUnavailable", "KeyServiceUnavailable"), 5)]
    retries = {name: standard for name in OPERATION_TASKS}
    retries["CallOperationProcessor"] = [
        (("ProcessorRejected", "WorkflowStateInvalid", "ChargeRefused", "OperationRefused"), 0),
        *standard,
        (("ProcessorUnavailable", "ProcessorTimeout", "States.Timeout"), 4),
        (("States.ALL",), 2),
    ]
    catches = {name: [(("States.ALL",), "OperationFailed", "$.Failure")] for name in OPERATION_TASKS}
    # No catch-all: a failed admission fails the execution at AdmitOperation, where a redrive resumes.
    catches["AdmitOperation"] = [(("InvalidOperationRequest", "OperationRefused"), "ReadRejection", "$")]
    catches["CallOperationProcessor"] = [
        (("OperationRefused",), "OperationDeclined", "$.Failure"),
        (("States.ALL",), "OperationFailed", "$.Failure"),
    ]
    catches["OperationFailed"] = [(("States.ALL",), "OperationUnrecorded", "$.Failure")]
    catches["AuditOperation"] = [(("States.ALL",), "IsOperationSettled", "$.AuditFailure")]

    assert {
        n: [(tuple(r["ErrorEquals"]), r["MaxAttempts"]) for r in s["Retry"]] for n, s in OPERATION_TASKS.items()
    } == (retries)
    assert {
        n: [(tuple(c["ErrorEquals"]), c["Next"], c["ResultPath"]) for c in s["Catch"]]
        for n, s in OPERATION_TASKS.items()
    } == catches


def all_states(definition):
    """Every state, those of a Map's iterations too."""
    for state in definition["States"].values():
        yield state
        if "ItemProcessor" in state:
            yield from all_states(state["ItemProcessor"])


@pytest.mark.parametrize("workflow", topology.WORKFLOWS, ids=lambda w: w.name)
def test_every_task_invokes_a_function_of_its_workflow_and_the_stacks_create_them_all(workflow):
    definition = DEFINITIONS[workflow.name]
    used = {
        state["Parameters"]["FunctionName"]
        for state in all_states(definition)
        if state.get("Resource") == "arn:aws:states:::lambda:invoke"
    }

    assert used == {"${" + spec.placeholder + "}" for spec in workflow.functions}
    assert {spec for w in topology.WORKFLOWS for spec in w.functions} == set(topology.FUNCTIONS)


@pytest.mark.parametrize("definition", DEFINITIONS.values(), ids=list(DEFINITIONS))
def test_every_transition_lands_on_a_state(definition):
    names = set(definition["States"])
    targets = {definition["StartAt"]}
    for state in definition["States"].values():
        targets |= {state.get("Next"), state.get("Default")} - {None}
        targets |= {c["Next"] for c in state.get("Catch", []) + state.get("Choices", [])}

    assert targets <= names
    assert names - targets == set(), "unreachable states"


@pytest.mark.parametrize("definition", DEFINITIONS.values(), ids=list(DEFINITIONS))
def test_the_definition_is_json_path_only(definition):
    text = json.dumps(definition)

    assert "QueryLanguage" not in text and "{%" not in text


def test_a_card_tokenize_could_not_take_leaves_the_vault_from_the_state_machine_itself():
    discard = TASKS["DiscardCard"]

    assert discard["Resource"] == "arn:aws:states:::dynamodb:deleteItem"
    assert discard["Parameters"] == {
        "TableName": "${" + topology.CARD_VAULT_TABLE_PLACEHOLDER + "}",
        "Key": {"TransactionID": {"S.$": "$$.Execution.Name"}},
    }
    assert discard["Next"] == "TokenizationFailed"
