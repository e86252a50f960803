"""The hash chains on pure data: the canonical form, linking, and what verification names."""

import hashlib

import pytest

from payments import chain
from payments.chain import CHANGED, GENESIS, INSERTED, REMOVED
from tests.unit.chained_items import STATUSES, audit_trail, ledger, resealed, rewritten


def named(findings):
    return [(f.where, f.kind) for f in findings]


# The canonical form


def test_the_canonical_form_is_sorted_compact_utf8_json_of_the_typed_item_without_its_entry_hash():
    item = {"Status": {"S": "PAYMENT-SUCCESS"}, "Holder": {"S": "Zoë"}, "EntryNumber": {"N": "3"}}
    item |= {"PrevHash": {"S": GENESIS}, "EntryHash": {"S": "ignored"}}

    expected = '{"EntryNumber":{"N":"3"},"Holder":{"S":"Zoë"},"PrevHash":{"S":"' + GENESIS + '"},'
    expected += '"Status":{"S":"PAYMENT-SUCCESS"}}'
    assert chain.canonical_form(item) == expected.encode("utf-8")
    assert chain.entry_hash(item) == hashlib.sha256(expected.encode("utf-8")).hexdigest()


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ({"N": "1.50"}, {"N": "1.5"}),
        ({"N": "007"}, {"N": "7"}),
        ({"N": "1E+2"}, {"N": "100"}),
        ({"N": "-0.0"}, {"N": "0"}),
        ({"SS": ["b", "a"]}, {"SS": ["a", "b"]}),
        ({"NS": ["10", "9.0"]}, {"NS": ["9", "10"]}),
        ({"M": {"b": {"N": "2.0"}, "a": {"S": "x"}}}, {"M": {"a": {"S": "x"}, "b": {"N": "2"}}}),
    ],
    ids=["trailing-zero", "leading-zero", "exponent", "negative-zero", "string-set", "number-set", "map"],
)
def test_spellings_dynamodb_treats_as_equal_hash_the_same(one, other):
    assert chain.entry_hash({"Value": one}) == chain.entry_hash({"Value": other})


@pytest.mark.parametrize(
    "change",
    [{"Status": {"S": "PAYMENT-FAILED"}}, {"Amount": {"N": "25"}}, {"PrevHash": {"S": "1" * 64}}, {"Note": {"S": ""}}],
    ids=["value", "type", "link", "added-attribute"],
)
def test_any_change_but_the_entry_hash_changes_the_hash(change):
    entry = ledger()[2]

    assert chain.entry_hash({**entry, **change}) != chain.entry_hash(entry)
    assert chain.entry_hash({**entry, "EntryHash": {"S": "0" * 64}}) == chain.entry_hash(entry)


def test_a_list_keeps_its_order():
    assert chain.entry_hash({"L": {"L": [{"S": "a"}, {"S": "b"}]}}) != chain.entry_hash(
        {"L": {"L": [{"S": "b"}, {"S": "a"}]}}
    )


def test_sealing_links_to_the_predecessor_and_hashes_the_result():
    first, second = ledger(STATUSES[:2])

    assert first["PrevHash"] == {"S": GENESIS}
    assert second["PrevHash"] == first["EntryHash"]
    assert second["EntryHash"] == {"S": chain.entry_hash(second)}
    assert chain.link_to(None) == GENESIS and chain.link_to(second) == second["EntryHash"]["S"]


def test_content_leaves_out_the_chain_fields_only():
    record = audit_trail(["sale-attempt#01"])[0]

    assert set(chain.content_of(record)) == {"TransactionID", "AuditID", "Operation"}


# The ledger chain


def test_an_intact_ledger_chain_has_no_findings():
    assert chain.verify_ledger_chain("order-ab", ledger()) == []


def test_an_entry_rewritten_with_a_plain_put_item_is_named_changed():
    first, second, third = ledger()
    findings = chain.verify_ledger_chain("order-ab", [first, second, rewritten(third, Status="PAYMENT-FAILED")])

    assert named(findings) == [("entry 3", CHANGED)]
    assert str(findings[0]) == "order-ab  ledger  entry 3  changed: its content does not match its EntryHash"


def test_a_removed_middle_entry_is_named_removed():
    first, _, third = ledger()

    assert named(chain.verify_ledger_chain("order-ab", [first, third])) == [("entry 2", REMOVED)]


def test_several_removed_entries_are_named_as_one_range():
    first, *_, fourth = ledger(["A", "B", "C", "D"])

    assert named(chain.verify_ledger_chain("order-ab", [first, fourth])) == [("entry 2..3", REMOVED)]


def test_an_entry_replaced_with_a_recomputed_hash_breaks_the_next_link():
    first, second, third = ledger()
    forged = resealed(second, Status="PAYMENT-DECLINED")

    assert named(chain.verify_ledger_chain("order-ab", [first, forged, third])) == [("entry 3", REMOVED)]


def test_an_entry_inserted_as_a_copy_of_another_is_named_inserted():
    entries = ledger()
    extra = rewritten(entries[2], Status="PAYMENT-SUCCESS") | {"EntryNumber": {"N": "4"}}

    findings = chain.verify_ledger_chain("order-ab", [*entries, extra])

    assert named(findings) == [("entry 4", CHANGED), ("entry 4", INSERTED)]
    assert findings[1].detail == "its PrevHash links to entry 2, not to entry 3"


def test_an_entry_that_claims_to_come_first_is_named_inserted():
    first, second, third = ledger()
    forged = resealed(second, prev_hash=GENESIS)

    assert named(chain.verify_ledger_chain("order-ab", [first, forged, third])) == [
        ("entry 2", INSERTED),
        ("entry 3", REMOVED),
    ]


def test_an_entry_without_chain_fields_is_named():
    first, second, third = ledger()
    unchained = {k: v for k, v in third.items() if k not in ("PrevHash", "EntryHash")}

    assert named(chain.verify_ledger_chain("order-ab", [first, second, unchained])) == [("entry 3", CHANGED)]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda entries: entries[:2],  # the last entry removed
        lambda entries: [entries[0], *_reseal_from(entries[1:], entries[0])],  # rewritten and every later hash redone
    ],
    ids=["last-entry-removed", "hashes-recomputed"],
)
def test_what_a_plain_chain_cannot_show(tamper):
    # Documented in payments.chain and docs/tamper-evidence.md: the archive and CloudTrail show these.
    assert chain.verify_ledger_chain("order-ab", tamper(ledger())) == []


def _reseal_from(entries, before):
    resealed_entries, link = [], before["EntryHash"]["S"]
    for entry in entries:
        resealed_entries.append(chain.sealed(rewritten(entry, Amount="1.00"), link))
        link = resealed_entries[-1]["EntryHash"]["S"]
    return resealed_entries


# The audit chain


def test_audit_records_chain_in_write_order_whatever_their_audit_ids_sort_to():
    trail = audit_trail(["sale-attempt#01", "2026-11-27T06:00:00.000000Z#ccsale#1"])

    assert chain.verify_audit_chain("order-ab", reversed(trail)) == []


def test_an_audit_record_rewritten_is_named_by_its_audit_id():
    first, second = audit_trail(["sale-attempt#01", "2026-11-27T06:00:00.000000Z#ccsale#1"])
    findings = chain.verify_audit_chain("order-ab", [first, rewritten(second, Operation="txnquery")])

    assert named(findings) == [("AuditID 2026-11-27T06:00:00.000000Z#ccsale#1 (ChainSeq 2)", CHANGED)]


def test_a_removed_audit_record_is_named_by_its_chain_seq():
    first, _, third = audit_trail(["a", "b", "c"])

    assert named(chain.verify_audit_chain("order-ab", [first, third])) == [("ChainSeq 2", REMOVED)]


def test_two_records_holding_one_chain_seq_are_both_named_inserted():
    first, second = audit_trail(["a", "b"])
    extra = resealed(second, AuditID="x")

    assert named(chain.verify_audit_chain("order-ab", [first, second, extra])) == [
        ("AuditID b (ChainSeq 2)", INSERTED),
        ("AuditID x (ChainSeq 2)", INSERTED),
    ]


def test_a_record_without_chain_seq_is_named_inserted():
    trail = audit_trail(["a"])
    extra = {"TransactionID": {"S": "order-ab"}, "AuditID": {"S": "z"}, "Operation": {"S": "ccsale"}}

    assert named(chain.verify_audit_chain("order-ab", [*trail, extra])) == [("AuditID z", INSERTED)]
