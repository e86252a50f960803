"""Reconciliation's decisions, pure: a processor's listing against the ledger's approvals, category by category."""

import datetime as dt
import json
from decimal import Decimal

import pytest

from payments import ledger, topology
from payments.processors.port import ListedTransaction
from payments.reconciliation import (
    AMOUNT_MISMATCH,
    COUNTED,
    DECLINED_AT_PROCESSOR,
    MATCHED,
    MISSING_AT_PROCESSOR,
    MISSING_IN_LEDGER,
    SETTLED,
    STATUS_MISMATCH,
    LedgerFact,
    expectations_of,
    findings_to_look_at_again,
    reconcile,
)
from payments.reconciliation_run import (
    InvalidReconciliationRequest,
    Listings,
    matched,
    parse_request,
    plan,
    report_of,
    summary_of,
    windows_of,
)
from statemachine import policy, reconciliation

DAY = dt.date(2026, 11, 19)
NOON = dt.datetime(2026, 11, 19, 12, 0, tzinfo=dt.UTC)
ELAVON = "elavon"


def at(minutes=0, base=NOON):
    return base + dt.timedelta(minutes=minutes)


def iso(moment):
    return moment.isoformat().replace("+00:00", "Z")


def listed(txn, ref, kind="sale", amount="25.00", *, currency="USD", outcome="APPROVED", settled=False, when=None):
    return ListedTransaction(txn, ref, kind, Decimal(amount), currency, outcome, settled, when or at())


def fact(status, transaction_id, txn, amount="25.00", *, operation=None, reason=None, when=None, **more):
    return LedgerFact(
        TransactionID=transaction_id,
        Status=status,
        CreatedAt=iso(when or at(1)),
        Amount=amount,
        Currency="USD",
        ProcessorID=ELAVON,
        OperationID=operation,
        ProcessorTransactionID=txn,
        ReasonCode=reason,
        **more,
    )


def run(listing, facts):
    return reconcile(listing, expectations_of(facts, ELAVON), DAY)


def categories(outcome):
    return {category: count for category, count in outcome.counts.items() if count}


def only_finding(outcome):
    [finding] = outcome.findings
    return finding


def test_a_sale_listed_as_the_ledger_holds_it_is_matched():
    outcome = run([listed("X1", "pay-1")], [fact(ledger.SUCCESS, "pay-1", "X1")])

    assert categories(outcome) == {MATCHED: 1}
    assert outcome.findings == [] and outcome.listed == 1


def test_a_settled_sale_is_matched_and_settled_for_the_payments_amount():
    outcome = run([listed("X1", "pay-1", settled=True)], [fact(ledger.SUCCESS, "pay-1", "X1")])

    assert categories(outcome) == {MATCHED: 1, SETTLED: 1}
    [charge] = outcome.settled
    assert (charge.transaction_id, charge.processor_transaction_id, charge.amount) == ("pay-1", "X1", "25.00")


def test_an_approval_the_ledger_does_not_hold_is_missing_in_the_ledger():
    outcome = run([listed("X9", "never-recorded", amount="12.00")], [])

    finding = only_finding(outcome)
    assert categories(outcome) == {MISSING_IN_LEDGER: 1}
    assert (finding.transaction_id, finding.reference, finding.processor_amount) == (None, "never-recorded", "12.00")
    assert findings_to_look_at_again(outcome) == ["never-recorded"]


def test_a_decline_the_ledger_does_not_hold_is_counted_never_a_mismatch():
    outcome = run([listed("X2", "pay-2", outcome="DECLINED")], [])

    assert categories(outcome) == {DECLINED_AT_PROCESSOR: 1}
    assert outcome.findings == [] and outcome.mismatches == 0


def test_an_approval_the_processor_does_not_list_is_missing_at_the_processor():
    outcome = run([], [fact(ledger.SUCCESS, "pay-3", "X3")])

    finding = only_finding(outcome)
    assert categories(outcome) == {MISSING_AT_PROCESSOR: 1}
    assert (finding.transaction_id, finding.processor_transaction_id, finding.ledger_status) == (
        "pay-3",
        "X3",
        ledger.SUCCESS,
    )
    assert findings_to_look_at_again(outcome) == ["pay-3"]


@pytest.mark.parametrize(
    ("amount", "currency", "detail"),
    [("26.00", "USD", "another amount"), ("25.00", "EUR", "another currency")],
)
def test_another_amount_or_currency_is_an_amount_mismatch(amount, currency, detail):
    outcome = run([listed("X4", "pay-4", amount=amount, currency=currency)], [fact(ledger.SUCCESS, "pay-4", "X4")])

    finding = only_finding(outcome)
    assert categories(outcome) == {AMOUNT_MISMATCH: 1}
    assert (finding.ledger_amount, finding.processor_amount) == ("25.00", amount) and detail in finding.detail


@pytest.mark.parametrize(
    ("listing", "detail"),
    [
        (listed("X5", "pay-5", outcome="DECLINED"), "lists it declined"),
        (listed("X5", "pay-5", outcome="UNKNOWN"), "does not say it was approved"),
        (listed("X5", "pay-5", kind="void"), "lists it voided"),
        (listed("X5", "pay-5", kind="authorization"), "the ledger holds a sale; the processor lists a authorization"),
        (listed("X5", "someone-else"), "another merchant reference"),
    ],
)
def test_a_transaction_both_hold_but_not_alike_is_a_status_mismatch(listing, detail):
    outcome = run([listing], [fact(ledger.SUCCESS, "pay-5", "X5")])

    finding = only_finding(outcome)
    assert categories(outcome) == {STATUS_MISMATCH: 1}
    assert finding.transaction_id == "pay-5" and detail in finding.detail


def test_a_voided_sale_is_listed_voided_and_its_void_is_matched():
    # A sale, then its void: Converge lists the sale as a VOID under its own id, and the void's record
    facts = [
        fact(ledger.SUCCESS, "pay-6", "X6", "40.00"),
        fact("VOID-SUCCESS", "pay-6", "Y6", "40.00", operation="pay-6-void", when=at(3)),
    ]
    listing = [listed("X6", "pay-6", "void", "40.00"), listed("Y6", "pay-6-void", "void", "40.00", when=at(2))]

    outcome = run(listing, facts)

    assert categories(outcome) == {MATCHED: 2} and outcome.settled == []


def test_a_sale_the_ledger_says_was_voided_but_is_listed_standing_is_a_status_mismatch():
    facts = [
        fact(ledger.SUCCESS, "pay-7", "X7"),
        fact("VOID-SUCCESS", "pay-7", "Y7", operation="pay-7-void", when=at(3)),
    ]

    outcome = run([listed("X7", "pay-7"), listed("Y7", "pay-7-void", "void", when=at(2))], facts)

    finding = only_finding(outcome)
    assert categories(outcome) == {MATCHED: 1, STATUS_MISMATCH: 1}
    assert finding.processor_transaction_id == "X7" and "says it was voided" in finding.detail


def test_an_authorization_captured_in_part_settles_for_what_was_captured():
    # One ssl_txn_id: the authorization under the TransactionID, its completion under the OperationID
    facts = [
        fact(ledger.AUTHORIZED, "pay-8", "X8", "80.00"),
        fact("CAPTURE-SUCCESS", "pay-8", "X8", "50.00", operation="pay-8-capture", when=at(5)),
    ]
    listing = [
        listed("X8", "pay-8", "authorization", "80.00", settled=True),
        listed("X8", "pay-8-capture", "capture", "50.00", settled=True, when=at(4)),
    ]

    outcome = run(listing, facts)

    assert categories(outcome) == {MATCHED: 2, SETTLED: 1}
    [charge] = outcome.settled
    assert (charge.transaction_id, charge.processor_transaction_id, charge.amount) == ("pay-8", "X8", "50.00")


def test_a_capture_for_another_amount_than_the_ledger_holds_is_an_amount_mismatch():
    facts = [
        fact(ledger.AUTHORIZED, "pay-9", "X9", "80.00"),
        fact("CAPTURE-SUCCESS", "pay-9", "X9", "50.00", operation="pay-9-capture"),
    ]
    listing = [listed("X9", "pay-9", "authorization", "80.00"), listed("X9", "pay-9-capture", "capture", "80.00")]

    outcome = run(listing, facts)

    assert categories(outcome) == {MATCHED: 1, AMOUNT_MISMATCH: 1}
    assert only_finding(outcome).operation_id == "pay-9-capture"


def test_a_released_authorization_is_listed_as_a_void_twice_under_one_id():
    facts = [
        fact(ledger.AUTHORIZED, "pay-10", "X10", "80.00"),
        fact("VOID-SUCCESS", "pay-10", "X10", "80.00", operation="pay-10-void"),
    ]
    listing = [listed("X10", "pay-10", "void", "80.00"), listed("X10", "pay-10-void", "void", "80.00")]

    assert categories(run(listing, facts)) == {MATCHED: 2}


def test_a_refund_is_matched_and_leaves_the_sale_standing():
    facts = [
        fact(ledger.SUCCESS, "pay-11", "X11", "100.00"),
        fact("REFUND-SUCCESS", "pay-11", "Z11", "30.00", operation="pay-11-refund"),
    ]
    listing = [
        listed("X11", "pay-11", amount="100.00", settled=True),
        listed("Z11", "pay-11-refund", "refund", "30.00"),
    ]

    outcome = run(listing, facts)

    assert categories(outcome) == {MATCHED: 2, SETTLED: 1}


@pytest.mark.parametrize("sale_listed_as", ["sale", "void"])
def test_a_reversal_in_flight_accepts_the_charge_standing_or_voided(sale_listed_as):
    outcome = run([listed("X12", "pay-12", sale_listed_as)], [fact(ledger.REVERSING, "pay-12", "X12")])

    assert categories(outcome) == {MATCHED: 1}


def test_a_settled_charge_being_reversed_is_matched_but_records_no_settlement():
    # Its payment ended failed (the caller was told so): status sync returns the charge in full
    outcome = run([listed("X24", "pay-24", settled=True)], [fact(ledger.REVERSING, "pay-24", "X24")])

    assert categories(outcome) == {MATCHED: 1} and outcome.settled == []


@pytest.mark.parametrize(
    ("how", "sale_listed_as", "reversal_listed_as"),
    [("REVERSE_BY_VOID", "void", "void"), ("REVERSE_BY_RETURN", "sale", "refund")],
)
def test_a_reversal_is_matched_as_the_way_it_went(how, sale_listed_as, reversal_listed_as):
    facts = [
        fact(ledger.REVERSING, "pay-13", "X13", reason=how),
        fact(ledger.REVERSED, "pay-13", "W13", operation="rev-pay-13", reason=how, when=at(4)),
    ]
    listing = [listed("X13", "pay-13", sale_listed_as), listed("W13", "rev-pay-13", reversal_listed_as, when=at(3))]

    assert categories(run(listing, facts)) == {MATCHED: 2}


def test_transactions_of_the_margins_match_but_are_never_reported_by_themselves():
    before, after = dt.datetime(2026, 11, 18, 23, 55, tzinfo=dt.UTC), dt.datetime(2026, 11, 20, 0, 5, tzinfo=dt.UTC)
    last_second = dt.datetime(2026, 11, 19, 23, 59, 59, tzinfo=dt.UTC)
    first_second = dt.datetime(2026, 11, 19, 0, 0, 1, tzinfo=dt.UTC)
    listing = [
        listed("A", "margin-only", when=before),  # the day before, no ledger entry: not today's to report
        listed("B", "pay-14", when=last_second),  # today, its ledger entry written just after midnight
        listed("D", "pay-16", amount="9.00", when=before),  # the day before, its entry today: that day's report
    ]
    facts = [
        fact(ledger.SUCCESS, "pay-14", "B", when=after),
        fact(ledger.SUCCESS, "pay-15", "C", when=after),  # tomorrow's, not listed: tomorrow's to report
        fact(ledger.SUCCESS, "pay-16", "D", when=first_second),
    ]

    outcome = run(listing, facts)

    assert categories(outcome) == {MATCHED: 1} and outcome.listed == 1


def test_an_entry_written_after_the_fact_is_looked_for_in_the_listing_of_the_day_its_request_left():
    # Status sync reverses, today, a sale its payment sent yesterday: today's listing cannot hold it, yesterday's
    yesterday = dt.datetime(2026, 11, 18, 9, 0, tzinfo=dt.UTC)
    facts = [
        fact(ledger.PENDING, "pay-16", None, when=yesterday),
        fact(ledger.FAILED, "pay-16", None, when=yesterday + dt.timedelta(minutes=2)),
        fact(ledger.REVERSING, "pay-16", "X16", when=at()),
    ]
    expected = expectations_of(facts, ELAVON)
    stored = {DAY - dt.timedelta(days=1): [listed("X16", "pay-16", when=yesterday + dt.timedelta(seconds=1))]}

    assert categories(reconcile([], expected, DAY, stored.get)) == {}
    assert categories(reconcile([], expected, DAY - dt.timedelta(days=1), stored.get)) == {}  # written today
    assert categories(run([], facts[2:])) == {MISSING_AT_PROCESSOR: 1}  # its pending entry not read: judged


def late_resolution(transaction_id, txn, resolution="COMPLETE"):
    """A payment pending from 23:58 the day before DAY; status sync (or an operator) records it approved at
    01:00 on DAY: its whole ledger, and the entry the EntriesByStatus index gives DAY's run."""
    pending_since = dt.datetime(2026, 11, 18, 23, 58, tzinfo=dt.UTC)
    written = at(-11 * 60)  # 01:00 on DAY
    whole = [
        entry(1, ledger.INITIATED, pending_since, transaction_id=transaction_id),
        entry(2, ledger.PENDING, pending_since, transaction_id=transaction_id),
        entry(
            3, ledger.SUCCESS, written, transaction_id=transaction_id, ProcessorTransactionID=txn, Resolution=resolution
        ),
    ]
    return whole, [fact(ledger.SUCCESS, transaction_id, txn, "40.00", when=written, Resolution=resolution)]


@pytest.mark.parametrize("resolution", ["COMPLETE", "OPERATOR"])
def test_a_late_resolution_converge_does_not_list_is_reported_on_the_day_it_was_written(resolution):
    whole, facts = late_resolution("pay-30", "X30", resolution)
    nothing = Listings([], pages=1, incomplete=[])

    outcome, looked_at_again = matched(nothing, facts, WholeLedgers({"pay-30": whole}), DAY, ELAVON)
    day_before = reconcile([], expectations_of(whole, ELAVON), DAY - dt.timedelta(days=1))

    finding = only_finding(outcome)
    assert categories(outcome) == {MISSING_AT_PROCESSOR: 1} and looked_at_again == 1
    assert (finding.transaction_id, finding.processor_transaction_id) == ("pay-30", "X30")
    assert "no listing of that day is stored" in finding.detail
    assert categories(day_before) == {}  # reported once: on the day it was written, not the day it dates from


def test_a_late_resolution_is_judged_against_the_stored_listing_of_the_day_its_request_left():
    whole, facts = late_resolution("pay-31", "X31")
    the_day_before = DAY - dt.timedelta(days=1)
    sent = dt.datetime(2026, 11, 18, 23, 58, 2, tzinfo=dt.UTC)
    nothing = Listings([], pages=1, incomplete=[])
    repository = WholeLedgers({"pay-31": whole})

    def judged(stored):
        outcome, _ = matched(nothing, facts, repository, DAY, ELAVON, {the_day_before: stored}.get)
        return outcome

    listed_there = judged([listed("X31", "pay-31", amount="40.00", when=sent)])
    listed_for_more = judged([listed("X31", "pay-31", amount="41.00", when=sent)])
    not_listed_there = judged([listed("X99", "someone-else", when=sent)])

    assert categories(listed_there) == {}  # that day's, as listed
    assert categories(listed_for_more) == {AMOUNT_MISMATCH: 1}
    assert f"in the stored listing of {the_day_before}" in only_finding(listed_for_more).detail
    assert categories(not_listed_there) == {MISSING_AT_PROCESSOR: 1}
    assert "that day's stored listing does not hold it either" in only_finding(not_listed_there).detail


def test_a_listing_in_the_margin_is_never_paired_by_processor_id_alone():
    # An authorization at 23:45:01 the day before (its entry at 23:44:59: before DAY's run reads the ledger);
    # its capture, at 00:05 on DAY, Converge never lists
    listing = [
        listed("X32", "pay-32", "authorization", "80.00", when=dt.datetime(2026, 11, 18, 23, 45, 1, tzinfo=dt.UTC))
    ]
    authorized = fact(
        ledger.AUTHORIZED, "pay-32", "X32", "80.00", when=dt.datetime(2026, 11, 18, 23, 44, 59, tzinfo=dt.UTC)
    )
    captured = fact("CAPTURE-SUCCESS", "pay-32", "X32", "50.00", operation="pay-32-capture", when=at(-(11 * 60 + 55)))

    today = run(listing, [captured])  # DAY's run reads from 23:45:00 the day before
    day_before = reconcile(listing, expectations_of([authorized, captured], ELAVON), DAY - dt.timedelta(days=1))

    assert categories(today) == {MISSING_AT_PROCESSOR: 1}
    assert only_finding(today).operation_id == "pay-32-capture"
    assert categories(day_before) == {MATCHED: 1}


def test_a_listing_of_the_day_is_still_paired_by_processor_id_alone():
    outcome = run([listed("X33", "not-our-reference")], [fact(ledger.SUCCESS, "pay-33", "X33")])

    assert categories(outcome) == {STATUS_MISMATCH: 1}
    assert "another merchant reference" in only_finding(outcome).detail


@pytest.mark.parametrize(
    ("listing", "facts", "expected", "detail"),
    [
        ([listed("U1", "nobody", "unknown")], [], {MISSING_IN_LEDGER: 1}, "a type reconciliation does not know"),
        (
            [listed("U2", "pay-34", "unknown")],
            [fact(ledger.SUCCESS, "pay-34", "U2")],
            {STATUS_MISMATCH: 1},
            "a transaction type reconciliation does not know",
        ),
        ([listed("U3", "nobody", "unknown", outcome="DECLINED")], [], {DECLINED_AT_PROCESSOR: 1}, None),
    ],
    ids=["unrecorded", "against-an-entry", "declined"],
)
def test_a_transaction_type_the_adapter_does_not_know_is_judged_as_money(listing, facts, expected, detail):
    outcome = run(listing, facts)

    assert categories(outcome) == expected and outcome.listed == 1 and outcome.not_money == 0
    assert detail is None or detail in only_finding(outcome).detail


def test_a_matched_charge_still_open_is_counted_not_yet_settled_in_the_report_and_summary():
    facts = [
        fact(ledger.SUCCESS, "pay-35", "X35"),
        fact(ledger.SUCCESS, "pay-36", "X36"),
        fact(ledger.AUTHORIZED, "pay-37", "X37", "80.00"),
        fact("CAPTURE-SUCCESS", "pay-37", "X37", "50.00", operation="pay-37-capture"),
        fact(ledger.AUTHORIZED, "pay-38", "X38", "80.00"),  # an authorization never settles: not counted
    ]
    listing = [
        listed("X35", "pay-35"),
        listed("X36", "pay-36", settled=True),
        listed("X37", "pay-37", "authorization", "80.00"),
        listed("X37", "pay-37-capture", "capture", "50.00"),
        listed("X38", "pay-38", "authorization", "80.00"),
    ]
    outcome = run(listing, facts)
    event = {"Date": DAY.isoformat(), "ProcessorID": ELAVON, "Run": "run-1", "Windows": []}

    report = report_of(event, Listings(listing, pages=1, incomplete=[]), outcome, [], 0, "arn")
    summary = summary_of(report, ["key"])

    assert categories(outcome) == {MATCHED: 5, SETTLED: 1}
    assert outcome.not_yet_settled == 2  # pay-35's sale and pay-37's capture: their PAYMENT-SETTLED waits
    assert report["NotYetSettled"] == summary["NotYetSettled"] == 2 and report["Mismatches"] == 0


def test_other_processors_and_non_money_transactions_are_left_out():
    facts = [LedgerFact("pay-17", ledger.SUCCESS, iso(at()), "25.00", "USD", "another", None, "X17")]
    listing = [listed("V1", "verify-1", "other", "0.00")]

    outcome = run(listing, facts)

    assert categories(outcome) == {} and outcome.not_money == 1 and outcome.listed == 0


def test_one_settled_fact_per_payment():
    facts = [
        fact(ledger.SUCCESS, "pay-18", "X18"),
        fact("CAPTURE-SUCCESS", "pay-18", "X18b", "10.00", operation="pay-18-capture"),
    ]
    listing = [
        listed("X18", "pay-18", settled=True),
        listed("X18b", "pay-18-capture", "capture", "10.00", settled=True),
    ]

    outcome = run(listing, facts)

    assert outcome.counts[SETTLED] == 2 and len(outcome.settled) == 1


def test_every_category_has_its_metric():
    assert set(topology.RECONCILIATION_METRICS) == set(COUNTED)


def test_findings_come_mismatch_category_by_category():
    listing = [listed("N1", "nobody", when=at(-5)), listed("X19", "pay-19", amount="1.00")]
    facts = [fact(ledger.SUCCESS, "pay-19", "X19"), fact(ledger.SUCCESS, "pay-20", "X20")]

    outcome = run(listing, facts)

    assert [f.category for f in outcome.findings] == [MISSING_IN_LEDGER, MISSING_AT_PROCESSOR, AMOUNT_MISMATCH]
    assert outcome.mismatches == 3


# -- the run's plan --------------------------------------------------------------------------------


def test_a_request_without_a_date_reconciles_yesterday_in_hour_windows():
    request = parse_request({}, today=dt.date(2026, 11, 20))

    assert (request.day, request.window_minutes, request.processor_id) == (DAY, 60, ELAVON)


def test_no_input_at_all_is_the_same_as_an_empty_one():
    assert parse_request(None, today=dt.date(2026, 11, 20)) == parse_request({}, today=dt.date(2026, 11, 20))


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"Date": "2026-11-21"}, "Date"),
        ({"Date": "2026-02-30"}, "Date"),
        ({"Date": "19/11/2026"}, "Date"),
        ({"Date": "0001-01-01"}, "Date"),
        ({"Date": "1999-12-31"}, "Date"),
        ({"WindowMinutes": 0}, "WindowMinutes"),
        ({"WindowMinutes": 1}, "WindowMinutes"),
        ({"WindowMinutes": 4}, "WindowMinutes"),
        ({"WindowMinutes": 1441}, "WindowMinutes"),
        ({"WindowMinutes": True}, "WindowMinutes"),
        ({"ProcessorID": "other"}, "ProcessorID"),
        ({"Provisional": "yes"}, "Provisional"),
        ({"Card": "x"}, "[unexpected field]"),
        (["x"], "[input]"),
        ([], "[input]"),
        (0, "[input]"),
        ("", "[input]"),
        (False, "[input]"),
    ],
)
def test_a_malformed_request_names_its_field(given, field):
    with pytest.raises(InvalidReconciliationRequest) as refused:
        parse_request(given, today=dt.date(2026, 11, 20))

    assert refused.value.field == field


def test_the_earliest_day_and_the_fewest_window_minutes_are_accepted():
    request = parse_request({"Date": "2000-01-01", "WindowMinutes": 5}, today=dt.date(2026, 11, 20))

    assert (request.day, request.window_minutes) == (dt.date(2000, 1, 1), 5)


@pytest.mark.parametrize(
    ("given", "now"),
    [
        ({"Date": "2026-11-20"}, dt.datetime(2026, 11, 20, 18, 0, tzinfo=dt.UTC)),  # today
        ({}, dt.datetime(2026, 11, 20, 0, 14, 59, tzinfo=dt.UTC)),  # yesterday, in the margin after it
    ],
    ids=["today", "yesterday-in-its-margin"],
)
def test_a_day_not_over_with_its_margin_is_refused_unless_asked_for_provisionally(given, now):
    with pytest.raises(InvalidReconciliationRequest, match="has not ended") as refused:
        parse_request(given, today=now.date(), now=now)

    provisional = parse_request({**given, "Provisional": True}, today=now.date(), now=now)
    assert refused.value.field == "Date" and "Provisional" in str(refused.value)
    assert provisional.provisional and provisional.day == dt.date.fromisoformat(given.get("Date", "2026-11-19"))


def test_yesterday_is_reconciled_once_its_margin_has_passed():
    now = dt.datetime(2026, 11, 20, 0, 15, tzinfo=dt.UTC)

    request = parse_request({}, today=now.date(), now=now)

    assert (request.day, request.provisional) == (DAY, False)


def test_the_fewest_window_minutes_keep_the_workflows_state_under_256_kb():
    # What MatchLedger is handed: the plan, and each window's counts from the Map (their largest)
    planned = plan(
        parse_request({"Date": DAY.isoformat(), "WindowMinutes": 5}, today=DAY + dt.timedelta(days=1)), "r" * 80
    )
    listings = [
        {
            "Index": w["Index"],
            "Listed": 10**6,
            "Pages": 1000,
            "Complete": False,
            "Key": f"{planned['Prefix']}windows/0000.json",
        }
        for w in planned["Windows"]
    ]
    state = {
        **planned,
        "Listings": listings,
        "ExecutionArn": "arn:aws:states:eu-west-1:123456789012:execution:" + "x" * 160,
    }

    assert len(planned["Windows"]) == 290
    assert len(json.dumps(state).encode()) < 256 * 1024


def test_windows_cover_the_day_and_a_margin_either_side_without_gaps():
    windows = windows_of(DAY, 7 * 60)

    assert [(w["Start"], w["End"]) for w in windows] == [
        ("2026-11-18T23:45:00Z", "2026-11-19T00:00:00Z"),
        ("2026-11-19T00:00:00Z", "2026-11-19T07:00:00Z"),
        ("2026-11-19T07:00:00Z", "2026-11-19T14:00:00Z"),
        ("2026-11-19T14:00:00Z", "2026-11-19T21:00:00Z"),
        ("2026-11-19T21:00:00Z", "2026-11-20T00:00:00Z"),
        ("2026-11-20T00:00:00Z", "2026-11-20T00:15:00Z"),
    ]
    assert [w["Index"] for w in windows] == list(range(6))
    assert len(windows_of(DAY, 60)) == 26


# -- the state machine -----------------------------------------------------------------------------


def lambda_tasks(states):
    for name, state in states.items():
        if state.get("Resource") == "arn:aws:states:::lambda:invoke":
            yield name, state
        if "ItemProcessor" in state:
            yield from lambda_tasks(state["ItemProcessor"]["States"])


def test_every_reconciliation_task_retries_lambda_service_errors_and_our_dependencies():
    tasks = dict(lambda_tasks(reconciliation.definition()["States"]))

    assert set(tasks) == {"PlanReconciliation", "ListProcessorWindow", "MatchLedger"}
    for task in tasks.values():
        errors = [tuple(retrier["ErrorEquals"]) for retrier in task["Retry"]]
        assert policy.LAMBDA_SERVICE_ERRORS in errors and policy.DEPENDENCY_ERRORS in errors


def test_windows_are_listed_in_a_bounded_distributed_map_that_never_fails_the_run():
    listing = reconciliation.definition()["States"]["ListWindows"]
    task = listing["ItemProcessor"]["States"]["ListProcessorWindow"]

    assert listing["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert listing["MaxConcurrency"] == reconciliation.MAX_CONCURRENCY
    assert [c["ErrorEquals"] for c in task["Catch"]] == [["States.ALL"]]
    assert task["Retry"][0] == {"ErrorEquals": ["ProcessorRejected"], "MaxAttempts": 0}


# -- looking again with a payment's whole ledger ---------------------------------------------------


class WholeLedgers:
    """A LedgerRepository's `entries`, from a dict of TransactionID to its entries."""

    def __init__(self, entries):
        self._entries = entries
        self.read = []

    def entries(self, transaction_id):
        self.read.append(transaction_id)
        return self._entries.get(transaction_id, [])


def entry(number, status, when, amount="40.00", transaction_id="pay-21", **more):
    return ledger.LedgerEntry(
        TransactionID=transaction_id,
        EntryNumber=number,
        Status=status,
        SecureToken="token",
        Amount=amount,
        Currency="USD",
        ProcessorID=ELAVON,
        ExecutionArn="arn",
        CreatedAt=iso(when),
        **more,
    )


def test_a_finding_is_looked_at_again_with_the_payments_whole_ledger():
    # The sale today, its void tomorrow (before the run): today's entries alone cannot explain the listing
    tomorrow = at(24 * 60)
    whole = [
        entry(1, ledger.INITIATED, at()),
        entry(2, ledger.PENDING, at()),
        entry(3, ledger.SUCCESS, at(), ProcessorTransactionID="X21"),
        entry(4, "VOID-INITIATED", tomorrow, OperationID="pay-21-void"),
        entry(5, "VOID-PENDING", tomorrow, OperationID="pay-21-void"),
        entry(6, "VOID-SUCCESS", tomorrow, OperationID="pay-21-void", ProcessorTransactionID="Y21"),
    ]
    listings = Listings([listed("X21", "pay-21", "void", "40.00")], pages=1, incomplete=[])
    facts = [fact(ledger.SUCCESS, "pay-21", "X21", "40.00")]
    repository = WholeLedgers({"pay-21": whole})

    first = reconcile(listings.transactions, expectations_of(facts, ELAVON), DAY)
    outcome, looked_at_again = matched(listings, facts, repository, DAY, ELAVON)

    assert categories(first) == {STATUS_MISMATCH: 1}
    assert categories(outcome) == {MATCHED: 1} and looked_at_again == 1 and repository.read == ["pay-21"]


def test_an_approval_nobody_recorded_is_looked_for_under_its_reference_and_stays_missing():
    listings = Listings([listed("X22", "forged-22")], pages=1, incomplete=[])
    repository = WholeLedgers({})

    outcome, looked_at_again = matched(listings, [], repository, DAY, ELAVON)
    assert looked_at_again == 1

    assert categories(outcome) == {MISSING_IN_LEDGER: 1} and repository.read == ["forged-22"]
