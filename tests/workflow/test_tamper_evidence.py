"""Hash chains on a real payment, and `python -m local verify-ledger` naming what was tampered with."""

import itertools

import pytest

from local import cli
from payments import chain
from tests.card_data import card_data_in
from tests.workflow.conftest import card_request, run_payment


def table_items(info, table, transaction_id):
    return info.client("dynamodb").query(
        TableName=table,
        KeyConditionExpression="TransactionID = :id",
        ExpressionAttributeValues={":id": {"S": transaction_id}},
        ConsistentRead=True,
    )["Items"]


def items(info, table, transaction_id, order_by):
    return sorted(table_items(info, table, transaction_id), key=lambda item: int(item[order_by]["N"]))


def ledger_items(info, transaction_id):
    return items(info, info.ledger_table, transaction_id, "EntryNumber")


def audit_items(info, transaction_id):
    return items(info, info.audit_table, transaction_id, "ChainSeq")


def verify(info, transaction_id, capsys):
    status = cli.main(["verify-ledger", "--endpoint", info.endpoint_url, "--transaction-id", transaction_id])
    return status, capsys.readouterr().out


@pytest.fixture
def paid(info, transaction_id):
    """An approved payment; whatever a test does to its records is undone after it, for the tests that
    look at every payment of the shared stack (the chaos run's invariants, the card-data scans)."""
    execution = run_payment(info, card_request(transaction_id))
    assert execution["status"] == "SUCCEEDED"
    written = {table: table_items(info, table, transaction_id) for table in (info.ledger_table, info.audit_table)}
    yield transaction_id
    dynamodb = info.client("dynamodb")
    for table, before in written.items():
        sort_key = "EntryNumber" if table == info.ledger_table else "AuditID"
        for item in table_items(info, table, transaction_id):
            dynamodb.delete_item(TableName=table, Key={k: item[k] for k in ("TransactionID", sort_key)})
        for item in before:
            dynamodb.put_item(TableName=table, Item=item)


def test_a_payment_writes_its_ledger_and_audit_trail_as_chains_that_verify(info, paid, capsys):
    first, second, third = ledger_items(info, paid)
    assert [e["Status"]["S"] for e in (first, second, third)] == [
        "PAYMENT-INITIATED",
        "PAYMENT-PENDING",
        "PAYMENT-SUCCESS",
    ]
    assert first["PrevHash"] == {"S": chain.GENESIS}
    assert second["PrevHash"] == first["EntryHash"] and third["PrevHash"] == second["EntryHash"]
    assert all(e["EntryHash"]["S"] == chain.entry_hash(e) for e in (first, second, third))

    records = audit_items(info, paid)
    assert [int(r["ChainSeq"]["N"]) for r in records] == list(range(1, len(records) + 1))
    assert "ccsale" in {r["Operation"]["S"] for r in records}
    assert records[0]["PrevHash"] == {"S": chain.GENESIS}
    assert all(after["PrevHash"] == before["EntryHash"] for before, after in itertools.pairwise(records))

    status, out = verify(info, paid, capsys)
    assert status == 0, out
    assert out.startswith("Verified 1 payment: 3 entries of PaymentLedger, "), out


def put(info, table, item):
    info.client("dynamodb").put_item(TableName=table, Item=item)


def rewrite_success_as_failed(info, transaction_id):
    third = ledger_items(info, transaction_id)[2]
    put(info, info.ledger_table, third | {"Status": {"S": "PAYMENT-FAILED"}, "ReasonCode": {"S": "SYSTEM_ERROR"}})


def delete_entry_2(info, transaction_id):
    key = {"TransactionID": {"S": transaction_id}, "EntryNumber": {"N": "2"}}
    info.client("dynamodb").delete_item(TableName=info.ledger_table, Key=key)


def insert_entry_4(info, transaction_id):
    third = ledger_items(info, transaction_id)[2]
    put(info, info.ledger_table, third | {"EntryNumber": {"N": "4"}, "Amount": {"S": "0.01"}})


def rewrite_the_sale_record(info, transaction_id):
    sale = next(r for r in audit_items(info, transaction_id) if r["Operation"]["S"] == "ccsale")
    put(info, info.audit_table, sale | {"Outcome": {"S": "DECLINED"}})
    return f"AuditID {sale['AuditID']['S']} (ChainSeq {sale['ChainSeq']['N']})"


@pytest.mark.parametrize(
    ("tamper", "named"),
    [
        (rewrite_success_as_failed, "PaymentLedger  entry 3  changed"),
        (delete_entry_2, "PaymentLedger  entry 2  removed"),
        (insert_entry_4, "PaymentLedger  entry 4  inserted"),
        (rewrite_the_sale_record, None),  # named by its AuditID, which the tampering returns
    ],
    ids=["entry-rewritten", "middle-entry-deleted", "entry-inserted", "audit-record-rewritten"],
)
def test_the_verifier_names_an_entry_tampered_with_outside_the_repositories(info, paid, capsys, tamper, named):
    audit_id = tamper(info, paid)

    status, out = verify(info, paid, capsys)

    assert status == 1
    expected = named or f"PaymentAuditTrail  {audit_id}  changed"
    assert any(line.startswith(f"{paid}  {expected}") for line in out.splitlines()), out
    secure_token = ledger_items(info, paid)[0]["SecureToken"]["S"]
    assert secure_token not in out and card_data_in(out) == []


def test_the_verifier_refuses_to_guess_which_tables_to_read(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["verify-ledger", "--ledger-table", "PaymentLedger"])

    assert exit_.value.code == 2
    assert "--audit-table" in capsys.readouterr().err
