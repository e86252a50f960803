"""Each invariant catches the violation it exists for: the records are forged, the verdict must say so."""

import copy
import json

import pytest

from local.chaos import invariants
from local.chaos.observations import Observations


def entry(transaction_id, number, status, **extra):
    return {"TransactionID": transaction_id, "EntryNumber": number, "Status": status, "Amount": "25.00", **extra}


def consistent():
    """Two payments, recorded as the system records a success and a decline."""
    return Observations(
        transaction_ids=["paid", "declined"],
        executions={
            "paid": {"status": "SUCCEEDED", "output": json.dumps({"Status": "PAYMENT-SUCCESS"})},
            "declined": {"status": "SUCCEEDED", "output": json.dumps({"Status": "PAYMENT-DECLINED"})},
        },
        ledger={
            "paid": [
                entry("paid", 1, "PAYMENT-INITIATED"),
                entry("paid", 2, "PAYMENT-PENDING"),
                entry("paid", 3, "PAYMENT-SUCCESS", ProcessorTransactionID="TXN-1"),
            ],
            "declined": [
                entry("declined", 1, "PAYMENT-INITIATED"),
                entry("declined", 2, "PAYMENT-PENDING"),
                entry("declined", 3, "PAYMENT-DECLINED"),
            ],
        },
        ledger_changes=[{"eventName": "INSERT", "dynamodb": {"Keys": {"TransactionID": {"S": "paid"}}}}],
        audit={"paid": [{"Operation": "ccsale"}], "declined": [{"Operation": "ccsale"}]},
        charges=[
            {"ssl_merchant_txn_id": "paid", "ssl_txn_id": "TXN-1", "approved_charge": True},
            {"ssl_merchant_txn_id": "declined", "ssl_txn_id": "TXN-2", "approved_charge": False},
        ],
        answered_calls={"paid": ["ccsale"], "declined": ["ccsale"]},
        history={"paid": [{"type": "ExecutionStarted"}], "declined": [{"type": "ExecutionStarted"}]},
        table_items=[],
        logs="",
    )


def test_a_consistent_record_passes_every_invariant():
    assert [v.name for v in invariants.check_all(consistent()) if not v.holds] == []


def forge(change):
    observations = copy.deepcopy(consistent())
    change(observations)
    return observations


VIOLATIONS = [
    ("every_execution_ends", lambda o: o.executions["paid"].update(status="RUNNING")),
    ("ledger_is_append_only_and_complete", lambda o: o.ledger["paid"].append(entry("paid", 4, "PAYMENT-FAILED"))),
    ("ledger_is_append_only_and_complete", lambda o: o.ledger["paid"].pop(1)),  # a gap: 1, 3
    ("ledger_is_append_only_and_complete", lambda o: o.ledger["paid"].pop()),  # no terminal entry
    (
        "ledger_is_append_only_and_complete",
        lambda o: o.ledger_changes.append(
            {"eventName": "MODIFY", "dynamodb": {"Keys": {"TransactionID": {"S": "paid"}}}}
        ),
    ),
    (
        "charges_belong_to_successful_payments",
        lambda o: o.charges.append({"ssl_merchant_txn_id": "paid", "ssl_txn_id": "TXN-3", "approved_charge": True}),
    ),
    ("charges_belong_to_successful_payments", lambda o: o.charges[1].update(approved_charge=True)),
    ("successes_were_charged_once", lambda o: o.charges[0].update(approved_charge=False)),
    ("processor_calls_are_audited", lambda o: o.answered_calls["paid"].append("txnquery")),
    ("output_matches_ledger", lambda o: o.executions["paid"].update(output=json.dumps({"Status": "PAYMENT-FAILED"}))),
    ("no_card_data_at_rest", lambda o: o.table_items.append({"TransactionID": "paid", "Note": "4111111111111111"})),
    ("no_card_data_at_rest", lambda o: setattr(o, "logs", '{"message": "charging", "Cvv": "847"}')),
    (
        "no_card_data_at_rest",
        lambda o: o.history["paid"].append({"type": "TaskStateExited", "output": '{"Number": "4111111111111111"}'}),
    ),
]


@pytest.mark.parametrize(("invariant", "violation"), VIOLATIONS)
def test_each_invariant_catches_its_violation(invariant, violation):
    check = getattr(invariants, invariant)
    assert check(consistent()) == []
    assert check(forge(violation)) != []
