"""After a payment ends: no PAN and no CVV in any table item (the vault's included), in what the audit
trail's encrypted payloads hold, in any history event (ExecutionStarted included), any execution
input or output, any refusal, or any log line."""

import json
import re

import pytest

from local import operations
from local.card_scan import audit_payload_findings, audit_payloads, stack_credentials
from local.payment_requests import AMEX, DECLINING, DISCOVER, MASTERCARD, VISA, card_request, new_transaction_id
from local.sandbox import FaultRule
from payments import crypto
from tests.card_data import LUHN_INVALID_PAN, card_data_in, table_items
from upstream.client import PaymentRefused


@pytest.fixture(scope="module")
def payments(stack, info):
    """Payments that ended every way a card payment can end, each started through the intake."""
    cases = {
        "approved": card_request(new_transaction_id("scan"), number=VISA),
        "approved-amex": card_request(new_transaction_id("scan"), number=AMEX),
        "declined": card_request(new_transaction_id("scan"), number=DECLINING),
        "no-answer": card_request(new_transaction_id("scan"), number=DISCOVER),
    }
    # Every sale of the last one is refused as "system unavailable": it ends PAYMENT-FAILED, never answered.
    match = {"ssl_transaction_type": "ccsale", "ssl_merchant_txn_id": cases["no-answer"]["TransactionID"]}
    stack.sandbox.faults.add(FaultRule("error_4022", times=0, match=match))
    try:
        return {name: run_payment(info, request) for name, request in cases.items()}
    finally:
        stack.sandbox.faults.clear()


@pytest.fixture(scope="module")
def refusal(info):
    """What the intake answers to a request it refuses: it must not echo the card either."""
    request = card_request(new_transaction_id("scan"), number=LUHN_INVALID_PAN)
    request["PaymentMethod"]["HolderName"] = "</ssl_first_name><ssl_amount>0.01"
    with pytest.raises(PaymentRefused) as refused:
        operations.start_payment(info, request)
    return refused.value


def run_payment(info, request):
    arn = operations.start_payment(info, request)
    return operations.wait_for_execution(info, arn, timeout_seconds=60)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ('{"Number": "4111111111111111"}', ["PAN 41…1111"]),
        ("4111 1111 1111 1111", ["PAN 41…1111"]),
        ("card 4111-1111-1111-1111.", ["PAN 41…1111"]),
        ("4111.1111.1111.1111", ["PAN 41…1111"]),
        ("4111/1111/1111/1111", ["PAN 41…1111"]),
        ("5500 0000 0000 0004", ["PAN 55…0004"]),
        ('{"Number": "370000000000002"}', ["PAN 37…0002"]),
        ("3700 000000 00002", ["PAN 37…0002"]),
        ("6011 0000 0000 0012", ["PAN 60…0012"]),
        ("4000-0000-0000-0002", ["PAN 40…0002"]),
        ('"4111\\u00a01111\\u00a01111\\u00a01111"', ["PAN 41…1111"]),  # JSON-escaped no-break spaces
        ('{"Cvv": "847"}', ["a CVV field", "the CVV value"]),
        ('{"Cvv": "8473"}', ["a CVV field", "the CVV value"]),  # the Amex test card's four digits
        ("<ssl_cvv2cvc2>847</ssl_cvv2cvc2>", ["a CVV field", "the CVV value"]),
        ("ssl_cvv2cvc2=847", ["a CVV field", "the CVV value"]),
    ],
)
def test_the_scanner_finds_card_data_however_it_is_written(text, found):
    assert card_data_in(text) == found


@pytest.mark.parametrize(
    "text",
    [
        "AgV4847abc+/847x==",  # base64 that happens to hold the CVV's digits
        '{"CardLast4": "1111", "ssl_card_number": "41**********1111"}',  # masked: what may be kept
        "41111111111111",  # too short to be the card
        "2026-01-14 10:00:00.000000+00:00 2 attempts",  # digits of a timestamp
        '{"LatencyMs": "847", "latency_ms": 847}',  # a measurement, not a CVV
    ],
)
def test_the_scanner_leaves_what_is_not_card_data(text):
    assert card_data_in(text) == []


def test_the_scanner_opens_an_audit_payload_and_finds_the_pan_inside(info):
    # An audit payload as CallProcessor would store it, were it to keep the card number unmasked.
    transaction_id = new_transaction_id("scan")
    query = {"ssl_transaction_type": "ccsale", "ssl_card_number": DISCOVER, "ssl_merchant_txn_id": transaction_id}
    with stack_credentials(info):
        ciphertext = crypto.encrypt(
            query, key_arn=info.audit_kms_key_arn, transaction_id=transaction_id, purpose=crypto.PURPOSE_AUDIT
        )
    item = {"TransactionID": transaction_id, "AuditID": "x#ccsale#1", "EncryptedQuery": ciphertext}
    assert card_data_in(json.dumps(item)) == []  # the ciphertext alone shows nothing

    [payload] = audit_payloads(info, [item])

    assert payload["Plaintext"] == query
    assert "PAN 60…0012" in audit_payload_findings(payload)
    assert "an unmasked ssl_card_number 60…" in audit_payload_findings(payload)


def test_an_audit_payload_the_key_cannot_open_is_not_vouched_for(info):
    transaction_id = new_transaction_id("scan")
    with stack_credentials(info):
        ciphertext = crypto.encrypt(
            {"ssl_card_number": MASTERCARD},
            key_arn=info.audit_kms_key_arn,
            transaction_id=transaction_id,
            purpose=crypto.PURPOSE_AUDIT,
        )
    # Filed under another payment: the encryption context does not match, so it stays closed.
    item = {"TransactionID": new_transaction_id("scan"), "AuditID": "x#ccsale#1", "EncryptedQuery": ciphertext}

    [payload] = audit_payloads(info, [item])

    assert "Plaintext" not in payload
    assert audit_payload_findings(payload)[0].startswith("an audit payload that cannot be decrypted")


def test_the_payments_ended_as_planned(payments):
    statuses = {name: json.loads(e.get("output") or e.get("cause"))["Status"] for name, e in payments.items()}
    assert statuses == {
        "approved": "PAYMENT-SUCCESS",
        "approved-amex": "PAYMENT-SUCCESS",
        "declined": "PAYMENT-DECLINED",
        "no-answer": "PAYMENT-FAILED",
    }


def test_no_card_data_in_any_table_item(info, payments):
    for table in (info.ledger_table, info.audit_table, info.card_vault_table):
        assert card_data_in(json.dumps(table_items(info, table), default=str)) == [], table


def test_nothing_of_a_card_stays_in_the_vault_once_its_payment_has_ended(info, payments):
    for name, execution in payments.items():
        assert operations.vault_item(info, json.loads(execution["input"])["TransactionID"]) is None, name


def test_audit_payloads_hold_a_masked_pan_and_no_cvv(info, payments):
    ours = {json.loads(e["input"])["TransactionID"] for e in payments.values()}
    items = [item for item in table_items(info, info.audit_table) if item["TransactionID"] in ours]
    opened = audit_payloads(info, items)

    queries = [p["Plaintext"] for p in opened if p["Field"] == "EncryptedQuery" and "Plaintext" in p]
    assert len(queries) >= 4, "every sale must be audited"
    assert {q.get("ssl_card_number") for q in queries} >= {"41**********1111", "37*********0002", "40**********0002"}
    assert [
        (p["TransactionID"], p["Field"], audit_payload_findings(p)) for p in opened if audit_payload_findings(p)
    ] == []


def test_no_card_data_in_any_history_event_or_execution_input(info, payments):
    for name, execution in payments.items():
        events = operations.execution_history(info, execution["executionArn"])
        assert len(events) > 10, name
        assert [(e["id"], e["type"]) for e in events if card_data_in(json.dumps(e, default=str))] == [], name
        assert card_data_in(execution["input"]) == [], name
        # Not even as ciphertext: the CVV never enters the workflow, in any form.
        assert not re.search(r"Cvv|ssl_cvv2cvc2", json.dumps(events, default=str)), name
        assert json.loads(execution["input"])["PaymentMethod"]["Type"] == "vaulted_card"


def test_no_card_data_in_any_function_log(stack, payments, refusal):
    text = stack.logs.text()
    assert {"PaymentIntake", "PaymentTokenize", "PaymentCallProcessor"} <= {
        line.function_name for line in stack.logs.lines
    }
    # The functions' own log lines, not only the runtime's, are in what is scanned.
    assert '"message":"payment tokenized"' in text and '"message":"payment started"' in text
    assert card_data_in(text) == []


def test_no_card_data_in_execution_outputs_or_causes(payments):
    for execution in payments.values():
        assert card_data_in(json.dumps([execution.get(k) for k in ("output", "error", "cause")])) == []


def test_no_card_data_and_no_caller_text_in_a_refusal(refusal):
    assert refusal.field == "PaymentMethod.Number"
    text = json.dumps([str(refusal), refusal.field, refusal.reason])
    assert card_data_in(text) == [] and "ssl_" not in text
