"""Each invariant catches the violation it exists for: the records are forged, the verdict must say so."""

import copy
import json

import pytest
from boto3.dynamodb.types import TypeDeserializer

from local.chaos import invariants
from local.chaos.observations import Observations
from payments import chain, events
from payments.status_resolution import reversal_reference

_deserialize = TypeDeserializer().deserialize


def entry(transaction_id, number, status, **extra):
    return {"TransactionID": transaction_id, "EntryNumber": number, "Status": status, "Amount": "25.00", **extra}


def record(transaction_id, operation, attempt=1):
    return {
        "TransactionID": transaction_id,
        "AuditID": f"2026-01-01T00:00:0{attempt}Z#{operation}#{attempt}",
        "Operation": operation,
    }


def chained(items, numbered_by=None):
    """The items as the repositories write them: linked in this order (and numbered, for the audit trail)."""
    written, link = [], chain.GENESIS
    for seq, values in enumerate(items, start=1):
        item = chain.sealed(chain.typed({**values, **({numbered_by: seq} if numbered_by else {})}), link)
        link = item[chain.ENTRY_HASH]["S"]
        written.append({name: _deserialize(value) for name, value in item.items()})
    return written


def charge(transaction_id, txn_id, approved=True, **extra):
    """A sale as the sandbox records it."""
    return {
        "ssl_merchant_txn_id": transaction_id,
        "ssl_txn_id": txn_id,
        "ssl_transaction_type": "SALE",
        "ssl_result": "0" if approved else "1",
        "ssl_amount": "25.00",
        "approved_charge": approved,
        **extra,
    }


def audited(*records):
    return chained(records, numbered_by=chain.CHAIN_SEQ)


def published(transaction_id, number, status):
    """The event of a terminal entry, as the payments bus delivers it to the queue."""
    detail = {"EventID": f"{transaction_id}#{number}", "TransactionID": transaction_id, "Status": status}
    return {"source": events.EVENT_SOURCE, "detail-type": events.detail_type_of(status), "detail": detail}


def consistent():
    """Three payments, recorded as the system records a success, a decline and a failure."""
    return Observations(
        transaction_ids=["paid", "declined", "failed"],
        executions={
            "paid": {"status": "SUCCEEDED", "output": json.dumps({"Status": "PAYMENT-SUCCESS"})},
            "declined": {"status": "SUCCEEDED", "output": json.dumps({"Status": "PAYMENT-DECLINED"})},
            "failed": {"status": "FAILED", "error": "PaymentFailed", "cause": json.dumps({"Status": "PAYMENT-FAILED"})},
        },
        ledger={
            "paid": chained(
                [
                    entry("paid", 1, "PAYMENT-INITIATED"),
                    entry("paid", 2, "PAYMENT-PENDING"),
                    entry("paid", 3, "PAYMENT-SUCCESS", ProcessorTransactionID="TXN-1"),
                ]
            ),
            "declined": chained(
                [
                    entry("declined", 1, "PAYMENT-INITIATED"),
                    entry("declined", 2, "PAYMENT-PENDING"),
                    entry("declined", 3, "PAYMENT-DECLINED"),
                ]
            ),
            "failed": chained(
                [
                    entry("failed", 1, "PAYMENT-INITIATED"),
                    entry("failed", 2, "PAYMENT-PENDING"),
                    entry("failed", 3, "PAYMENT-FAILED"),
                ]
            ),
        },
        ledger_changes=[{"eventName": "INSERT", "dynamodb": {"Keys": {"TransactionID": {"S": "paid"}}}}],
        audit={
            "paid": audited(record("paid", "ccsale")),
            "declined": audited(record("declined", "ccsale")),
            "failed": audited(record("failed", "ccsale", 1), record("failed", "ccsale", 2)),
        },
        charges=[charge("paid", "TXN-1"), charge("declined", "TXN-2", approved=False)],
        # The failed payment's two sales were answered with a Converge error, and both audited.
        answered_calls={"paid": ["ccsale"], "declined": ["ccsale"], "failed": ["ccsale", "ccsale"]},
        history={t: [{"type": "ExecutionStarted"}] for t in ("paid", "declined", "failed")},
        table_items=[],
        audit_payloads=[
            {
                "TransactionID": "paid",
                "AuditID": "2026-01-01T00:00:00Z#ccsale#1",
                "Field": "EncryptedQuery",
                "Plaintext": {"ssl_transaction_type": "ccsale", "ssl_card_number": "41**********1111"},
            },
            {
                "TransactionID": "paid",
                "AuditID": "2026-01-01T00:00:00Z#ccsale#1",
                "Field": "EncryptedResponse",
                "Plaintext": {"ssl_result": "0", "ssl_card_number": "41**********1111", "ssl_cvv2_response": "M"},
            },
        ],
        logs="",
        events=[
            published("paid", 3, "PAYMENT-SUCCESS"),
            published("declined", 3, "PAYMENT-DECLINED"),
            published("failed", 3, "PAYMENT-FAILED"),
            published("another-run", 3, "PAYMENT-SUCCESS"),  # the queue is the stack's, not the run's
        ],
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
    ("no_card_data_at_rest", lambda o: o.table_items.append({"TransactionID": "paid", "Note": "3700 000000 00002"})),
    ("no_card_data_at_rest", lambda o: setattr(o, "logs", '{"message": "charging", "Cvv": "847"}')),
    (
        "no_card_data_at_rest",
        lambda o: o.history["paid"].append({"type": "TaskStateExited", "output": '{"Number": "4111111111111111"}'}),
    ),
    ("every_terminal_entry_is_one_event", lambda o: o.events.pop(0)),  # an entry without its event
    ("every_terminal_entry_is_one_event", lambda o: o.events.append(published("paid", 3, "PAYMENT-SUCCESS"))),
    ("every_terminal_entry_is_one_event", lambda o: o.events.append(published("paid", 4, "PAYMENT-SUCCESS"))),
]


@pytest.mark.parametrize(("invariant", "violation"), VIOLATIONS)
def test_each_invariant_catches_its_violation(invariant, violation):
    check = getattr(invariants, invariant)
    assert check(consistent()) == []
    assert check(forge(violation)) != []


@pytest.mark.parametrize(
    "charges",
    [
        [charge("paid", "TXN-1"), charge("paid", "TXN-9")],  # the ledger names the first
        [charge("paid", "TXN-9"), charge("paid", "TXN-1")],  # the ledger names the second
        [charge("paid", "TXN-1"), charge("paid", "TXN-1")],  # two approved sales under one id
    ],
    ids=["named-first", "named-second", "same-id"],
)
def test_two_approved_charges_for_one_success_break_invariants_3_and_4(charges):
    def double_charge(o):
        o.charges[:1] = charges

    forged = forge(double_charge)

    assert invariants.charges_belong_to_successful_payments(forged) == ["paid"]
    assert invariants.successes_were_charged_once(forged) == ["paid"]


def test_a_success_naming_another_charge_than_the_approved_one_breaks_invariants_3_and_4():
    # The ledger's success entry names TXN-1; the processor's only approved charge is TXN-9.
    forged = forge(lambda o: o.charges[0].update(ssl_txn_id="TXN-9"))

    assert invariants.charges_belong_to_successful_payments(forged) == ["paid"]
    assert invariants.successes_were_charged_once(forged) == ["paid"]


@pytest.mark.parametrize(
    "cause",
    [
        json.dumps({"Status": "PAYMENT-SUCCESS"}),  # the caller is told it succeeded; the ledger says failed
        json.dumps({"Status": "PAYMENT-DECLINED"}),
        json.dumps({}),  # no Status at all
        "Payment failed ended without a terminal ledger entry: States.TaskFailed",  # not a response
    ],
    ids=["says-success", "says-declined", "no-status", "unreadable"],
)
def test_a_failed_payment_whose_cause_does_not_give_the_ledger_status_breaks_invariant_6(cause):
    forged = forge(lambda o: o.executions["failed"].update(cause=cause))

    assert invariants.output_matches_ledger(forged) == ["failed"]


def test_a_failed_payment_whose_cause_gives_the_ledger_status_keeps_invariant_6():
    # The cause of a PaymentFailed execution is the caller's response: it is read, not skipped.
    observations = consistent()
    assert observations.executions["failed"]["status"] == "FAILED"

    assert invariants.output_matches_ledger(observations) == []


@pytest.mark.parametrize("error", ["States.Runtime", "Lambda.ServiceException"])
def test_a_payment_that_fails_with_another_error_after_the_ledger_breaks_invariant_6(error):
    # The ledger holds a terminal Status; the caller was given none.
    forged = forge(lambda o: o.executions["paid"].update(status="FAILED", error=error, cause="boom"))

    assert invariants.output_matches_ledger(forged) == ["paid"]


def test_a_response_with_no_ledger_behind_it_breaks_invariant_6():
    forged = forge(lambda o: o.ledger.pop("declined"))

    assert invariants.output_matches_ledger(forged) == ["declined"]


def test_a_payment_rejected_before_the_ledger_keeps_invariant_6():
    def rejected(o):
        o.ledger.pop("failed")
        o.executions["failed"].update(error="InvalidPaymentRequest", cause="Amount must be positive")

    assert invariants.output_matches_ledger(forge(rejected)) == []


@pytest.mark.parametrize(
    ("tamper", "named"),
    [
        # PutItem over entry 3 with another Status: numbering, terminal and the forged stream all look fine
        (lambda o: o.ledger["paid"][2].update(Status="PAYMENT-FAILED"), "paid (ledger entry 3 changed)"),
        (
            lambda o: o.audit["paid"][0].update(Operation="txnquery"),
            "paid (audit AuditID 2026-01-01T00:00:01Z#ccsale#1 (ChainSeq 1) changed)",
        ),
        (lambda o: o.audit["failed"].pop(0), "failed (audit ChainSeq 1 removed)"),
    ],
    ids=["ledger-entry-rewritten", "audit-record-rewritten", "audit-record-removed"],
)
def test_a_broken_hash_chain_breaks_invariant_2_naming_the_entry(tamper, named):
    assert invariants.ledger_is_append_only_and_complete(forge(tamper)) == [named]


def test_invariant_2_answers_for_the_runs_payments_only():
    # The stream is the whole table's: on a shared stack, other tests rewrite their payments on purpose.
    def elsewhere(o):
        o.ledger_changes.append({"eventName": "MODIFY", "dynamodb": {"Keys": {"TransactionID": {"S": "other"}}}})

    assert invariants.ledger_is_append_only_and_complete(forge(elsewhere)) == []


def test_one_of_two_answered_calls_without_its_audit_record_breaks_invariant_5():
    # The sandbox answered two sales for "failed"; the audit trail holds a record of only one.
    forged = forge(lambda o: o.audit["failed"].pop())

    assert invariants.processor_calls_are_audited(forged) == ["failed"]


@pytest.mark.parametrize(
    "payload",
    [
        {"Plaintext": {"ssl_transaction_type": "ccsale", "ssl_card_number": "4111111111111111"}},
        {"Plaintext": {"ssl_card_number": "6011-0000-0000-0012"}},
        {"Plaintext": {"ssl_card_number": "41**********1111", "ssl_cvv2cvc2": "847"}},
        {"Plaintext": {"transactions": [{"ssl_card_number": "5500000000000004"}]}},
        {"Plaintext": {"ssl_card_number": "3700000000000029"}},  # not a test card, but not masked
        {"Error": "DecryptKeyError: the key cannot open it"},  # nothing can be said of what it holds
    ],
    ids=["pan", "separated-pan", "cvv", "pan-in-a-listing", "unmasked-number", "cannot-decrypt"],
)
def test_card_data_inside_an_audit_payload_breaks_invariant_7(payload):
    forged = forge(
        lambda o: o.audit_payloads.append({"TransactionID": "declined", "Field": "EncryptedQuery", **payload})
    )

    assert invariants.no_card_data_at_rest(forged) == ["declined"]


def with_an_authorization(o, authorizations):
    """A fourth payment, authorized only, with the processor holding `authorizations` for it."""
    o.transaction_ids.append("held")
    o.executions["held"] = {"status": "SUCCEEDED", "output": json.dumps({"Status": "PAYMENT-AUTHORIZED"})}
    o.ledger["held"] = chained(
        [
            entry("held", 1, "PAYMENT-INITIATED"),
            entry("held", 2, "PAYMENT-PENDING"),
            entry("held", 3, "PAYMENT-AUTHORIZED", ProcessorTransactionID="AUTH-1", Currency="USD"),
        ]
    )
    o.charges.extend(
        {
            "ssl_merchant_txn_id": "held",
            "ssl_txn_id": txn_id,
            "ssl_transaction_type": "AUTHONLY",
            "ssl_result": "0",
            "ssl_amount": "25.00",
            "ssl_transaction_currency": "USD",
        }
        | extra
        for txn_id, extra in authorizations
    )


def test_an_authorized_payment_holding_its_one_authorization_keeps_invariant_8():
    observations = forge(lambda o: with_an_authorization(o, [("AUTH-1", {}), ("AUTH-0", {"deleted": True})]))

    assert invariants.authorizations_were_taken_once(observations) == []


@pytest.mark.parametrize(
    "authorizations",
    [
        [],
        [("AUTH-1", {}), ("AUTH-2", {})],
        [("AUTH-9", {})],
        [("AUTH-1", {"voided": True})],
        [("AUTH-1", {"ssl_amount": "250.00"})],
        [("AUTH-1", {"ssl_transaction_currency": "CAD"})],
    ],
    ids=["none", "two", "another", "voided", "another-amount", "another-currency"],
)
def test_an_authorized_payment_without_exactly_its_authorization_breaks_invariant_8(authorizations):
    observations = forge(lambda o: with_an_authorization(o, authorizations))

    assert invariants.authorizations_were_taken_once(observations) == ["held"]


def test_an_authorization_held_for_a_payment_that_ended_otherwise_breaks_invariant_8():
    def stray(o):
        o.charges.append(
            {
                "ssl_merchant_txn_id": "failed",
                "ssl_txn_id": "AUTH-5",
                "ssl_transaction_type": "AUTHONLY",
                "ssl_result": "0",
            }
        )

    assert invariants.authorizations_were_taken_once(forge(stray)) == ["failed"]


# --- operations: a refund of 10.00 on the paid payment ---------------------------------------------------


def refunded():
    """The consistent record, and a refund r1 of 10.00 of the paid payment, recorded as the system does."""
    o = consistent()
    o.ledger["paid"] = chained(
        [
            *({k: v for k, v in e.items() if k not in (chain.PREV_HASH, chain.ENTRY_HASH)} for e in o.ledger["paid"]),
            entry("paid", 4, "REFUND-INITIATED", OperationID="r1", Amount="10.00"),
            entry("paid", 5, "REFUND-PENDING", OperationID="r1", Amount="10.00"),
            entry("paid", 6, "REFUND-SUCCESS", OperationID="r1", Amount="10.00", ProcessorTransactionID="RET-1"),
        ]
    )
    o.charges.append(
        {
            "ssl_merchant_txn_id": "r1",
            "ssl_txn_id": "RET-1",
            "ssl_transaction_type": "RETURN",
            "ssl_result": "0",
            "ssl_amount": "10.00",
            "original_txn_id": "TXN-1",
            "approved_charge": False,
        }
    )
    o.charges[0]["ssl_trans_status"] = "STL"
    o.operations = {"r1": "paid"}
    o.operation_executions = {"r1": {"status": "SUCCEEDED", "output": json.dumps({"Status": "REFUND-SUCCESS"})}}
    o.audit["paid/r1"] = audited(record("paid/r1", "ccreturn"))
    o.answered_calls["r1"] = ["ccreturn"]
    o.events.append(published("paid", 6, "REFUND-SUCCESS"))
    return o


def test_a_consistent_record_with_an_operation_passes_every_invariant():
    assert [v.name for v in invariants.check_all(refunded()) if not v.holds] == []


def forge_refunded(change):
    observations = refunded()
    change(observations)
    return observations


def returned(amount="10.00", merchant_txn_id="r1", txn_id="RET-2"):
    return {
        "ssl_merchant_txn_id": merchant_txn_id,
        "ssl_txn_id": txn_id,
        "ssl_transaction_type": "RETURN",
        "ssl_result": "0",
        "ssl_amount": amount,
        "original_txn_id": "TXN-1",
    }


OPERATION_VIOLATIONS = [
    ("every_execution_ends", lambda o: o.operation_executions["r1"].update(status="RUNNING")),
    ("ledger_is_append_only_and_complete", lambda o: o.audit["paid/r1"][0].update(Operation="ccvoid")),
    ("processor_calls_are_audited", lambda o: o.audit.pop("paid/r1")),
    ("money_at_the_processor_equals_the_ledger", lambda o: o.charges[-1].update(ssl_amount="15.00")),
    ("money_at_the_processor_equals_the_ledger", lambda o: o.charges[0].update(voided=True)),
    ("operations_reach_the_processor_once", lambda o: o.charges.append(returned())),
    ("operations_reach_the_processor_once", lambda o: o.charges.pop()),
    ("refunds_never_exceed_the_charge", lambda o: o.charges.append(returned("20.00", "r2"))),
    ("voided_never_settles", lambda o: o.charges[0].update(voided=True)),
    (
        "operation_output_matches_ledger",
        lambda o: o.operation_executions["r1"].update(output=json.dumps({"Status": "REFUND-FAILED"})),
    ),
]


@pytest.mark.parametrize(("invariant", "violation"), OPERATION_VIOLATIONS)
def test_each_operation_invariant_catches_its_violation(invariant, violation):
    check = getattr(invariants, invariant)
    assert check(refunded()) == []
    assert check(forge_refunded(violation)) != []


def test_a_payment_entry_after_an_operations_entries_breaks_invariant_2():
    def late(o):
        entries = [
            {k: v for k, v in e.items() if k not in (chain.PREV_HASH, chain.ENTRY_HASH)} for e in o.ledger["paid"]
        ]
        o.ledger["paid"] = chained([*entries, entry("paid", 7, "PAYMENT-SUCCESS")])

    [offender] = invariants.ledger_is_append_only_and_complete(forge_refunded(late))
    assert offender.startswith("paid")


# --- 14: the events of the ledger's terminal entries ---------------------------------------------------


@pytest.mark.parametrize(
    ("forgery", "named"),
    [
        (lambda o: o.events.pop(0), ["paid (#3 PAYMENT-SUCCESS: no events)"]),
        (
            lambda o: o.events.append(published("paid", 3, "PAYMENT-SUCCESS")),  # published twice
            ["paid (#3 PAYMENT-SUCCESS: 2 events)"],
        ),
        (
            lambda o: o.events.append(published("declined", 7, "REFUND-SUCCESS")),  # an event of no entry
            ["declined (declined#7: 1 event(s) of no entry)"],
        ),
        (
            lambda o: o.events.append(published("failed", 2, "PAYMENT-SUCCESS")),  # of a progress entry
            ["failed (#2 PAYMENT-PENDING: 1 event(s) of a progress entry)"],
        ),
        (
            lambda o: o.events[1].update(published("declined", 3, "PAYMENT-SUCCESS")),  # not its entry's Status
            ["declined (#3 PAYMENT-DECLINED: its event says PaymentSucceeded PAYMENT-SUCCESS)"],
        ),
    ],
    ids=["entry-without-event", "duplicate-event", "event-without-entry", "event-of-progress", "other-status"],
)
def test_invariant_14_names_each_entry_or_event_at_fault(forgery, named):
    assert invariants.every_terminal_entry_is_one_event(forge(forgery)) == named


def test_invariant_14_holds_the_operations_entries_to_their_events_too():
    forged = forge_refunded(lambda o: o.events.pop())

    assert invariants.every_terminal_entry_is_one_event(forged) == ["paid (#6 REFUND-SUCCESS: no events)"]


# --- endings left unknown, and what status sync made of them ----------------------------------------------

REVERSAL = reversal_reference("reversed")
UNKNOWN = {"ReasonCode": "PROCESSOR_OUTCOME_UNKNOWN"}
OBSERVED_AT = "2026-01-01T00:10:00Z"


def as_published(entries):
    """The events of these ledger entries as payments.events makes them, as the bus delivers them to the
    queue (none for an entry that is no event)."""
    made = (events.event_of({"CreatedAt": "2026-01-01T00:00:00Z", **e}) for e in entries)
    return [{"source": m["Source"], "detail-type": m["DetailType"], "detail": m["Detail"]} for m in made if m]


def unchained(entries):
    return [{k: v for k, v in e.items() if k not in (chain.PREV_HASH, chain.ENTRY_HASH)} for e in entries]


def resolved():
    """The consistent record and three payments status sync resolved, as the system records them: a charge
    made after its payment was told failed, reversed by a return; an unknown outcome found not charged; a
    payment whose terminal ledger steps failed for good, completed (its card left in the vault to its TTL)."""
    o = consistent()
    o.observed_at = OBSERVED_AT
    o.transaction_ids += ["reversed", "unpaid", "stuck"]
    failed = {"status": "FAILED", "error": "PaymentFailed", "cause": json.dumps({"Status": "PAYMENT-FAILED"})}
    o.executions |= {
        "reversed": dict(failed),
        "unpaid": dict(failed),
        "stuck": {
            "status": "FAILED",
            "error": "PaymentFailed",
            "cause": "Payment stuck ended without a terminal ledger entry: Lambda.ServiceException",
        },
    }
    o.ledger["reversed"] = chained(
        [
            entry("reversed", 1, "PAYMENT-INITIATED"),
            entry("reversed", 2, "PAYMENT-PENDING"),
            entry("reversed", 3, "PAYMENT-FAILED", **UNKNOWN),
            entry(
                "reversed",
                4,
                "PAYMENT-REVERSING",
                Resolution="REVERSE",
                OperationID=REVERSAL,
                ProcessorTransactionID="TXN-R",
                ReasonCode="REVERSE_BY_RETURN",
            ),
            entry(
                "reversed",
                5,
                "PAYMENT-REVERSED",
                Resolution="REVERSE",
                OperationID=REVERSAL,
                ProcessorTransactionID="RET-R",
                ReasonCode="REVERSE_BY_RETURN",
            ),
        ]
    )
    o.ledger["unpaid"] = chained(
        [
            entry("unpaid", 1, "PAYMENT-INITIATED"),
            entry("unpaid", 2, "PAYMENT-PENDING"),
            entry("unpaid", 3, "PAYMENT-FAILED", **UNKNOWN),
            entry("unpaid", 4, "PAYMENT-FAILED", ReasonCode="NOT_CHARGED", Resolution="RECORD_NOT_CHARGED"),
        ]
    )
    o.ledger["stuck"] = chained(
        [
            entry("stuck", 1, "PAYMENT-INITIATED"),
            entry("stuck", 2, "PAYMENT-PENDING"),
            entry("stuck", 3, "PAYMENT-SUCCESS", ProcessorTransactionID="TXN-S", Resolution="COMPLETE"),
        ]
    )
    o.charges += [
        charge("reversed", "TXN-R", ssl_trans_status="STL"),
        {
            "ssl_merchant_txn_id": REVERSAL,
            "ssl_txn_id": "RET-R",
            "ssl_transaction_type": "RETURN",
            "ssl_result": "0",
            "ssl_amount": "25.00",
            "original_txn_id": "TXN-R",
            "approved_charge": False,
        },
        charge("stuck", "TXN-S"),
    ]
    # The reversed payment's sale was never answered; status sync's lookups and its return were.
    o.answered_calls |= {
        "reversed": ["txnquery"],
        REVERSAL: ["ccreturn"],
        "unpaid": ["txnquery"],
        "stuck": ["ccsale", "txnquery"],
    }
    o.audit |= {
        "reversed": audited(record("reversed", "txnquery"), record("reversed", "ccreturn", 2)),
        "unpaid": audited(record("unpaid", "txnquery")),
        "stuck": audited(record("stuck", "ccsale"), record("stuck", "txnquery", 2)),
    }
    o.history |= {t: [{"type": "ExecutionStarted"}] for t in ("reversed", "unpaid", "stuck")}
    o.vaulted.add("stuck")
    o.vault_expires_at["stuck"] = 1767225600 + 300  # 2026-01-01T00:05:00Z: within the TTL of OBSERVED_AT
    o.events += [event for t in ("reversed", "unpaid", "stuck") for event in as_published(o.ledger[t])]
    return o


def forge_resolved(change):
    observations = resolved()
    change(observations)
    return observations


def test_reconciliations_settlement_fact_after_an_approval_keeps_invariant_2():
    settled = forge_resolved(append_entry("stuck", "PAYMENT-SETTLED", Resolution="SETTLED"))
    settled.events += as_published(settled.ledger["stuck"][-1:])

    assert [v.name for v in invariants.check_all(settled) if not v.holds] == []


def test_a_consistent_record_with_resolutions_passes_every_invariant():
    observations = resolved()
    # REVERSING is no event; the entries status sync wrote are PaymentReconciled.
    assert [e["detail-type"] for e in observations.events[-5:]] == [
        "PaymentFailed",
        "PaymentReconciled",
        "PaymentFailed",
        "PaymentReconciled",
        "PaymentReconciled",
    ]
    assert [v.name for v in invariants.check_all(observations) if not v.holds] == []


def replace_ledger(transaction_id, *entries):
    def change(o):
        o.ledger[transaction_id] = chained(list(entries))

    return change


def append_entry(transaction_id, status, **extra):
    def change(o):
        entries = unchained(o.ledger[transaction_id])
        o.ledger[transaction_id] = chained([*entries, entry(transaction_id, len(entries) + 1, status, **extra)])

    return change


def drop_charge(txn_id):
    return lambda o: o.charges.remove(next(c for c in o.charges if c["ssl_txn_id"] == txn_id))


RESOLUTION_VIOLATIONS = [
    # 2: a resolution after a payment that had ended with a known outcome; one of an unknown outcome twice
    (
        "ledger_is_append_only_and_complete",
        append_entry("paid", "PAYMENT-FAILED", ReasonCode="NOT_CHARGED", Resolution="RECORD_NOT_CHARGED"),
    ),
    (
        "ledger_is_append_only_and_complete",
        append_entry("unpaid", "PAYMENT-FAILED", ReasonCode="NOT_CHARGED", Resolution="RECORD_NOT_CHARGED"),
    ),
    # 2: the execution writes after a resolution; a reversal recorded that never began
    ("ledger_is_append_only_and_complete", append_entry("stuck", "PAYMENT-FAILED")),
    (
        "ledger_is_append_only_and_complete",
        replace_ledger(
            "unpaid",
            entry("unpaid", 1, "PAYMENT-INITIATED"),
            entry("unpaid", 2, "PAYMENT-PENDING"),
            entry("unpaid", 3, "PAYMENT-FAILED", **UNKNOWN),
            entry("unpaid", 4, "PAYMENT-REVERSED", Resolution="REVERSE", OperationID="x"),
        ),
    ),
    # 2: a settlement fact before any terminal entry
    (
        "ledger_is_append_only_and_complete",
        replace_ledger(
            "stuck",
            entry("stuck", 1, "PAYMENT-INITIATED"),
            entry("stuck", 2, "PAYMENT-SETTLED", Resolution="SETTLED"),
            entry("stuck", 3, "PAYMENT-SUCCESS", ProcessorTransactionID="TXN-S", Resolution="COMPLETE"),
        ),
    ),
    # 2: a settlement fact of a payment that ended failed (its charge reversed)
    ("ledger_is_append_only_and_complete", append_entry("reversed", "PAYMENT-SETTLED", Resolution="SETTLED")),
    # 3: the reversal's return is not at the processor
    ("charges_belong_to_successful_payments", drop_charge("RET-R")),
    # 5: status sync's return answered, without its audit record in the payment's trail
    ("processor_calls_are_audited", lambda o: o.audit["reversed"].pop()),
    # 6: a stuck payment's caller told a Status; a stuck payment nobody resolved
    (
        "output_matches_ledger",
        lambda o: o.executions["stuck"].update(status="SUCCEEDED", output=json.dumps({"Status": "PAYMENT-SUCCESS"})),
    ),
    (
        "output_matches_ledger",
        replace_ledger("stuck", entry("stuck", 1, "PAYMENT-INITIATED"), entry("stuck", 2, "PAYMENT-PENDING")),
    ),
    # 6: a resolved unknown outcome's caller must have been told what the execution wrote
    (
        "output_matches_ledger",
        lambda o: o.executions["unpaid"].update(cause=json.dumps({"Status": "PAYMENT-SUCCESS"})),
    ),
    # 7: a card left past the vault's TTL; a card left by a payment whose terminal entry was written
    ("no_card_data_at_rest", lambda o: o.vault_expires_at.update(stuck=1767225600 + 3600)),
    ("no_card_data_at_rest", lambda o: o.vaulted.add("unpaid") or o.vault_expires_at.update(unpaid=1767225600)),
    # 9: the reversal recorded, the money still at the processor
    ("money_at_the_processor_equals_the_ledger", drop_charge("RET-R")),
    # 14: a resolution without its PaymentReconciled event; the REVERSING entry published
    ("every_terminal_entry_is_one_event", lambda o: o.events.pop()),
    (
        "every_terminal_entry_is_one_event",
        lambda o: o.events.append(
            {"detail-type": "PaymentReconciled", "detail": {"EventID": "reversed#4", "Status": "PAYMENT-REVERSING"}}
        ),
    ),
]


@pytest.mark.parametrize(("invariant", "violation"), RESOLUTION_VIOLATIONS)
def test_each_invariant_catches_its_violation_among_resolutions(invariant, violation):
    check = getattr(invariants, invariant)
    assert check(resolved()) == []
    assert check(forge_resolved(violation)) != []


# --- 15: nothing left unresolved or pending ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("forgery", "named"),
    [
        (
            replace_ledger(  # ended with its outcome unknown, never resolved
                "unpaid",
                entry("unpaid", 1, "PAYMENT-INITIATED"),
                entry("unpaid", 2, "PAYMENT-PENDING"),
                entry("unpaid", 3, "PAYMENT-FAILED", **UNKNOWN),
            ),
            ["unpaid (OUTCOME_UNKNOWN)"],
        ),
        (
            replace_ledger("stuck", entry("stuck", 1, "PAYMENT-INITIATED"), entry("stuck", 2, "PAYMENT-PENDING")),
            ["stuck (PENDING: PAYMENT-PENDING)", "stuck (PENDING_PAST_DEADLINE)"],
        ),
        (
            lambda o: o.ledger.update(reversed=o.ledger["reversed"][:4]),  # a reversal begun, not done
            ["reversed (OUTCOME_UNKNOWN)", "reversed (PENDING: PAYMENT-REVERSING)"],
        ),
    ],
    ids=["outcome-unknown", "pending", "reversing"],
)
def test_invariant_15_names_each_payment_left_unresolved(forgery, named):
    assert invariants.nothing_left_unresolved(resolved()) == []
    assert invariants.nothing_left_unresolved(forge_resolved(forgery)) == named


def operation_resolved():
    """The refunded record, its refund's outcome unknown until status sync found it made (RECORD_SUCCESS)."""
    o = refunded()
    o.observed_at = OBSERVED_AT
    entries = unchained(o.ledger["paid"])[:5]
    o.ledger["paid"] = chained(
        [
            *entries,
            entry("paid", 6, "REFUND-FAILED", OperationID="r1", Amount="10.00", **UNKNOWN),
            entry(
                "paid",
                7,
                "REFUND-SUCCESS",
                OperationID="r1",
                Amount="10.00",
                ProcessorTransactionID="RET-1",
                Resolution="RECORD_SUCCESS",
            ),
        ]
    )
    o.operation_executions["r1"] = {
        "status": "FAILED",
        "error": "OperationFailed",
        "cause": json.dumps({"Status": "REFUND-FAILED"}),
    }
    o.events[-1:] = as_published(o.ledger["paid"][5:])
    return o


def test_an_operation_status_sync_recorded_as_made_passes_every_invariant():
    observations = operation_resolved()
    assert [e["detail-type"] for e in observations.events[-2:]] == ["PaymentFailed", "PaymentReconciled"]
    assert [v.name for v in invariants.check_all(observations) if not v.holds] == []


@pytest.mark.parametrize(
    ("forgery", "named"),
    [
        (lambda o: o.ledger["paid"].pop(), ["paid/r1 (OUTCOME_UNKNOWN)"]),
        (
            lambda o: o.ledger.update(paid=o.ledger["paid"][:5]),
            ["paid/r1 (PENDING: REFUND-PENDING)", "paid/r1 (PENDING_PAST_DEADLINE)"],
        ),
    ],
    ids=["outcome-unknown", "pending"],
)
def test_invariant_15_names_each_operation_left_unresolved(forgery, named):
    forged = operation_resolved()
    forgery(forged)

    assert invariants.nothing_left_unresolved(forged) == named


def test_an_operation_recorded_by_status_sync_keeps_invariants_9_10_and_13_and_breaks_them_when_wrong():
    assert invariants.money_at_the_processor_equals_the_ledger(operation_resolved()) == []
    assert invariants.operations_reach_the_processor_once(operation_resolved()) == []
    assert invariants.operation_output_matches_ledger(operation_resolved()) == []

    told_success = operation_resolved()
    told_success.operation_executions["r1"]["cause"] = json.dumps({"Status": "REFUND-SUCCESS"})
    assert invariants.operation_output_matches_ledger(told_success) == ["r1"]
    not_there = operation_resolved()
    not_there.charges.pop()  # the refund status sync recorded as made is not at the processor
    assert invariants.operations_reach_the_processor_once(not_there) == ["r1"]
    assert invariants.money_at_the_processor_equals_the_ledger(not_there) == ["paid"]


# --- 16: every approval at the processor is the ledger's -----------------------------------------------------


@pytest.mark.parametrize(
    ("forgery", "named"),
    [
        (
            lambda o: o.ledger.update(reversed=o.ledger["reversed"][:3]),  # charged, never reversed
            ["reversed (TXN-R: no PAYMENT-REVERSING names it)"],
        ),
        (
            lambda o: o.ledger.update(reversed=o.ledger["reversed"][:4]),  # reversal begun, never recorded
            ["reversed (TXN-R: no PAYMENT-REVERSED under its reference)"],
        ),
        (drop_charge("RET-R"), [f"reversed (TXN-R: no reversals at the processor under {REVERSAL})"]),
        (
            lambda o: o.charges[-2].update(ssl_amount="5.00"),  # returned in part only
            ["reversed (TXN-R: the processor's RETURN RET-R is not the reversal the ledger records)"],
        ),
        (
            lambda o: o.charges.append(charge("unpaid", "TXN-U")),  # recorded not charged, charged after all
            ["unpaid (TXN-U: no PAYMENT-REVERSING names it)"],
        ),
        (
            lambda o: o.charges.append(charge("declined", "TXN-D2")),
            ["declined (TXN-D2: no PAYMENT-REVERSING names it)"],
        ),
        (
            drop_charge("TXN-R"),  # a reversal of a charge the processor never made
            ["reversed (#4 PAYMENT-REVERSING names no approval at the processor)"],
        ),
    ],
    ids=["not-reversed", "reversing", "reversal-missing", "partial-return", "not-charged", "declined", "no-charge"],
)
def test_invariant_16_names_each_approval_the_ledger_does_not_account_for(forgery, named):
    assert invariants.approvals_belong_to_the_ledger(resolved()) == []
    assert invariants.approvals_belong_to_the_ledger(forge_resolved(forgery)) == named


def test_invariant_16_holds_a_completed_authorization_to_its_capture():
    def authorized(o):
        with_an_authorization(o, [("AUTH-1", {"completed_amount": "25.00", "completion_merchant_txn_id": "c1"})])

    observations = forge(authorized)

    assert invariants.approvals_belong_to_the_ledger(observations) == [
        "held (AUTH-1: completed by c1, no CAPTURE-SUCCESS of it)"
    ]


def test_invariant_16_accepts_an_authorization_reversed_by_its_delete():
    def reversed_authorization(o):
        reference = reversal_reference("held")
        o.transaction_ids.append("held")
        o.executions["held"] = {"status": "FAILED", "error": "PaymentFailed", "cause": "{}"}
        o.ledger["held"] = chained(
            [
                entry("held", 1, "PAYMENT-INITIATED"),
                entry("held", 2, "PAYMENT-PENDING"),
                entry("held", 3, "PAYMENT-FAILED", **UNKNOWN),
                entry(
                    "held",
                    4,
                    "PAYMENT-REVERSING",
                    Resolution="REVERSE",
                    OperationID=reference,
                    ProcessorTransactionID="AUTH-1",
                ),
                entry(
                    "held",
                    5,
                    "PAYMENT-REVERSED",
                    Resolution="REVERSE",
                    OperationID=reference,
                    ProcessorTransactionID="AUTH-1",
                ),
            ]
        )
        o.charges.append(
            {
                "ssl_merchant_txn_id": "held",
                "ssl_txn_id": "AUTH-1",
                "ssl_transaction_type": "AUTHONLY",
                "ssl_result": "0",
                "ssl_amount": "25.00",
                "deleted": True,
                "delete_merchant_txn_id": reference,
            }
        )

    observations = forge(reversed_authorization)
    assert invariants.approvals_belong_to_the_ledger(observations) == []
    assert invariants.authorizations_were_taken_once(observations) == []
    assert invariants.money_at_the_processor_equals_the_ledger(observations) == []

    # The ledger says released; the processor never deleted it, and still holds it.
    observations.charges[-1].update(deleted=False, delete_merchant_txn_id="")
    assert invariants.approvals_belong_to_the_ledger(observations) == [
        f"held (AUTH-1: no reversals at the processor under {reversal_reference('held')})"
    ]
    assert invariants.authorizations_were_taken_once(observations) == ["held"]


# --- 17: reconciliation ----------------------------------------------------------------------------------


def finding(category, transaction_id="", reference="", operation_id=None):
    return {
        "Category": category,
        "TransactionID": transaction_id,
        "OperationID": operation_id,
        "Reference": reference,
        "Detail": "forged",
    }


def reconciled(findings=(), complete=True):
    o = resolved()
    o.reconciliation = [{"Date": "2026-01-01", "Complete": complete, "Listed": 7, "Findings": list(findings)}]
    return o


def test_a_clean_reconciliation_keeps_invariant_17_and_none_skips_it():
    assert invariants.reconciliation_finds_no_mismatch(reconciled()) == []
    [verdict] = [v for v in invariants.check_all(resolved()) if v.name.startswith("17 ")]
    assert verdict.holds and verdict.skipped
    [verdict] = [v for v in invariants.check_all(reconciled()) if v.name.startswith("17 ")]
    assert verdict.holds and not verdict.skipped and verdict.checked == 7


@pytest.mark.parametrize(
    ("observations", "named"),
    [
        (
            lambda: reconciled([finding("MISSING_IN_LEDGER", reference="paid")]),
            ["paid (2026-01-01 MISSING_IN_LEDGER: forged)"],
        ),
        (
            lambda: reconciled([finding("AMOUNT_MISMATCH", "reversed", REVERSAL)]),
            ["reversed (2026-01-01 AMOUNT_MISMATCH: forged)"],
        ),
        (lambda: reconciled([finding("MISSING_IN_LEDGER")]), ["- (2026-01-01 MISSING_IN_LEDGER: forged)"]),
        (lambda: reconciled(complete=False), ["(2026-01-01: listing incomplete)"]),
        (
            lambda: forge_resolved(lambda o: setattr(o, "reconciliation_error", "2026-01-01: RuntimeError: boom")),
            ["(reconciliation failed: 2026-01-01: RuntimeError: boom)"],
        ),
    ],
    ids=["ours", "a-reversal", "no-reference", "incomplete", "failed"],
)
def test_invariant_17_names_each_mismatch_of_the_run(observations, named):
    assert invariants.reconciliation_finds_no_mismatch(observations()) == named


def test_invariant_17_leaves_another_tests_findings_alone_on_a_shared_stack_only():
    others = [
        finding("MISSING_IN_LEDGER", "someone-else", "someone-else"),
        finding("MISSING_IN_LEDGER"),  # naming no reference
    ]
    shared = reconciled(others)
    shared.shared_stack = True
    assert invariants.reconciliation_finds_no_mismatch(shared) == []

    # On a stack of its own (make chaos) nothing is another test's: a charge sent under a wrong reference names
    # none of the run's ids, and must be caught
    dedicated = reconciled([finding("MISSING_IN_LEDGER", reference="wrong-reference"), *others])
    assert invariants.reconciliation_finds_no_mismatch(dedicated) == [
        "wrong-reference (2026-01-01 MISSING_IN_LEDGER: forged)",
        "someone-else (2026-01-01 MISSING_IN_LEDGER: forged)",
        "- (2026-01-01 MISSING_IN_LEDGER: forged)",
    ]
