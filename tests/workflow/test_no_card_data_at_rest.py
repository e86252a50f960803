"""No PAN and no CVV in any table item, any history event after Tokenize took the input, or any log line."""

import json

import pytest

from local import operations
from local.card_scan import events_that_must_be_clean
from tests.card_data import TEST_CVV, card_data_in
from tests.workflow.conftest import card_request, run_payment


@pytest.fixture(scope="module")
def payments(info):
    cases = {
        "approved": card_request("scan-approved-1", cvv=TEST_CVV),
        "declined": card_request("scan-declined-1", number="4000000000000002", cvv=TEST_CVV),
        "invalid": card_request("scan-invalid-1", number="4111111111111112", cvv=TEST_CVV),
    }
    cases["invalid"]["PaymentMethod"]["HolderName"] = "</ssl_first_name><ssl_amount>0.01"
    return {name: run_payment(info, request) for name, request in cases.items()}


def test_the_scanner_finds_what_it_looks_for():
    assert card_data_in('{"Number": "4111111111111111"}') == ["PAN 41…1111"]
    assert card_data_in('{"Cvv": "847"}') == ["a CVV field", "the CVV value"]
    assert card_data_in("<ssl_cvv2cvc2>847</ssl_cvv2cvc2>")
    assert card_data_in("AgV4847abc+/847x==") == []


def test_no_card_data_in_any_table_item(info, payments):
    dynamodb = info.client("dynamodb")
    for table in (info.ledger_table, info.audit_table):
        items = dynamodb.scan(TableName=table)["Items"]
        assert items, f"{table} is empty: the scan would prove nothing"
        assert card_data_in(json.dumps(items)) == [], table


def test_card_data_leaves_the_history_once_tokenize_has_it(info, payments):
    # Step Functions records every state's input, so the execution input reaches the history three
    # times: ExecutionStarted, and Tokenize's TaskStateEntered and TaskScheduled. Nothing after that.
    for name, execution in payments.items():
        events = operations.execution_history(info, execution["executionArn"])
        holding = [(e["id"], e["type"]) for e in events if card_data_in(json.dumps(e, default=str))]
        assert holding == [(1, "ExecutionStarted"), (2, "TaskStateEntered"), (3, "TaskScheduled")], name
        assert not [e for e in events_that_must_be_clean(events) if card_data_in(json.dumps(e, default=str))]
        assert events[1]["stateEnteredEventDetails"]["name"] == "Tokenize"
        assert len(events) > 4


def test_no_card_data_in_any_function_log(stack, payments):
    text = stack.logs.text()
    assert "PaymentTokenize" in {line.function_name for line in stack.logs.lines}
    assert card_data_in(text) == []


def test_no_card_data_in_execution_outputs_or_causes(payments):
    for execution in payments.values():
        assert card_data_in(json.dumps([execution.get(k) for k in ("output", "error", "cause")])) == []
