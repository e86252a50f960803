"""txnquery by date and time, as reconciliation reads Converge: newest first, search times to the second, a
listing limit, and the client paging by it; and the control API that forges what reconciliation must catch."""

import dataclasses
import datetime as dt
import json
import random
import re
from decimal import Decimal

import pytest

from local.payment_requests import VISA
from local.sandbox.server import LISTING_LIMIT_PATH, TRANSACTIONS_PATH
from payments.cards import luhn_valid
from payments.errors import ProcessorRejected
from payments.processors.converge import ConvergeClient, ConvergeProcessor, ConvergeSettings
from payments.processors.converge.client import search_time
from payments.processors.port import CardDetails
from tests.card_data import card_data_in
from tests.converge.conftest import credentials_of
from tests.converge.test_sandbox_wire import http_request

MASKED_CARD = re.compile(r"\d{2,6}\*{3,}\d{2,4}")


@pytest.fixture
def day():
    """A day long past, of this test's own: nothing else in the sandbox happened on it."""
    return dt.date(2001, 1, 1) + dt.timedelta(days=random.randrange(8000))


@pytest.fixture
def at(day):
    def moment(hour, minute=0, second=0):
        return dt.datetime.combine(day, dt.time(hour, minute, second), tzinfo=dt.UTC)

    return moment


@pytest.fixture(autouse=True)
def no_listing_limit_after(sandbox):
    yield
    sandbox.terminal.set_listing_limit(None)


def processor_for(sandbox, listing_limit):
    settings = ConvergeSettings(
        url=sandbox.xml_url,
        credentials=credentials_of(sandbox),
        connect_timeout=1,
        read_timeout=2,
        listing_limit=listing_limit,
    )
    return ConvergeProcessor(ConvergeClient(settings))


def forge(sandbox, reference, moment, amount="10.00", **fields):
    return sandbox.forge(ssl_merchant_txn_id=reference, ssl_amount=amount, at=moment.isoformat(), **fields)


def references(call):
    return [t["ssl_merchant_txn_id"] for t in call.transactions]


def test_a_listing_by_time_is_newest_first_and_reads_its_times_to_the_second(sandbox, client, at):
    forge(sandbox, "early", at(10, 0, 0))
    forge(sandbox, "five-seconds-on", at(10, 0, 5))
    forge(sandbox, "half-past", at(10, 30, 0))

    both_ends = client.list_between(at(10, 0, 0), at(10, 0, 5))
    inside = client.list_between(at(10, 0, 1), at(10, 29, 59))
    whole_day = client.query(merchant_txn_id="half-past", start=at(0).date(), end=at(0).date())

    assert references(both_ends) == ["five-seconds-on", "early"]
    assert references(inside) == ["five-seconds-on"]
    assert references(whole_day) == ["half-past"]
    assert both_ends.request["ssl_search_start_date"] == f"{at(0):%m/%d/%Y} 10:00:00 AM"
    assert both_ends.request["ssl_search_end_date"] == f"{at(0):%m/%d/%Y} 10:00:05 AM"
    assert both_ends.request["ssl_time_zone_request_utc"] == both_ends.request["ssl_time_zone_response_utc"] == "Y"


def test_search_times_are_written_as_converge_writes_its_own_in_utc():
    moment = dt.datetime(2026, 3, 4, 17, 5, 9, 700000, tzinfo=dt.timezone(dt.timedelta(hours=-5)))

    assert search_time(moment) == "03/04/2026 10:05:09 PM"


def test_the_listing_limit_keeps_the_newest_and_counts_what_it_lists(sandbox, client, at):
    for second in range(5):
        forge(sandbox, f"limited-{second}", at(9, 0, second))
    sandbox.terminal.set_listing_limit(2)

    call = client.list_between(at(9), at(9, 59, 59))

    assert references(call) == ["limited-4", "limited-3"]
    assert call.response["ssl_txn_count"] == "2"


def test_the_client_pages_a_full_listing_back_to_its_oldest_second(sandbox, at):
    # Seven in one hour, at seconds of their own, and one either side of it
    for minute in range(7):
        forge(sandbox, f"paged-{minute}", at(14, minute * 5, 30))
    forge(sandbox, "before", at(13, 59, 59))
    forge(sandbox, "after", at(15, 0, 0))
    sandbox.terminal.set_listing_limit(3)

    listing = processor_for(sandbox, listing_limit=3).transactions_between(at(14), at(14, 59, 59))

    # Pages of 3: (6, 5, 4), from 4's second (4, 3, 2), from 2's (2, 1, 0), from 0's (0): complete
    assert listing.complete and listing.pages == 4
    assert sorted(t.reference for t in listing.transactions) == [f"paged-{minute}" for minute in range(7)]
    assert [call.request["ssl_search_end_date"] for call in listing.calls][1:] == [
        f"{at(0):%m/%d/%Y} 02:20:30 PM",
        f"{at(0):%m/%d/%Y} 02:10:30 PM",
        f"{at(0):%m/%d/%Y} 02:00:30 PM",
    ]


@pytest.mark.parametrize(
    ("change", "seen_as"),
    [
        (lambda sandbox, client, txn_id: sandbox.alter(txn_id, ssl_trans_status="STL"), ("sale", True)),
        (lambda sandbox, client, txn_id: client.void(txn_id), ("void", False)),
    ],
    ids=["its-batch-closed", "a-void-landed"],
)
def test_a_row_that_changes_between_pages_is_kept_once_as_the_later_page_lists_it(
    sandbox, client, at, monkeypatch, change, seen_as
):
    # Pages of 3: (6, 5, 4), then from 4's second (4, 3, 2): row 4 is listed on both, and changes in between
    rows = {minute: forge(sandbox, f"changing-{minute}", at(20, minute * 5, 30))["ssl_txn_id"] for minute in range(7)}
    sandbox.terminal.set_listing_limit(3)
    processor = processor_for(sandbox, listing_limit=3)
    list_between = processor.client.list_between

    def changing_after_the_first_page(start, end):
        call = list_between(start, end)
        if end == at(20, 59, 59):
            change(sandbox, client, rows[4])
        return call

    monkeypatch.setattr(processor.client, "list_between", changing_after_the_first_page)
    listing = processor.transactions_between(at(20), at(20, 59, 59))

    assert listing.complete and listing.pages == 4
    assert sorted(t.reference for t in listing.transactions) == [f"changing-{minute}" for minute in range(7)]
    [changed] = [t for t in listing.transactions if t.processor_transaction_id == rows[4]]
    assert (changed.kind, changed.settled) == seen_as


def test_transaction_types_are_money_unless_the_adapter_knows_they_move_none(sandbox, client, at, monkeypatch):
    # A card verification (ccverify, which the adapter knows) and a type it does not know (Converge's listing
    # of a stand-alone credit, say): only the first is left out of reconciliation
    card = CardDetails(number=VISA, expiry_month=12, expiry_year=2035, cvv="123")
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    verification = client.verify(card).result["ssl_txn_id"]
    forge(sandbox, "credited", at(21))
    processor = processor_for(sandbox, listing_limit=100)
    list_between = processor.client.list_between

    def listed_as_converge_lists_a_credit(start, end):
        call = list_between(start, end)
        retyped = [
            {**t, "ssl_transaction_type": "CREDIT"} if t["ssl_merchant_txn_id"] == "credited" else t
            for t in call.transactions
        ]
        return dataclasses.replace(call, transactions=tuple(retyped))

    monkeypatch.setattr(processor.client, "list_between", listed_as_converge_lists_a_credit)
    verified = processor.transactions_between(start, dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))
    [credit] = processor.transactions_between(at(21), at(21, 0, 1)).transactions

    [verify] = [t for t in verified.transactions if t.processor_transaction_id == verification]
    assert verify.kind == "other"
    assert (credit.kind, credit.outcome, credit.reference) == ("unknown", "APPROVED", "credited")


def test_a_listing_shorter_than_the_limit_is_one_page(sandbox, at):
    forge(sandbox, "alone", at(16, 0, 0))

    listing = processor_for(sandbox, listing_limit=3).transactions_between(at(16), at(16, 59, 59))

    assert listing.complete and listing.pages == 1
    assert [t.reference for t in listing.transactions] == ["alone"]


def test_a_full_page_within_one_second_cannot_be_paged_and_is_incomplete(sandbox, at):
    for n in range(4):
        forge(sandbox, f"same-second-{n}", at(17, 0, 0))
    sandbox.terminal.set_listing_limit(3)

    listing = processor_for(sandbox, listing_limit=3).transactions_between(at(17), at(17, 59, 59))

    assert not listing.complete and listing.pages == 1
    assert len(listing.transactions) == 3


def test_paging_stops_when_the_function_runs_short_of_time(sandbox, at):
    listing = processor_for(sandbox, listing_limit=3).transactions_between(
        at(18), at(18, 59, 59), seconds_left=lambda: 1.0
    )

    assert not listing.complete and listing.pages == 0


def test_listed_transactions_are_processor_neutral_and_hold_no_card_data(sandbox, client, transaction_id):
    card = CardDetails(number=VISA, expiry_month=12, expiry_year=2035, cvv="123")

    def pay(suffix, amount, charge=client.sale):
        return charge(transaction_id=transaction_id + suffix, amount=Decimal(amount), currency="USD", card=card)

    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    sale = pay("", "12.00")
    pay("d", "12.51")  # declined: NSF
    authorization = pay("a", "80.00", client.auth_only)
    client.complete(authorization.result["ssl_txn_id"], Decimal("50.00"), "USD", merchant_txn_id=transaction_id + "c")
    voided = pay("v", "40.00")
    void = client.void(voided.result["ssl_txn_id"], merchant_txn_id=transaction_id + "x")
    sandbox.settle()

    listing = processor_for(sandbox, listing_limit=100).transactions_between(
        start, dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    )
    mine = {(t.reference, t.kind): t for t in listing.transactions if t.reference.startswith(transaction_id)}

    assert set(mine) == {
        (transaction_id, "sale"),
        (transaction_id + "d", "sale"),
        (transaction_id + "a", "authorization"),
        (transaction_id + "c", "capture"),
        (transaction_id + "v", "void"),  # the voided sale, under its own id
        (transaction_id + "x", "void"),  # the void itself
    }
    assert mine[(transaction_id, "sale")].processor_transaction_id == sale.result["ssl_txn_id"]
    assert (mine[(transaction_id, "sale")].outcome, mine[(transaction_id, "sale")].settled) == ("APPROVED", True)
    assert mine[(transaction_id + "d", "sale")].outcome == "DECLINED"
    capture = mine[(transaction_id + "c", "capture")]
    assert (capture.processor_transaction_id, str(capture.amount)) == (authorization.result["ssl_txn_id"], "50.00")
    assert mine[(transaction_id + "x", "void")].processor_transaction_id == void.result["ssl_txn_id"]
    assert not mine[(transaction_id + "v", "void")].settled
    text = json.dumps([t.to_json() for t in listing.transactions])
    assert card_data_in(text) == [] and not MASKED_CARD.search(text)
    assert not any(luhn_valid(digits) for digits in re.findall(r"\d{12,19}", text))


def test_forging_over_http_files_an_approved_transaction_no_request_made(sandbox, client, at):
    body = json.dumps({"ssl_amount": "19.99", "ssl_merchant_txn_id": "forged-http", "at": at(11).isoformat()})

    status, _, answer = http_request(sandbox, "POST", TRANSACTIONS_PATH, body)

    record = json.loads(answer)
    assert status == 201
    assert (record["ssl_transaction_type"], record["ssl_amount"], record["approved_charge"]) == ("SALE", "19.99", True)
    assert references(client.list_between(at(11), at(11, 0, 1))) == ["forged-http"]


def test_altering_over_http_changes_what_listings_show(sandbox, client, at):
    txn_id = forge(sandbox, "to-alter", at(12))["ssl_txn_id"]
    hidden_id = forge(sandbox, "to-hide", at(12, 0, 1))["ssl_txn_id"]

    changes = {"ssl_amount": "11.00", "ssl_trans_status": "STL", "ssl_result_message": "DECLINED"}
    altered = http_request(sandbox, "POST", f"{TRANSACTIONS_PATH}/{txn_id}", json.dumps(changes))
    hidden = http_request(sandbox, "POST", f"{TRANSACTIONS_PATH}/{hidden_id}", json.dumps({"hidden": True}))

    assert altered[0] == hidden[0] == 200
    [listed] = client.list_between(at(12), at(12, 0, 1)).transactions
    assert (listed["ssl_txn_id"], listed["ssl_amount"], listed["ssl_trans_status"]) == (txn_id, "11.00", "STL")
    assert listed["ssl_result_message"] == "DECLINED"
    with pytest.raises(ProcessorRejected):
        client.query(txn_id=hidden_id)


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        (f"{TRANSACTIONS_PATH}/no-such-id", {"hidden": True}, 404),
        (TRANSACTIONS_PATH, {"ssl_amount": "1.001"}, 400),
        (TRANSACTIONS_PATH, {"ssl_amount": "1.00", "ssl_card_number": "x"}, 400),
        (TRANSACTIONS_PATH, ["not an object"], 400),
        (LISTING_LIMIT_PATH, {"limit": 0}, 400),
    ],
)
def test_a_bad_control_request_is_refused(sandbox, path, body, status):
    assert http_request(sandbox, "POST", path, json.dumps(body))[0] == status


def test_an_alteration_outside_what_may_change_is_refused(sandbox, at):
    txn_id = forge(sandbox, "not-this", at(13))["ssl_txn_id"]

    answer = http_request(sandbox, "POST", f"{TRANSACTIONS_PATH}/{txn_id}", json.dumps({"ssl_card_number": "x"}))

    assert answer[0] == 400


def test_a_forged_transaction_and_only_a_forged_one_can_be_forgotten(sandbox, client, at, transaction_id):
    forged = forge(sandbox, "to-forget", at(19))["ssl_txn_id"]
    card = CardDetails(number=VISA, expiry_month=12, expiry_year=2035, cvv="123")
    real = client.sale(transaction_id=transaction_id, amount=Decimal("3.00"), currency="USD", card=card)

    forgotten = http_request(sandbox, "DELETE", f"{TRANSACTIONS_PATH}/{forged}")
    refused = http_request(sandbox, "DELETE", f"{TRANSACTIONS_PATH}/{real.result['ssl_txn_id']}")
    unknown = http_request(sandbox, "DELETE", f"{TRANSACTIONS_PATH}/{forged}")

    assert (forgotten[0], refused[0], unknown[0]) == (200, 400, 404)
    assert client.list_between(at(19), at(19, 0, 1)).transactions == ()
    assert real.result["ssl_txn_id"] in {t["ssl_txn_id"] for t in sandbox.transactions()}


def test_the_listing_limit_is_set_and_read_over_http(sandbox):
    assert json.loads(http_request(sandbox, "POST", LISTING_LIMIT_PATH, json.dumps({"limit": 7}))[2]) == {"limit": 7}
    assert json.loads(http_request(sandbox, "GET", LISTING_LIMIT_PATH)[2]) == {"limit": 7}
    assert sandbox.terminal.listing_limit == 7
