"""The operations console's server side, on the shared stack: what it answers, what it refuses, and what it
never shows. Its pages in a browser: tests/e2e/test_console_browser.py."""

import datetime as dt

import pytest

from local import operations
from local.console import views
from local.console.app import CONTENT_SECURITY_POLICY
from local.payment_requests import new_transaction_id
from tests.card_data import card_data_in
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


def test_the_console_reads_its_own_queue_and_leaves_the_subscribers_queue_alone(console, info, paid):
    sqs = info.client("sqs")
    waiting = int(
        sqs.get_queue_attributes(QueueUrl=info.events_queue_url, AttributeNames=["ApproximateNumberOfMessages"])[
            "Attributes"
        ]["ApproximateNumberOfMessages"]
    )
    assert waiting >= 2  # at least the payment's PaymentSucceeded and PaymentRefunded, not yet taken
    console.get(f"/console/payments/{paid}", environ_base=LOOPBACK)

    after = sqs.get_queue_attributes(QueueUrl=info.events_queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    assert int(after["Attributes"]["ApproximateNumberOfMessages"]) >= waiting


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


def test_the_console_answers_loopback_only_and_writes_nothing(console, info, paid):
    assert console.get("/console/payments", environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 403
    for method in (console.post, console.put, console.delete):
        assert method(f"/console/payments/{paid}", environ_base=LOOPBACK).status_code == 405
    assert [e["Status"] for e in operations.ledger_entries(info, paid)].count("PAYMENT-SUCCESS") == 1


def test_every_answer_carries_the_policy_and_no_caching(console):
    for path in ("/console", "/console/payments", "/console/reconciliation", "/console/static/console.css"):
        answer = console.get(path, environ_base=LOOPBACK)
        assert answer.status_code in (200, 302), path
        assert answer.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Cache-Control"] == "no-store"
    assert "script-src" not in CONTENT_SECURITY_POLICY and "default-src 'none'" in CONTENT_SECURITY_POLICY


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
