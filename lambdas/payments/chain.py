"""Hash chains over the append-only PaymentLedger and PaymentAuditTrail (docs/tamper-evidence.md).

Every item of a payment carries `PrevHash` and `EntryHash` (lowercase hex SHA-256): its EntryHash
is the hash of its own canonical form, which includes its PrevHash, and its PrevHash is the
EntryHash of the item before it in the payment's chain. The first item links to GENESIS (64 zeros).

- Ledger: the chain is EntryNumber order. Entry n links to entry n-1, entry 1 to GENESIS.
- Audit trail: the chain is write order. Each record carries `ChainSeq` (1, 2, 3...) and links
  to the record of ChainSeq - 1 (AuditIDs sort by time, sale-attempt markers do not: write order
  is the only order every record has).

Canonical form of an item, the bytes that are hashed:
  the item as DynamoDB holds it (attribute name -> typed value, e.g. {"Amount": {"S": "25.00"}}),
  every attribute except EntryHash, as JSON with keys sorted at every level, separators "," and ":"
  and no other whitespace, characters outside ASCII written as themselves, encoded as UTF-8. Within
  it, a number (N, and each member of NS) is written in its canonical decimal form: no exponent, no
  leading zeros, no trailing zeros after the point, no point for an integer, "0" for zero (DynamoDB
  may give a number back spelled otherwise than it was sent). Binary (B, BS members) is standard
  padded base64. The members of a set (SS, NS, BS) are sorted (NS by value); lists keep their order.

What a chain shows, and what it cannot (verify_chain finds the first kind):
- an item whose content was changed and its EntryHash kept: "changed";
- a missing sequence number, or a PrevHash that links to no item: "removed";
- a duplicate sequence number, or a PrevHash that links to another item: "inserted".
A plain SHA-256 chain has no secret: whoever can write the table can rewrite an item *and*
recompute its EntryHash and every later PrevHash/EntryHash of that payment, and the chain verifies.
Removing a payment's last item (or all of them) leaves a shorter chain that verifies too, and so
does appending an item at the end with the right link. Those are what the immutable copy (the prod
table's stream archived to S3 under Object Lock) and CloudTrail's record of who wrote are for.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Context, Decimal
from typing import Any

from boto3.dynamodb.types import Binary, TypeSerializer

Item = Mapping[str, Any]  # a DynamoDB item as the low-level client gives it: {"Name": {"S": "value"}}

GENESIS = "0" * 64
PREV_HASH = "PrevHash"
ENTRY_HASH = "EntryHash"
CHAIN_SEQ = "ChainSeq"
CHAIN_FIELDS = frozenset({PREV_HASH, ENTRY_HASH, CHAIN_SEQ})

CHANGED = "changed"
REMOVED = "removed"
INSERTED = "inserted"

# DynamoDB keeps up to 38 significant digits; a wider context normalizes them without rounding.
_NUMBERS = Context(prec=40)
_serializer = TypeSerializer()


def canonical_form(item: Item) -> bytes:
    """The bytes an item's EntryHash is the SHA-256 of (see the module docstring)."""
    values = {name: _canonical_value(value) for name, value in item.items() if name != ENTRY_HASH}
    return json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def entry_hash(item: Item) -> str:
    """What the item's EntryHash must be, for its content as it is now."""
    return hashlib.sha256(canonical_form(item)).hexdigest()


def sealed(item: Item, prev_hash: str) -> dict[str, Any]:
    """The item linked to `prev_hash`, with its own EntryHash."""
    linked = {**without_chain_hashes(item), PREV_HASH: {"S": prev_hash}}
    return {**linked, ENTRY_HASH: {"S": entry_hash(linked)}}


def link_to(predecessor: Item | None) -> str:
    """The PrevHash of the item after `predecessor` (None: there is none, this is the first)."""
    if predecessor is None:
        return GENESIS
    # An item written before chains existed has no EntryHash; the verifier names it.
    return string_of(predecessor, ENTRY_HASH) or GENESIS


def without_chain_hashes(item: Item) -> dict[str, Any]:
    return {name: value for name, value in item.items() if name not in (PREV_HASH, ENTRY_HASH)}


def content_of(item: Item) -> dict[str, Any]:
    """The item without its chain fields: what two writes of the same record must agree on."""
    return {name: value for name, value in item.items() if name not in CHAIN_FIELDS}


def typed(values: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB item from plain Python values (str, int, Decimal...), as boto3's resource layer writes them."""
    return {name: _serializer.serialize(value) for name, value in values.items()}


def string_of(item: Item, name: str) -> str | None:
    value = item.get(name)
    return value.get("S") if isinstance(value, Mapping) else None


def number_of(item: Item, name: str) -> int | None:
    """A positive integer attribute, or None when it is absent or anything else."""
    value = item.get(name)
    text = value.get("N") if isinstance(value, Mapping) else None
    try:
        number = Decimal(str(text))
    except ArithmeticError:
        return None
    if not number.is_finite() or number != number.to_integral_value() or number < 1:
        return None
    return int(number)


@dataclass(frozen=True)
class Finding:
    """One item a chain shows was changed, removed or inserted. Names items, never shows their content."""

    transaction_id: str
    table: str
    where: str  # "entry 3", "AuditID 2026-...#ccsale#1 (ChainSeq 2)", "ChainSeq 4"
    kind: str  # CHANGED, REMOVED or INSERTED
    detail: str

    def __str__(self) -> str:
        return f"{self.transaction_id}  {self.table}  {self.where}  {self.kind}: {self.detail}"


def verify_ledger_chain(transaction_id: str, entries: Iterable[Item], table: str = "ledger") -> list[Finding]:
    """The findings of one payment's ledger chain (EntryNumber order)."""
    return verify_chain(
        transaction_id,
        table,
        entries,
        sequence="EntryNumber",
        name=lambda entry: f"entry {number_of(entry, 'EntryNumber')}",
        slot=lambda number: f"entry {number}",
    )


def verify_audit_chain(transaction_id: str, records: Iterable[Item], table: str = "audit") -> list[Finding]:
    """The findings of one payment's audit chain (ChainSeq order, which is write order)."""

    def name(record: Item) -> str:
        seq = number_of(record, CHAIN_SEQ)
        return f"AuditID {string_of(record, 'AuditID')}" + (f" (ChainSeq {seq})" if seq is not None else "")

    return verify_chain(
        transaction_id, table, records, sequence=CHAIN_SEQ, name=name, slot=lambda seq: f"ChainSeq {seq}"
    )


def verify_chain(
    transaction_id: str,
    table: str,
    items: Iterable[Item],
    *,
    sequence: str,
    name: Callable[[Item], str],
    slot: Callable[[int], str],
) -> list[Finding]:
    """Recompute one payment's chain: each item's EntryHash, the numbering 1..n, and each link.

    `sequence` is the attribute that numbers the chain; `name` says how findings name an item and
    `slot` how they name a number no item holds.
    """
    found: list[tuple[float, Finding]] = []

    def report(order: float, where: str, kind: str, detail: str) -> None:
        found.append((order, Finding(transaction_id, table, where, kind, detail)))

    by_number: dict[int, list[Item]] = defaultdict(list)
    linked_to: dict[str, Item] = {}  # stored EntryHash -> the item that carries it
    for item in items:
        number = number_of(item, sequence)
        if number is None:
            report(float("inf"), name(item), INSERTED, f"it has no {sequence}: not written by the chain's writers")
            continue
        by_number[number].append(item)
        stored = string_of(item, ENTRY_HASH)
        if stored is None:
            report(
                number,
                name(item),
                CHANGED,
                "it has no EntryHash: written outside the repository (or before hash chains)",
            )
            continue
        linked_to[stored] = item
        if stored != entry_hash(item):
            report(number, name(item), CHANGED, "its content does not match its EntryHash")

    previous = 0
    for number in sorted(by_number):  # gaps as ranges: a forged number may be huge
        if number - previous == 2:
            report(previous + 1, slot(previous + 1), REMOVED, "it is missing from the chain")
        elif number - previous > 2:
            report(previous + 1, f"{slot(previous + 1)}..{number - 1}", REMOVED, "they are missing from the chain")
        previous = number

    for number, holders in sorted(by_number.items()):
        if len(holders) > 1:
            for item in holders:
                report(number, name(item), INSERTED, f"{len(holders)} items hold {sequence} {number}")
        if number > 1 and number - 1 not in by_number:
            continue  # the gap is named above
        before = by_number.get(number - 1, [])
        expected = {GENESIS} if number == 1 else {h for h in (string_of(i, ENTRY_HASH) for i in before) if h}
        if not expected:
            continue  # its predecessor has no EntryHash: named above
        for item in holders:
            link = string_of(item, PREV_HASH)
            if link in expected or string_of(item, ENTRY_HASH) is None:
                continue  # linked, or not a member of the chain at all (named above)
            target = linked_to.get(link) if link else None
            if link is None:
                report(number, name(item), CHANGED, "it has no PrevHash")
            elif link == GENESIS:
                report(number, name(item), INSERTED, "its PrevHash is the genesis value, as if it came first")
            elif target is not None:
                report(number, name(item), INSERTED, f"its PrevHash links to {name(target)}, not to {slot(number - 1)}")
            else:
                what = "what came before it was removed" if number == 1 else f"{slot(number - 1)} was replaced"
                report(number, name(item), REMOVED, f"its PrevHash links to no item: {what}")
    return [finding for _, finding in sorted(found, key=lambda pair: pair[0])]


def _canonical_value(value: Any) -> Any:
    """One typed attribute value in canonical form (see the module docstring)."""
    if not isinstance(value, Mapping) or len(value) != 1:
        raise ValueError(f"not a DynamoDB attribute value: {type(value).__name__}")
    [(kind, inner)] = value.items()
    if kind == "N":
        return {kind: _canonical_number(inner)}
    if kind == "B":
        return {kind: _base64(inner)}
    if kind == "SS":
        return {kind: sorted(inner)}
    if kind == "NS":
        return {kind: [_canonical_number(n) for n in sorted(inner, key=Decimal)]}
    if kind == "BS":
        return {kind: sorted(_base64(b) for b in inner)}
    if kind == "L":
        return {kind: [_canonical_value(v) for v in inner]}
    if kind == "M":
        return {kind: {k: _canonical_value(v) for k, v in inner.items()}}
    return {kind: inner}  # S, BOOL, NULL


def _canonical_number(text: str) -> str:
    number = Decimal(text)
    if number == number.to_integral_value():
        return str(int(number))
    return format(number.normalize(_NUMBERS), "f")


def _base64(value: bytes | bytearray | Binary) -> str:
    raw = value.value if isinstance(value, Binary) else bytes(value)
    return base64.b64encode(raw).decode("ascii")
