"""Which endings are unresolved, and what resolves each: the decision half of the status sync."""

import datetime as dt
from dataclasses import dataclass

import pytest

from payments.status_sync import (
    DEFAULT_LOOKBACK,
    DEFAULT_PENDING_DEADLINE,
    InvalidSyncRequest,
    candidates_in,
    parse_sync_request,
    resolution_for,
    unresolved_in,
)

NOW = dt.datetime(2026, 11, 27, 16, 0, tzinfo=dt.UTC)
DEADLINE = dt.timedelta(minutes=30)


@dataclass(frozen=True)
class Entry:
    Status: str
    CreatedAt: str = "2026-11-27T15:00:00Z"  # an hour ago: past the deadline
    OperationID: str | None = None
    ReasonCode: str | None = None
    TransactionID: str = "order-1"


def unresolved(*entries):
    return [(u.operation_id, u.why) for u in unresolved_in("order-1", entries, now=NOW, pending_deadline=DEADLINE)]


PAID = [Entry("PAYMENT-INITIATED"), Entry("PAYMENT-PENDING"), Entry("PAYMENT-SUCCESS")]


def test_a_payment_failed_with_its_outcome_unknown_or_pending_past_the_deadline_is_unresolved():
    assert unresolved(*PAID[:2], Entry("PAYMENT-FAILED", ReasonCode="PROCESSOR_OUTCOME_UNKNOWN")) == [
        (None, "OUTCOME_UNKNOWN")
    ]
    assert unresolved(*PAID[:2]) == [(None, "PENDING_PAST_DEADLINE")]
    assert unresolved(*PAID[:1], Entry("PAYMENT-PENDING", CreatedAt="2026-11-27T15:45:00Z")) == []  # not yet


@pytest.mark.parametrize("reason", ["PROCESSOR_REJECTED", "PROCESSOR_UNAVAILABLE", "CARD_NOT_IN_VAULT", None])
def test_an_ending_that_says_what_happened_to_the_money_is_resolved(reason):
    assert unresolved(*PAID) == []
    assert unresolved(*PAID[:2], Entry("PAYMENT-FAILED", ReasonCode=reason)) == []


def test_an_operation_failed_after_a_request_may_have_left_or_stuck_pending_is_unresolved():
    refund = [Entry("REFUND-INITIATED", OperationID="r1"), Entry("REFUND-PENDING", OperationID="r1")]

    assert unresolved(*PAID, *refund) == [("r1", "PENDING_PAST_DEADLINE")]
    assert unresolved(
        *PAID, *refund, Entry("REFUND-FAILED", OperationID="r1", ReasonCode="PROCESSOR_OUTCOME_UNKNOWN")
    ) == [("r1", "OUTCOME_UNKNOWN")]
    assert unresolved(*PAID, *refund, Entry("REFUND-FAILED", OperationID="r1", ReasonCode="NOT_SENT")) == []
    assert unresolved(*PAID, *refund, Entry("REFUND-SUCCESS", OperationID="r1")) == []


@pytest.mark.parametrize(
    ("operation_id", "why", "approved", "resolution"),
    [
        (None, "PENDING_PAST_DEADLINE", True, "COMPLETE"),
        (None, "PENDING_PAST_DEADLINE", False, "FAIL_NOT_CHARGED"),
        (None, "OUTCOME_UNKNOWN", True, "REVERSE"),  # the caller was told it failed
        (None, "OUTCOME_UNKNOWN", False, "RECORD_NOT_CHARGED"),
        ("r1", "PENDING_PAST_DEADLINE", True, "COMPLETE"),
        ("r1", "OUTCOME_UNKNOWN", True, "RECORD_SUCCESS"),
        ("r1", "OUTCOME_UNKNOWN", False, "RECORD_NOT_CHARGED"),
    ],
)
def test_what_the_processor_holds_decides_the_resolution(operation_id, why, approved, resolution):
    entries = [*PAID[:2]] if operation_id is None else [*PAID, Entry("REFUND-INITIATED", OperationID="r1")]
    if why == "OUTCOME_UNKNOWN":
        status = "PAYMENT-FAILED" if operation_id is None else "REFUND-FAILED"
        entries.append(Entry(status, OperationID=operation_id, ReasonCode="PROCESSOR_OUTCOME_UNKNOWN"))
    [found] = unresolved_in("order-1", entries, now=NOW, pending_deadline=DEADLINE)

    assert found.reference == (operation_id or "order-1")
    assert resolution_for(found, approved_at_processor=approved) == resolution


UNKNOWN = Entry("PAYMENT-FAILED", ReasonCode="PROCESSOR_OUTCOME_UNKNOWN")


@pytest.mark.parametrize(
    "resolution",
    [
        [Entry("PAYMENT-FAILED", ReasonCode="NOT_CHARGED")],
        [Entry("PAYMENT-REVERSING", OperationID="rev-x"), Entry("PAYMENT-REVERSED", OperationID="rev-x")],
    ],
    ids=["not-charged", "reversed"],
)
def test_a_resolution_entry_resolves_an_unknown_payment(resolution):
    assert unresolved(*PAID[:2], UNKNOWN, *resolution) == []


def test_a_reversal_on_its_way_leaves_the_payment_unresolved_until_it_is_recorded():
    assert unresolved(*PAID[:2], UNKNOWN, Entry("PAYMENT-REVERSING", OperationID="rev-x")) == [
        (None, "OUTCOME_UNKNOWN")
    ]


def test_a_settled_fact_after_a_success_is_no_pending_payment():
    assert unresolved(*PAID, Entry("PAYMENT-SETTLED")) == []


def test_an_operation_resolved_after_an_unknown_failure_is_resolved():
    refund = [Entry("REFUND-INITIATED", OperationID="r1"), Entry("REFUND-PENDING", OperationID="r1")]
    failed = Entry("REFUND-FAILED", OperationID="r1", ReasonCode="PROCESSOR_OUTCOME_UNKNOWN")

    assert unresolved(*PAID, *refund, failed, Entry("REFUND-SUCCESS", OperationID="r1")) == []
    assert unresolved(*PAID, *refund, failed, Entry("REFUND-FAILED", OperationID="r1", ReasonCode="NOT_CHARGED")) == []


def test_candidates_are_grouped_by_payment_from_index_rows_in_any_order():
    rows = [
        Entry("PAYMENT-PENDING", TransactionID="b"),
        Entry("PAYMENT-INITIATED", CreatedAt="2026-11-27T14:59:00Z", TransactionID="b"),
        Entry("PAYMENT-FAILED", ReasonCode="PROCESSOR_OUTCOME_UNKNOWN", TransactionID="a"),
        Entry("PAYMENT-INITIATED", TransactionID="c"),
        Entry("PAYMENT-SUCCESS", CreatedAt="2026-11-27T15:01:00Z", TransactionID="c"),
    ]

    found = candidates_in(rows, now=NOW, pending_deadline=DEADLINE)

    assert sorted((u.transaction_id, u.why) for u in found) == [
        ("a", "OUTCOME_UNKNOWN"),
        ("b", "PENDING_PAST_DEADLINE"),
    ]


def test_a_sync_request_takes_bounds_and_refuses_anything_else():
    assert parse_sync_request({}) == parse_sync_request({"LookbackHours": 48})
    assert parse_sync_request({}).pending_deadline == DEFAULT_PENDING_DEADLINE
    assert parse_sync_request({"PendingDeadlineSeconds": 0}).pending_deadline == dt.timedelta(0)
    assert parse_sync_request({}).lookback == DEFAULT_LOOKBACK
    for bad in (
        {"LookbackHours": 0},
        {"PendingDeadlineSeconds": "60"},
        {"PendingDeadlineSeconds": True},
        {"Now": 1},
        [],
    ):
        with pytest.raises(InvalidSyncRequest):
            parse_sync_request(bad)
