"""A small fixed-seed chaos run on the local stack: every fault kind meets a payment, every invariant
holds, and every payment ends as its card and amount call for, with money moved once per success."""

import datetime as dt
from collections import Counter
from decimal import Decimal

import pytest

from local.card_scan import card_data_in
from local.chaos.plan import ALL_KINDS, OPERATION_KINDS, RACE, plan, plan_operations
from local.chaos.run import format_report, run
from local.payment_requests import APPROVING, DECLINING

SEED, PAYMENTS = 11, 30
KNOWN_OUTCOMES = {
    "SUCCEEDED PAYMENT-SUCCESS",
    "SUCCEEDED PAYMENT-AUTHORIZED",
    "SUCCEEDED PAYMENT-DECLINED",
    "FAILED PAYMENT-FAILED",
}


def test_the_same_seed_gives_the_same_fault_schedule():
    first, again, other = plan(7, 40), plan(7, 40), plan(8, 40)
    assert [(p.request, p.faults) for p in first] == [(p.request, p.faults) for p in again]
    assert [p.faults for p in first] != [p.faults for p in other]


def test_the_plan_pays_with_every_test_card_unexpired_under_ids_that_are_no_card_number():
    planned = plan(SEED, 200)

    assert {p.request["PaymentMethod"]["Number"] for p in planned} == {*APPROVING, DECLINING}
    assert {p.expected for p in planned} == {"PAYMENT-SUCCESS", "PAYMENT-AUTHORIZED", "PAYMENT-DECLINED"}
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
    unknown = {t: o for t, o in report.payment_outcomes.items() if o not in KNOWN_OUTCOMES}
    assert unknown == {}, format_report(report)


def test_every_payment_ends_as_its_card_and_amount_call_for(report, planned):
    # Declines (the declining card, a declining amount) end declined, approvals approved (authorized
    # when capture is manual), faults or not.
    assert Counter(p.expected for p in planned.values()) == {
        "PAYMENT-SUCCESS": 8,
        "PAYMENT-AUTHORIZED": 13,
        "PAYMENT-DECLINED": 9,
    }
    assert report.statuses == {t: p.expected for t, p in planned.items()}, format_report(report)
    assert report.not_as_expected == []


def test_money_moves_once_per_success_for_the_amount_asked(report, planned):
    successes = {t for t, status in report.statuses.items() if status == "PAYMENT-SUCCESS"}
    charges = [
        c
        for c in report.observations.charges
        if c.get("ssl_transaction_type") == "SALE" and c["ssl_result"] == "0" and c["ssl_merchant_txn_id"] in planned
    ]

    assert len(charges) == len(successes), format_report(report)
    assert report.approved_charges == Counter(dict.fromkeys(successes, 1))
    for c in charges:
        assert Decimal(str(c["ssl_amount"])) == Decimal(planned[c["ssl_merchant_txn_id"]].request["Amount"])


def test_the_report_says_what_happened_to_the_money(report):
    text = format_report(report)

    assert "    8  payments ended PAYMENT-SUCCESS" in text
    assert "   13  payments ended PAYMENT-AUTHORIZED (held, not charged)" in text
    assert "    8  approved sales in the processor's record (voided later or not)" in text
    assert "   30  payments ended as their card and amount call for" in text


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
