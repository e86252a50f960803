"""Events for upstream services on the local stack: the ledger's stream, pumped to LedgerEvents as Lambda's
event source mapping delivers it, puts one event per terminal ledger entry on the payments bus, and the
bus's rule delivers it to the stack's queue. Judged per payment by EventID (<TransactionID>#<EntryNumber>):
the queue is the whole session's. Then the pump's own semantics, against a stream and a function of the
tests' own: in order, at least once, a failed batch retried, batchItemFailures honoured."""

import io
import json
from collections import defaultdict

import jsonschema
import pytest
from botocore.exceptions import ClientError

from local import operations
from local.faults import LAMBDA_FAULTS
from local.payment_requests import DECLINING, token_request
from local.stream_pump import StreamPump
from payments import events, topology
from schemas import build
from tests.card_data import card_data_in
from tests.workflow.conftest import card_request, run_payment

EVENTS_FUNCTION = topology.EVENTS_FUNCTION.function_name


def pay(info, transaction_id, **kwargs):
    execution = run_payment(info, card_request(transaction_id, **kwargs))
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    return json.loads(execution["output"])


def operate(info, kind, transaction_id, operation_id, amount=None):
    request = {"Operation": kind, "OperationID": operation_id, "TransactionID": transaction_id}
    if amount is not None:
        request["Amount"] = amount
    execution = operations.wait_for_execution(info, operations.start_operation(info, request), timeout_seconds=90)
    assert execution["status"] == "SUCCEEDED", (execution.get("error"), execution.get("cause"))
    return json.loads(execution["output"])["Status"]


def events_by_id(stack, transaction_id):
    """The events the queue received for one payment, by EventID, once every entry written so far is delivered."""
    assert stack.events_caught_up(timeout=30), f"the stream pump did not catch up: {stack.pump.last_error}"
    found = defaultdict(list)
    for event in stack.received_events():
        if event["detail"].get("TransactionID") == transaction_id:
            found[event["detail"]["EventID"]].append(event)
    return dict(found)


def assert_one_event_per_terminal_entry(stack, info, transaction_id):
    """Exactly one event per terminal entry, none for a progress entry, each its entry's and valid against
    its detail type's published schema, none holding card data. Returns the detail types, in entry order."""
    entries = operations.ledger_entries(info, transaction_id)
    terminal = {f"{transaction_id}#{e['EntryNumber']}": e for e in entries if events.event_of(e)}
    progress = {f"{transaction_id}#{e['EntryNumber']}" for e in entries} - set(terminal)
    assert terminal and progress

    found = events_by_id(stack, transaction_id)

    assert {event_id: len(each) for event_id, each in found.items()} == dict.fromkeys(terminal, 1)
    assert progress.isdisjoint(found)
    for event_id, [event] in found.items():
        entry = terminal[event_id]
        expected_type = events.detail_type_of(entry["Status"], entry.get("Resolution"))
        assert (event["source"], event["detail-type"]) == (events.EVENT_SOURCE, expected_type)
        detail = event["detail"]
        assert (detail["Status"], detail["Amount"], detail["EntryNumber"]) == (
            entry["Status"],
            entry["Amount"],
            entry["EntryNumber"],
        )
        assert detail.get("OperationID") == entry.get("OperationID")
        jsonschema.validate(event, build.schema(event["detail-type"]))
        assert card_data_in(json.dumps(event)) == [], event_id
        assert "SecureToken" not in json.dumps(event)
    return [found[event_id][0]["detail-type"] for event_id in terminal]


def test_an_authorization_captured_once_then_refused_a_second_capture_is_three_events(stack, info, transaction_id):
    pay(info, transaction_id, capture="manual", amount="100.00")
    assert operate(info, "capture", transaction_id, f"{transaction_id}-c1", "60.00") == "CAPTURE-SUCCESS"
    assert operate(info, "capture", transaction_id, f"{transaction_id}-c2", "10.00") == "CAPTURE-DECLINED"

    assert assert_one_event_per_terminal_entry(stack, info, transaction_id) == [
        "PaymentAuthorized",
        "PaymentCaptured",
        "PaymentDeclined",
    ]
    [declined] = events_by_id(stack, transaction_id)[f"{transaction_id}#7"]
    assert declined["detail"]["Operation"] == "capture"
    assert declined["detail"]["Reason"]["Code"] == "ALREADY_CAPTURED"


def test_a_sale_voided_and_a_sale_refunded_in_part_then_refused_more(stack, info, transaction_id):
    voided, refunded = f"{transaction_id}-v", f"{transaction_id}-r"
    pay(info, voided)
    assert operate(info, "void", voided, f"{voided}-op") == "VOID-SUCCESS"
    pay(info, refunded, amount="100.00")
    stack.sandbox.settle()
    assert operate(info, "refund", refunded, f"{refunded}-a", "30.00") == "REFUND-SUCCESS"
    assert operate(info, "refund", refunded, f"{refunded}-b", "80.00") == "REFUND-DECLINED"

    assert assert_one_event_per_terminal_entry(stack, info, voided) == ["PaymentSucceeded", "PaymentVoided"]
    assert assert_one_event_per_terminal_entry(stack, info, refunded) == [
        "PaymentSucceeded",
        "PaymentRefunded",
        "PaymentDeclined",
    ]
    [refund] = events_by_id(stack, refunded)[f"{refunded}#6"]
    assert (refund["detail"]["Amount"], refund["detail"]["Refunded"]) == ("30.00", "30.00")


def test_a_declined_and_a_failed_payment_are_one_event_each(stack, info, transaction_id):
    pay(info, transaction_id, number=DECLINING)
    # A token Converge does not know: the payment ends PAYMENT-FAILED.
    failed = f"{transaction_id}-f"
    arn = info.client("stepfunctions").start_execution(
        stateMachineArn=info.state_machine_arn, name=failed, input=json.dumps(token_request("7595301425001111", failed))
    )["executionArn"]
    operations.wait_for_execution(info, arn)

    assert assert_one_event_per_terminal_entry(stack, info, transaction_id) == ["PaymentDeclined"]
    assert assert_one_event_per_terminal_entry(stack, info, failed) == ["PaymentFailed"]


@pytest.mark.parametrize("fault", LAMBDA_FAULTS)
def test_a_batch_retried_after_a_failed_invoke_publishes_each_event_once(stack, info, transaction_id, fault):
    # Given a payment and a capture whose entries wait in the stream (the mapping disabled meanwhile)
    stack.pump.disable()
    try:
        pay(info, transaction_id, capture="manual")
        assert operate(info, "capture", transaction_id, f"{transaction_id}-c") == "CAPTURE-SUCCESS"
        failures, invocations = stack.pump.failures, stack.runtime.invocations.count(EVENTS_FUNCTION)
        # When the batch holding all six entries meets the fault: lose_response and crash_after run the
        # handler (the events are published) and the pump sees a failure all the same
        stack.runtime.faults.inject(EVENTS_FUNCTION, fault)
    finally:
        stack.pump.enable()

    # Then the batch is retried, and every terminal entry still has exactly one event
    assert assert_one_event_per_terminal_entry(stack, info, transaction_id) == ["PaymentAuthorized", "PaymentCaptured"]
    assert stack.pump.failures == failures + 1
    assert stack.runtime.invocations.count(EVENTS_FUNCTION) == invocations + 2


# --- the stream pump's event source mapping semantics, against a stream and a function of the tests' own ---


def record(n):
    return {
        "eventID": f"e{n}",
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {"SequenceNumber": str(n), "Keys": {"TransactionID": {"S": "t"}}},
    }


class FakeStream:
    """One shard of records 1, 2, 3...; an iterator is the index of the next record to read."""

    def __init__(self, count):
        self.records = [record(n) for n in range(1, count + 1)]

    def describe_table(self, **request):
        return {"Table": {"LatestStreamArn": "arn:aws:dynamodb:us-east-1:123456789012:table/T/stream/1"}}

    def describe_stream(self, **request):
        return {"StreamDescription": {"Shards": [{"ShardId": "shard-1"}]}}

    def get_shard_iterator(self, **request):
        return {"ShardIterator": request.get("SequenceNumber", "0")}  # after record n: index n

    def get_records(self, **request):
        start = int(request["ShardIterator"])
        page = self.records[start : start + request["Limit"]]
        return {"Records": page, "NextShardIterator": str(start + len(page))}


class FakeFunction:
    """Answers each invoke with the next of `answers`: "ok", "lost" (the Invoke call fails), "error" (a
    FunctionError), or the sequence numbers to name in batchItemFailures."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.batches = []

    def invoke(self, **request):
        records = json.loads(request["Payload"])["Records"]
        assert {(r["eventSource"], r["eventSourceARN"].rpartition("/")[2]) for r in records} == {("aws:dynamodb", "1")}
        self.batches.append([int(r["dynamodb"]["SequenceNumber"]) for r in records])
        answer = self.answers.pop(0) if self.answers else "ok"
        if answer == "lost":
            raise ClientError({"Error": {"Code": "ServiceException", "Message": "lost"}}, "Invoke")
        if answer == "error":
            return {"FunctionError": "Unhandled", "Payload": io.BytesIO(b'{"errorType": "Boom"}')}
        failures = [] if answer == "ok" else [{"itemIdentifier": str(n)} for n in answer]
        return {"Payload": io.BytesIO(json.dumps({"batchItemFailures": failures}).encode())}


def pump_of(stream, function, batch_size=3):
    clients = {"dynamodb": stream, "dynamodbstreams": stream, "lambda": function}
    pump = StreamPump(lambda service, config: clients[service], "T", "F", batch_size=batch_size)
    pump.start()
    return pump


@pytest.mark.parametrize(
    ("answers", "batches"),
    [
        (["ok"], [[1, 2, 3], [4, 5]]),
        (["lost"], [[1, 2, 3], [1, 2, 3], [4, 5]]),  # the same batch again
        (["error", "error"], [[1, 2, 3], [1, 2, 3], [1, 2, 3], [4, 5]]),
        ([[2, 3]], [[1, 2, 3], [2, 3, 4], [5]]),  # from the first failed record on
        ([[9]], [[1, 2, 3], [1, 2, 3], [4, 5]]),  # a record not in the batch: the whole batch failed
    ],
    ids=["delivered", "lost-response", "function-error", "batch-item-failures", "unknown-item"],
)
def test_the_pump_delivers_in_order_at_least_once_as_the_mapping_does(answers, batches):
    function = FakeFunction(answers)
    pump = pump_of(FakeStream(5), function)
    try:
        assert pump.caught_up(timeout=10)
    finally:
        pump.stop()

    assert function.batches == batches
    assert pump.failures == len(batches) - 2


def test_the_pump_is_not_caught_up_while_the_function_keeps_failing_nor_while_disabled():
    failing = pump_of(FakeStream(2), FakeFunction(["error"] * 100))
    try:
        assert not failing.caught_up(timeout=0.5)
    finally:
        failing.stop()
    disabled = pump_of(FakeStream(2), FakeFunction([]))
    try:
        disabled.disable()
        assert not disabled.caught_up(timeout=0.3)
        disabled.enable()
        assert disabled.caught_up(timeout=5)
    finally:
        disabled.stop()
