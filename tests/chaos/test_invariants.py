"""Each invariant catches the violation it exists for: the records are forged, the verdict must say so."""

import copy
import json

import pytest
from boto3.dynamodb.types import TypeDeserializer

from local.chaos import invariants
from local.chaos.observations import Observations
from payments import chain, events

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
