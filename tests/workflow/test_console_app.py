"""The operations console's server side, on the shared stack: what it answers, what it refuses, and what it
never shows. Its pages in a browser: tests/e2e/test_console_browser.py."""

import datetime as dt

import pytest

from local import operations
from local.console import views
from local.console.app import CONTENT_SECURITY_POLICY
from local.console.timeline import timeline_bars
from local.payment_requests import new_transaction_id
from local.stack import CONSOLE_EVENTS_LOG_GROUP
from payments.cards import mask_card_numbers
from tests.card_data import TEST_PANS, card_data_in
from tests.workflow.conftest import card_request, run_payment

LOOPBACK = {"REMOTE_ADDR": "127.0.0.1"}


@pytest.fixture(scope="module")
def console(stack):
    """The console the stack serves (one per stack: it keeps the events it takes off its queue)."""
    return stack.console.test_client()


@pytest.fixture(scope="module")
def paid(stack, info):
    """A payment made with a card, then refunded in part, its events delivered: its TransactionID."""
    transaction_id = new_transaction_id("console")
    description = run_payment(info, card_request(transaction_id, amount="30.00"))
    assert description["status"] == "SUCCEEDED", description
    operations.settle_sandbox(info)
    refund = {"Operation": "refund", "OperationID": f"{transaction_id}-refund", "TransactionID": transaction_id}
    ended = operations.wait_for_execution(info, operations.start_operation(info, refund | {"Amount": "10.00"}))
    assert ended["status"] == "SUCCEEDED", ended
    assert stack.events_caught_up()
    return transaction_id


def test_a_payment_page_shows_its_path_entries_operation_and_events_and_no_secret(console, info, paid):
    answer = console.get(f"/console/payments/{paid}", environ_base=LOOPBACK)

    assert answer.status_code == 200
    page = answer.get_data(as_text=True)
    assert 'data-state="CallProcessor"' in page and "state--visited" in page
    assert "PAYMENT-SUCCESS" in page and "REFUND-SUCCESS" in page
    assert "Hash chains verify: 6 ledger entries" in page
    assert "processor 20.00, ledger 20.00: they agree." in page
    assert "PaymentRefunded" in page  # the event, from the console's own subscription
    # Never a SecureToken, never an audit payload's ciphertext, never card data
    tokens = [item["SecureToken"] for item in operations.ledger_entries(info, paid) if item.get("SecureToken")]
    assert tokens and not any(token in page for token in tokens)
    for record in operations.audit_records(info, paid):
        for payload in ("EncryptedQuery", "EncryptedResponse"):
            if record.get(payload):
                assert str(record[payload])[:40] not in page
    assert card_data_in(page, cvvs=()) == []


def test_reading_the_events_takes_nothing_off_the_subscribers_queue(console, info, paid):
    sqs = info.client("sqs")

    def waiting():
        attributes = sqs.get_queue_attributes(
            QueueUrl=info.events_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])

    before = waiting()
    assert before >= 2  # at least the payment's PaymentSucceeded and PaymentRefunded, not yet taken
    console.get(f"/console/payments/{paid}", environ_base=LOOPBACK)

    assert waiting() == before


def test_the_list_finds_the_payment_by_search_and_by_status(console, paid):
    found = console.get("/console/payments", query_string={"q": paid.upper()}, environ_base=LOOPBACK)
    assert found.status_code == 200
    assert f'data-transaction-id="{paid}"' in found.get_data(as_text=True)

    declined = console.get("/console/payments", query_string={"status": "PAYMENT-DECLINED"}, environ_base=LOOPBACK)
    assert f'data-transaction-id="{paid}"' not in declined.get_data(as_text=True)


@pytest.mark.parametrize(
    ("path", "query", "status", "message"),
    [
        ("/console/payments", {"status": "<b>ALL</b>"}, 400, "status: not a status the console filters by."),
        ("/console/payments", {"q": "x" * 129}, 400, "q: a search is at most 128 characters."),
        ("/console/payments/no-such-payment-zz", {}, 404, "No payment has this TransactionID."),
        ("/console/nowhere", {}, 404, None),
    ],
)
def test_bad_requests_say_what_is_wrong_without_echoing_the_request(console, path, query, status, message):
    answer = console.get(path, query_string=query, environ_base=LOOPBACK)

    assert answer.status_code == status
    page = answer.get_data(as_text=True)
    if message:
        assert message in page
    for value in [*query.values(), "no-such-payment-zz"]:
        assert value not in page
    assert answer.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


def test_the_console_answers_loopback_clients_by_loopback_names_only_and_only_reads(console, paid):
    assert console.get("/console/payments", environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 403
    # A page elsewhere whose host name was rebound to 127.0.0.1 (DNS rebinding) sends its own name
    rebound = console.get("/console/payments", headers={"Host": "evil.example:4566"}, environ_base=LOOPBACK)
    assert rebound.status_code == 400 and "evil.example" not in rebound.get_data(as_text=True)
    for host in ("localhost:4566", "127.0.0.1:4566"):
        assert console.get("/console/payments", headers={"Host": host}, environ_base=LOOPBACK).status_code == 200
    for method in (console.post, console.put, console.delete):
        assert method(f"/console/payments/{paid}", environ_base=LOOPBACK).status_code == 405


def test_every_answer_carries_the_policy_and_no_caching(console):
    for path in ("/console", "/console/payments", "/console/reconciliation", "/console/static/console.css"):
        answer = console.get(path, environ_base=LOOPBACK)
        assert answer.status_code in (200, 302), path
        assert answer.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Cache-Control"] == "no-store"


def entry(status, minutes_ago, now, **fields):
    created = (now - dt.timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")
    return {"TransactionID": "t-1", "Status": status, "CreatedAt": created, "EntryNumber": 1} | fields


@pytest.mark.parametrize(
    ("entries", "execution", "expected"),
    [
        ([("PAYMENT-INITIATED", 9), ("PAYMENT-PENDING", 8)], "RUNNING", views.STUCK),
        ([("PAYMENT-INITIATED", 2), ("PAYMENT-PENDING", 1)], "RUNNING", None),
        (
            [("PAYMENT-PENDING", 1), ("PAYMENT-FAILED", 1, {"ReasonCode": "PROCESSOR_OUTCOME_UNKNOWN"})],
            "FAILED",
            views.UNKNOWN,
        ),
        (
            [("PAYMENT-PENDING", 1), ("PAYMENT-FAILED", 1, {"ReasonCode": "PROCESSOR_DECLINED"})],
            "SUCCEEDED",
            views.FAILED,
        ),
        ([], "FAILED", views.FAILED),
        ([("PAYMENT-PENDING", 1), ("PAYMENT-SUCCESS", 1)], "SUCCEEDED", None),
    ],
)
def test_what_makes_a_payment_stand_out(entries, execution, expected):
    now = dt.datetime.now(dt.UTC)
    ledger = [
        entry(e[0], e[1], now, **(e[2] if len(e) > 2 else {})) | {"EntryNumber": i} for i, e in enumerate(entries, 1)
    ]
    started = now - dt.timedelta(minutes=max([e[1] for e in entries] or [1]))

    assert views._attention({"status": execution, "startDate": started}, ledger, now) == expected


def test_a_log_event_that_is_no_event_is_counted_and_never_breaks_a_page(console, stack, info, paid):
    logs = info.client("logs")
    logs.create_log_stream(logGroupName=CONSOLE_EVENTS_LOG_GROUP, logStreamName="not-events")
    now = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    written = ['{"detail": "x"}', "not json", '{"id": "e-1"}']
    logs.put_log_events(
        logGroupName=CONSOLE_EVENTS_LOG_GROUP,
        logStreamName="not-events",
        logEvents=[{"timestamp": now, "message": message} for message in written],
    )
    before = stack.console_events.unreadable

    for _ in range(2):
        answer = console.get(f"/console/payments/{paid}", environ_base=LOOPBACK)
        assert answer.status_code == 200
        assert answer.get_data(as_text=True).count("PaymentRefunded") == 1  # once, however often it is read

    assert stack.console_events.unreadable >= before + len(written)


def test_an_execution_named_with_a_card_number_is_listed_masked_and_has_no_page(console, info):
    # Only StartExecution itself lets a card number into a name: the intake and the CLI refuse one
    name = f"{TEST_PANS[0]}-named"
    arn = info.client("stepfunctions").start_execution(stateMachineArn=info.state_machine_arn, name=name, input="{}")
    operations.wait_for_execution(info, arn["executionArn"])

    listing = console.get("/console/payments", environ_base=LOOPBACK).get_data(as_text=True)
    assert card_data_in(listing, cvvs=()) == []
    assert mask_card_numbers(name) in listing and views.CARD_IN_NAME in listing
    refused = console.get(f"/console/payments/{name}", environ_base=LOOPBACK)
    assert refused.status_code == 400 and card_data_in(refused.get_data(as_text=True), cvvs=()) == []


def history_event(event_id, previous, kind, second, **details):
    at = dt.datetime(2026, 11, 27, 10, 0, second, tzinfo=dt.UTC)
    return {"id": event_id, "previousEventId": previous, "type": kind, "timestamp": at, **details}


def test_a_map_iterations_keep_their_own_attempts_and_the_map_its_own_exit():
    entered = "stateEnteredEventDetails"
    events = [
        history_event(1, 0, "ExecutionStarted", 0),
        history_event(2, 1, "MapStateEntered", 0, **{entered: {"name": "ResolveEach"}}),
        history_event(3, 2, "TaskStateEntered", 1, **{entered: {"name": "Resolve"}}),  # iteration 0
        history_event(4, 2, "TaskStateEntered", 1, **{entered: {"name": "Resolve"}}),  # iteration 1, alongside
        history_event(5, 3, "TaskScheduled", 1),
        history_event(6, 4, "TaskScheduled", 1),
        history_event(7, 5, "TaskFailed", 2, taskFailedEventDetails={"error": "StorageUnavailable"}),
        history_event(8, 7, "TaskScheduled", 3),
        history_event(9, 6, "TaskSucceeded", 3),
        history_event(10, 9, "TaskStateExited", 3),
        history_event(11, 8, "TaskSucceeded", 4),
        history_event(12, 11, "TaskStateExited", 4),
        history_event(13, 2, "MapStateExited", 9),
        history_event(14, 13, "ExecutionSucceeded", 9),
    ]

    runs = operations.timeline(events)

    assert [(r.name, r.attempts, r.errors, r.ended.second) for r in runs] == [
        ("ResolveEach", 0, [], 9),
        ("Resolve", 2, ["StorageUnavailable"], 4),
        ("Resolve", 1, [], 3),
    ]


def test_a_reversal_by_status_sync_is_not_listed_as_an_operation():
    ledger = [
        {"EntryNumber": 3, "Status": "PAYMENT-FAILED", "OperationID": None},
        {"EntryNumber": 4, "Status": "PAYMENT-REVERSING", "OperationID": "rev-t-1"},
        {"EntryNumber": 5, "Status": "REFUND-INITIATED", "OperationID": "op-1"},
    ]
    assert operations.operation_ids(ledger) == ["op-1"]


def test_a_running_state_reaches_now_on_the_timeline():
    started = dt.datetime(2026, 11, 27, 10, 0, 0, tzinfo=dt.UTC)
    runs = [operations.StateRun("LedgerPending", started, started + dt.timedelta(seconds=1))]
    runs.append(operations.StateRun("CallProcessor", started + dt.timedelta(seconds=1)))

    bars = timeline_bars(runs, {"startDate": started, "status": "RUNNING"}, started + dt.timedelta(seconds=10))

    assert [(b.x, b.width) for b in bars] == [(0.0, 32.0), (32.0, 288.0)]


def test_the_list_reads_the_stack_again_only_once_it_has_changed(console, stack, info):
    scans = []
    stop = stack.observe_requests(lambda r: r.headers.get("x-amz-target", "").endswith(".Scan") and scans.append(r))
    try:
        run_payment(info, card_request(new_transaction_id("console"), amount="4.00"))
        # LedgerEvents writes its idempotency records after the execution ends: a change too, so let it finish
        assert stack.events_caught_up()
        console.get("/console/payments", environ_base=LOOPBACK)
        console.get("/console/payments", query_string={"q": "pay-"}, environ_base=LOOPBACK)
        read_once = len(scans)
        run_payment(info, card_request(new_transaction_id("console"), amount="5.00"))
        changed = console.get("/console/payments", environ_base=LOOPBACK).get_data(as_text=True)
    finally:
        stop()

    assert read_once == 1  # after a change, the first view reads; the second and the search use what it read
    assert len(scans) == 2  # the payment made since was a change: read again, and listed
    assert changed.count("data-transaction-id=") == len(views.payment_rows(info, dt.datetime.now(dt.UTC)))
