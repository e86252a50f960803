"""A small fixed-seed chaos run on the local stack: every fault kind meets a payment, some endings are
left unknown on purpose and status sync resolves them, every invariant holds, and every payment ends as
its card and amount call for (or as status sync must leave it), with money moved once per success."""

import datetime as dt
from collections import Counter
from decimal import Decimal

import pytest

from local.card_scan import card_data_in
from local.chaos.plan import ALL_KINDS, OPERATION_KINDS, RACE, UNKNOWN_KINDS, plan, plan_operations
from local.chaos.run import format_report, run
from local.payment_requests import APPROVING, DECLINING

# 30 payments meet every fault kind; the 6 after them include 4 endings left unknown on purpose.
SEED, PAYMENTS = 11, 36
KNOWN_OUTCOMES = {
    "SUCCEEDED PAYMENT-SUCCESS",
    "SUCCEEDED PAYMENT-AUTHORIZED",
    "SUCCEEDED PAYMENT-DECLINED",
    "FAILED PAYMENT-FAILED",
}
# Its terminal ledger steps failed for good: it fails, and the caller gets no Status (invariant 6 judges it).
STUCK_OUTCOMES = {"FAILED PaymentOutcomeUnknown", "FAILED PaymentFailed"}


def test_the_same_seed_gives_the_same_fault_schedule():
    first, again, other = plan(7, 40), plan(7, 40), plan(8, 40)
    assert [(p.request, p.faults) for p in first] == [(p.request, p.faults) for p in again]
    assert [p.faults for p in first] != [p.faults for p in other]


def test_the_plan_pays_with_every_test_card_unexpired_under_ids_that_are_no_card_number():
    planned = plan(SEED, 200)

    assert {p.request["PaymentMethod"]["Number"] for p in planned} == {*APPROVING, DECLINING}
    assert {p.expected for p in planned if not p.unknown} == {
        "PAYMENT-SUCCESS",
        "PAYMENT-AUTHORIZED",
        "PAYMENT-DECLINED",
    }
    assert {p.expected for p in planned if p.unknown} == {
        "PAYMENT-SUCCESS",
        "PAYMENT-AUTHORIZED",
        "PAYMENT-REVERSED",
        "PAYMENT-FAILED",
    }
    assert {p.request.get("Capture") for p in planned} == {None, "manual"}
    for p in planned:
        assert p.request["TransactionID"] == p.transaction_id == f"chaos-{SEED}-{int(p.transaction_id[-4:]):04d}"
        assert card_data_in(p.transaction_id) == [] and sum(ch.isdigit() for ch in p.transaction_id) < 12
        assert p.request["PaymentMethod"]["ExpiryYear"] > dt.datetime.now(dt.UTC).year


@pytest.fixture(scope="module")
def report(stack):
    return run(seed=SEED, payments=PAYMENTS, concurrency=8, stack=stack)


@pytest.fixture(scope="module")
def planned():
    return {p.transaction_id: p for p in plan(SEED, PAYMENTS)}


def test_the_first_payments_meet_every_fault_kind_as_a_sale_and_as_an_authorization(planned):
    met = {(p.faults[0], p.request.get("Capture")) for p in planned.values() if p.faults}

    assert met >= {(kind, capture) for kind in ALL_KINDS for capture in (None, "manual")}


def test_a_seeded_chaos_run_keeps_every_invariant(report):
    assert report.holds, format_report(report)
    assert set(ALL_KINDS) <= {k for k, n in report.injected_faults.items() if n > 0}, format_report(report)


def test_every_payment_ends_in_a_known_outcome(report, planned):
    assert set(report.payment_outcomes) == set(planned)
    stuck = {t for t, p in planned.items() if p.unknown == "unknown:pending"}
    unknown = {
        t: o
        for t, o in report.payment_outcomes.items()
        if o not in KNOWN_OUTCOMES and not (t in stuck and o in STUCK_OUTCOMES)
    }
    assert unknown == {}, format_report(report)


def test_every_payment_ends_as_its_card_and_amount_call_for(report, planned):
    # Declines (the declining card, a declining amount) end declined, approvals approved (authorized
    # when capture is manual), faults or not.
    assert Counter(p.expected for p in planned.values()) == {
        "PAYMENT-SUCCESS": 9,
        "PAYMENT-AUTHORIZED": 13,
        "PAYMENT-DECLINED": 11,
        "PAYMENT-REVERSED": 2,  # charged, every lookup lost: reversed by status sync
        "PAYMENT-FAILED": 1,  # nothing reached Converge: recorded NOT_CHARGED
    }
    assert report.statuses == {t: p.expected for t, p in planned.items()}, format_report(report)
    assert report.resolutions == {t: p.resolution for t, p in planned.items()}, format_report(report)
    assert report.not_as_expected == []


def test_money_moves_once_per_success_for_the_amount_asked(report, planned):
    successes = {t for t, status in report.statuses.items() if status == "PAYMENT-SUCCESS"}
    # A sale made after its payment was told failed is the one other approved sale: status sync reversed it.
    reversed_sales = {
        t for t, p in planned.items() if p.expected == "PAYMENT-REVERSED" and p.request.get("Capture") is None
    }
    charges = [
        c
        for c in report.observations.charges
        if c.get("ssl_transaction_type") == "SALE" and c["ssl_result"] == "0" and c["ssl_merchant_txn_id"] in planned
    ]

    assert len(charges) == len(successes | reversed_sales), format_report(report)
    assert report.approved_charges == Counter(dict.fromkeys(successes | reversed_sales, 1))
    for c in charges:
        assert Decimal(str(c["ssl_amount"])) == Decimal(planned[c["ssl_merchant_txn_id"]].request["Amount"])


def test_the_report_says_what_happened_to_the_money(report):
    text = format_report(report)

    assert "    9  payments ended PAYMENT-SUCCESS" in text
    assert "   13  payments ended PAYMENT-AUTHORIZED (held, not charged)" in text
    assert "   10  approved sales in the processor's record (voided later or not)" in text
    assert "   36  payments ended as their card and amount call for" in text
    assert "    0  payments or operations unresolved or pending after sync" in text


def test_endings_left_unknown_are_planned_and_each_resolved_as_planned(report, planned):
    assert report.planned_unknown == {
        "payment unknown:charged": 2,
        "payment unknown:not_sent": 1,
        "payment unknown:pending": 1,
        "operation unknown:not_sent": 1,
        "operation unknown:pending": 1,
    }
    assert report.sync.left == [] and report.sync.errors == [], format_report(report)
    assert report.sync.resolutions == {
        "REVERSE -> PAYMENT-REVERSED": 2,
        "RECORD_NOT_CHARGED -> PAYMENT-FAILED": 1,
        "COMPLETE -> PAYMENT-SUCCESS": 1,
        "RECORD_NOT_CHARGED -> REFUND-FAILED": 1,
        "COMPLETE -> REFUND-SUCCESS": 1,
    }, format_report(report)
    [unresolved] = [v for v in report.verdicts if v.name.startswith("15 ")]
    assert unresolved.holds and unresolved.checked == PAYMENTS + len(report.planned_operations)


def test_a_big_run_plans_every_unknown_ending_as_a_sale_an_authorization_and_an_operation():
    payments = plan(1, 200)
    unknown = [p for p in payments if p.unknown]
    operations = [op for op in plan_operations(1, payments).operations if op.unknown]

    assert 5 <= len(unknown) <= 15  # about one payment in twenty
    assert {(p.unknown, p.request.get("Capture")) for p in unknown} == {
        (kind, capture) for kind in UNKNOWN_KINDS for capture in (None, "manual")
    }
    assert {op.unknown for op in operations} == set(UNKNOWN_KINDS)
    assert {op.request["Operation"] for op in operations} == {"capture", "void", "refund"}
    # An unknown ending meets only its own faults, scoped to its own reference; no operation runs on a
    # payment left unknown, and an operation left unknown is its payment's last.
    for p in unknown:
        assert p.faults == [p.unknown] and p.resolution is not None
        assert all(rule.match.get("ssl_merchant_txn_id") == p.transaction_id for rule in p.processor_rules)
    planned_operations = plan_operations(1, payments).operations
    assert not {op.transaction_id for op in planned_operations} & {p.transaction_id for p in unknown}
    for op in operations:
        assert all(rule.match.get("ssl_merchant_txn_id") == op.operation_id for rule in op.processor_rules)
        assert [o.operation_id for o in planned_operations if o.transaction_id == op.transaction_id][-1] == (
            op.operation_id
        )


def test_operations_are_mixed_in_each_kind_refusals_and_a_race_of_two_refunds(planned):
    operations = plan_operations(SEED, list(planned.values())).operations
    kinds = {(op.request["Operation"], op.expected) for op in operations}

    assert {"CAPTURE-SUCCESS", "VOID-SUCCESS", "REFUND-SUCCESS", RACE} <= {expected for _, expected in kinds}
    assert {op.reason for op in operations} >= {"EXCEEDS_REFUNDABLE", "ALREADY_VOIDED"}
    singles = [op for op in plan_operations(SEED, plan(SEED, 200)).operations if op.expected != RACE]
    assert [op.faults[0] for op in singles[: len(OPERATION_KINDS)]] == OPERATION_KINDS  # `make chaos` meets them all
    for op in operations:
        assert card_data_in(op.operation_id) == [] and sum(ch.isdigit() for ch in op.operation_id) < 12


def test_every_operation_ends_as_the_payments_history_calls_for(report):
    assert report.operations_not_as_planned == [], format_report(report)
    assert sum(report.operation_outcomes.values()) == len(report.planned_operations)
