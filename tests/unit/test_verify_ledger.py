"""The verifier's pure part: every payment of both tables checked, findings an operator can read, no content shown."""

from local.verify_ledger import Tables, report_lines, verify_items
from payments import chain
from tests.unit.chained_items import audit_trail, ledger, rewritten

TABLES = Tables("PaymentLedger", "PaymentAuditTrail")


def test_clean_tables_verify_with_a_count_of_what_was_checked():
    entries = ledger(transaction_id="order-a") + ledger(transaction_id="order-b")
    records = audit_trail(["sale-attempt#01", "2026-11-27T06:00:00.000000Z#ccsale#1"], transaction_id="order-a")

    verification = verify_items(entries, records, TABLES)

    assert verification.clean
    assert (verification.payments, verification.ledger_entries, verification.audit_records) == (2, 6, 2)
    assert (
        report_lines(verification)[0]
        == "Verified 2 payments: 6 entries of PaymentLedger, 2 records of PaymentAuditTrail."
    )


def test_each_tampered_entry_is_named_on_its_own_line_without_its_content():
    a1, a2, a3 = ledger(transaction_id="order-a")
    b_records = audit_trail(["r1", "r2", "r3"], transaction_id="order-b")
    tampered_ledger = [a1, a2, rewritten(a3, Status="PAYMENT-FAILED", SecureToken="AYADeJ-forged")]
    tampered_audit = [b_records[0], b_records[2]]

    verification = verify_items(tampered_ledger, tampered_audit, TABLES)
    lines = report_lines(verification)

    assert not verification.clean
    assert lines[1:] == [
        "order-a  PaymentLedger  entry 3  changed: its content does not match its EntryHash",
        "order-b  PaymentAuditTrail  ChainSeq 2  removed: it is missing from the chain",
        "2 findings in 2 payments.",
    ]
    assert not any("AYADeJ" in line or "25.00" in line or "PAYMENT-FAILED" in line for line in lines)


def test_a_well_linked_entry_appended_after_the_terminal_one_is_named_inserted():
    # Correctly linked and hashed: the chain alone cannot tell it from a legitimate entry
    entries = ledger()
    after_terminal = rewritten(entries[2], Status="PAYMENT-FAILED") | {"EntryNumber": {"N": "4"}}
    appended = chain.sealed(after_terminal, entries[2]["EntryHash"]["S"])

    verification = verify_items([*entries, appended], [], TABLES)

    assert [str(f) for f in verification.findings] == [
        "order-ab  PaymentLedger  entry 4  inserted: it comes after the terminal entry 3"
    ]


def payment_with(tail, statuses=("PAYMENT-INITIATED", "PAYMENT-PENDING", "PAYMENT-SUCCESS"), reason=None):
    """A payment's entries, then `tail` (Status, OperationID or None[, Resolution]), all chained as the ledger
    writes them; `reason`: the ReasonCode of its terminal entry."""
    values = [{"Status": status} for status in statuses]
    if reason:
        values[-1]["ReasonCode"] = reason
    values += [
        {"Status": status} | ({"OperationID": op} if op else {}) | ({"Resolution": more[0]} if more else {})
        for status, op, *more in tail
    ]
    entries, link = [], chain.GENESIS
    for number, extra in enumerate(values, start=1):
        item = {"TransactionID": "order-a", "EntryNumber": number, "Amount": "25.00"} | extra
        entries.append(chain.sealed(chain.typed(item), link))
        link = entries[-1]["EntryHash"]["S"]
    return entries


def findings_of(entries):
    return report_lines(verify_items(entries, [], TABLES))[1:-1]


def test_an_operations_trail_after_an_approved_payment_verifies():
    refund = [("REFUND-INITIATED", "r1"), ("REFUND-PENDING", "r1"), ("REFUND-SUCCESS", "r1")]
    capture = [("CAPTURE-INITIATED", "c1"), ("CAPTURE-DECLINED", "c1")]

    assert verify_items(payment_with(refund), [], TABLES).clean
    assert verify_items(
        payment_with(capture, statuses=("PAYMENT-INITIATED", "PAYMENT-PENDING", "PAYMENT-AUTHORIZED")), [], TABLES
    ).clean


def test_the_refusal_of_an_operation_on_a_payment_that_was_not_approved_verifies():
    declined = ("PAYMENT-INITIATED", "PAYMENT-PENDING", "PAYMENT-DECLINED")

    assert verify_items(payment_with([("VOID-DECLINED", "v1")], statuses=declined), [], TABLES).clean


def test_a_well_chained_operation_entry_that_breaks_the_ledgers_rules_is_named():
    declined = ("PAYMENT-INITIATED", "PAYMENT-PENDING", "PAYMENT-DECLINED")
    refund = [("REFUND-INITIATED", "r1"), ("REFUND-PENDING", "r1"), ("REFUND-SUCCESS", "r1")]

    assert findings_of(payment_with(refund, statuses=declined))[0].endswith(
        "an operation on a payment that was not approved"
    )
    [out_of_order] = findings_of(payment_with([("REFUND-SUCCESS", "r1")]))
    assert out_of_order.endswith(
        "entry 4  inserted: out of its operation's order (INITIATED, PENDING, one terminal entry)"
    )
    assert findings_of(payment_with([("REFUND-INITIATED", None)])) == [
        "order-a  PaymentLedger  entry 4  inserted: an operation entry without its OperationID"
    ]
    twice = [("REFUND-INITIATED", "r1"), ("REFUND-PENDING", "r1"), ("REFUND-SUCCESS", "r1"), ("REFUND-SUCCESS", "r1")]
    assert len(findings_of(payment_with(twice))) == 1


def test_an_operation_entry_whose_carried_balances_do_not_add_up_is_named():
    refund = [("REFUND-INITIATED", "r1"), ("REFUND-PENDING", "r1"), ("REFUND-SUCCESS", "r1")]
    carried = [("25.00", "0"), ("25.00", "0"), ("25.00", "25.00")]

    def with_balances(balances):
        entries = payment_with(refund)
        values = [{k: v for k, v in e.items() if k not in ("PrevHash", "EntryHash")} for e in entries]
        for item, (captured, refunded) in zip(values[3:], balances, strict=True):
            item |= {"Captured": {"S": captured}, "Refunded": {"S": refunded}}
        sealed, link = [], chain.GENESIS
        for item in values:
            sealed.append(chain.sealed(item, link))
            link = sealed[-1]["EntryHash"]["S"]
        return sealed

    assert verify_items(with_balances(carried), [], TABLES).clean
    assert findings_of(with_balances([*carried[:2], ("25.00", "0")])) == [
        "order-a  PaymentLedger  entry 6  inserted: its balances are not what the history before it adds up to"
    ]


def test_an_operation_the_history_before_it_did_not_allow_is_named():
    # Well chained, well ordered: two refunds of 25.00 on a 25.00 sale, and a capture of a sale
    twice = [("REFUND-INITIATED", "r1"), ("REFUND-PENDING", "r1"), ("REFUND-SUCCESS", "r1")]
    twice += [("REFUND-INITIATED", "r2"), ("REFUND-PENDING", "r2"), ("REFUND-SUCCESS", "r2")]

    assert findings_of(payment_with(twice)) == [
        "order-a  PaymentLedger  entry 7  inserted: the history before it does not allow it (EXCEEDS_REFUNDABLE)"
    ]
    assert findings_of(payment_with([("CAPTURE-INITIATED", "c1")])) == [
        "order-a  PaymentLedger  entry 4  inserted: the history before it does not allow it (NOT_AN_AUTHORIZATION)"
    ]


UNKNOWN = ("PAYMENT-INITIATED", "PAYMENT-PENDING", "PAYMENT-FAILED")


def test_status_syncs_resolutions_after_a_terminal_entry_verify():
    not_charged = [("PAYMENT-FAILED", None, "RECORD_NOT_CHARGED")]
    reversed_ = [("PAYMENT-REVERSING", "rev-a", "REVERSE"), ("PAYMENT-REVERSED", "rev-a", "REVERSE")]
    refund = [("REFUND-INITIATED", "r1"), ("REFUND-PENDING", "r1"), ("REFUND-FAILED", "r1")]  # no reason: unknown

    assert findings_of(payment_with(not_charged, statuses=UNKNOWN, reason="PROCESSOR_OUTCOME_UNKNOWN")) == []
    assert findings_of(payment_with(reversed_, statuses=UNKNOWN, reason="PROCESSOR_OUTCOME_UNKNOWN")) == []
    assert findings_of(payment_with([("PAYMENT-SETTLED", None, "SETTLED")])) == []
    assert findings_of(payment_with([*refund, ("REFUND-SUCCESS", "r1", "RECORD_SUCCESS")])) == []


def test_a_resolution_the_terminal_entry_does_not_allow_is_named_inserted():
    after = "inserted: it comes after the terminal entry 3"
    # A reversal of a payment that was approved, or that failed knowing nothing was sent
    assert findings_of(payment_with([("PAYMENT-REVERSING", "rev-a", "REVERSE")]))[0].endswith(after)
    assert findings_of(payment_with([("PAYMENT-FAILED", None, "RECORD_NOT_CHARGED")], statuses=UNKNOWN))[0].endswith(
        after
    )
    # Found not charged, then reversed all the same; a reversal recorded that never began; settled twice
    both = [("PAYMENT-FAILED", None, "RECORD_NOT_CHARGED"), ("PAYMENT-REVERSING", "rev-a", "REVERSE")]
    assert findings_of(payment_with(both, statuses=UNKNOWN, reason="PROCESSOR_OUTCOME_UNKNOWN"))[0].endswith(
        "a payment found not charged is not reversed too"
    )
    alone = [("PAYMENT-REVERSED", "rev-a", "REVERSE")]
    assert findings_of(payment_with(alone, statuses=UNKNOWN, reason="PROCESSOR_OUTCOME_UNKNOWN"))[0].endswith(
        "a reversal recorded that never began"
    )
    twice = [("PAYMENT-SETTLED", None, "SETTLED")] * 2
    assert len(findings_of(payment_with(twice))) == 1
    # An operation resolved twice, or resolved after a failure that proved nothing moved
    unknown = [("REFUND-INITIATED", "r1"), ("REFUND-PENDING", "r1"), ("REFUND-FAILED", "r1")]
    twice = [*unknown, ("REFUND-SUCCESS", "r1", "RECORD_SUCCESS"), ("REFUND-SUCCESS", "r1", "RECORD_SUCCESS")]
    assert len(findings_of(payment_with(twice))) == 1
    # An operation ended a second time without status sync's resolution
    refund = [("REFUND-INITIATED", "r1"), ("REFUND-PENDING", "r1"), ("REFUND-FAILED", "r1"), ("REFUND-SUCCESS", "r1")]
    assert findings_of(payment_with(refund))[0].endswith(
        "out of its operation's order (INITIATED, PENDING, one terminal entry)"
    )
