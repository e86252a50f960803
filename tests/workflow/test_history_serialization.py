"""local.moto_patches writes a history event's members out without looking up the ~55 it does not hold:
GetExecutionHistory must answer exactly as moto's own serializer does."""

import json

from moto.core.serialize import BaseJSONSerializer

from local import moto_patches, operations
from local.payment_requests import DECLINING, token_request
from tests.workflow.conftest import card_request, run_payment


def histories(info, arns):
    sfn = info.client("stepfunctions")
    return [sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"] for arn in arns]


def test_histories_of_approved_declined_and_failed_executions_are_written_out_as_moto_did(info, monkeypatch):
    approved = run_payment(info, card_request())
    declined = run_payment(info, card_request(number=DECLINING))
    refused = token_request("tok-history")
    refused["PaymentMethod"] = {"Type": "card"}  # a card straight to StartExecution: Tokenize refuses it
    failed = info.client("stepfunctions").start_execution(
        stateMachineArn=info.state_machine_arn, name=refused["TransactionID"], input=json.dumps(refused)
    )["executionArn"]
    operations.wait_for_execution(info, failed, timeout_seconds=60)
    arns = [approved["executionArn"], declined["executionArn"], failed]

    assert BaseJSONSerializer._serialize_type_structure is moto_patches._serialize_structure_fast
    shortened = []
    present_members = moto_patches._serialize_present_members
    monkeypatch.setattr(
        moto_patches, "_serialize_present_members", lambda *args: shortened.append(1) or present_members(*args)
    )
    patched = histories(info, arns)
    monkeypatch.setattr(BaseJSONSerializer, "_serialize_type_structure", moto_patches._serialize_structure)
    unpatched = histories(info, arns)

    assert patched == unpatched
    assert len(shortened) == sum(len(events) for events in patched)  # every event took the short way
    kinds = {event["type"] for events in patched for event in events}
    assert {"TaskStateEntered", "TaskScheduled", "TaskSucceeded", "TaskFailed", "ExecutionFailed"} <= kinds
    assert {"ExecutionSucceeded", "ChoiceStateEntered", "PassStateExited"} & kinds
