"""`python -m local verify-ledger`: recompute the hash chains of the ledger and the audit trail.

Reads every item of both tables (a consistent Scan; a consistent Query per payment with
--transaction-id), groups them by TransactionID and recomputes each payment's chains
(payments.chain): every EntryHash against its item's content, the numbering 1..n, every PrevHash
against the item before. On top of the chain, one ledger rule: no entry after the terminal one,
none beyond entry 3. It names each entry that was changed, removed or inserted by TransactionID,
table and EntryNumber or AuditID, and never prints an item's content (no card data, no ciphertext).

What it cannot show (docs/tamper-evidence.md): a plain SHA-256 chain holds no secret, so whoever
can write the table can rewrite an entry and recompute every later hash of that payment; removing
a payment's last entry (or every entry of it), or appending a well-linked audit record at the end,
leaves a chain that verifies. The immutable archive of the prod tables' streams (S3 Object Lock)
and CloudTrail are the evidence for those.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from payments import chain
from payments.chain import INSERTED, Finding, Item
from payments.ledger import APPROVED_STATUSES, FAILED, LAST_ENTRY_NUMBER, NOTHING_SENT_REASONS, TERMINAL_STATUSES
from payments.operations import HistoryEntry, OperationRefused, OperationRequest, admit, balances_of, parse_status
from payments.status_sync import UNKNOWN_PAYMENT_REASONS


@dataclass(frozen=True)
class Tables:
    ledger: str
    audit: str


@dataclass(frozen=True)
class Verification:
    tables: Tables
    payments: int
    ledger_entries: int
    audit_records: int
    findings: list[Finding]

    @property
    def clean(self) -> bool:
        return not self.findings


def verify_payment(
    transaction_id: str,
    ledger_entries: Iterable[Item],
    audit_records: Iterable[Item],
    tables: Tables = Tables("ledger", "audit"),
) -> list[Finding]:
    """Everything one payment's records show was changed, removed or inserted."""
    entries = list(ledger_entries)
    return [
        *chain.verify_ledger_chain(transaction_id, entries, tables.ledger),
        *_entries_past_the_end(transaction_id, entries, tables.ledger),
        *chain.verify_audit_chain(transaction_id, audit_records, tables.audit),
    ]


def verify_items(ledger_items: Iterable[Item], audit_items: Iterable[Item], tables: Tables) -> Verification:
    """Verify every payment the items belong to."""
    ledger, audit = _by_payment(ledger_items), _by_payment(audit_items)
    payments = sorted(set(ledger) | set(audit))
    findings = [finding for t in payments for finding in verify_payment(t, ledger.get(t, []), audit.get(t, []), tables)]
    return Verification(
        tables=tables,
        payments=len(payments),
        ledger_entries=sum(map(len, ledger.values())),
        audit_records=sum(map(len, audit.values())),
        findings=findings,
    )


def verify_tables(dynamodb: Any, tables: Tables, transaction_ids: Sequence[str] = ()) -> Verification:
    """Read both tables (all of them, or these payments only) and verify them."""
    return verify_items(
        read_items(dynamodb, tables.ledger, transaction_ids),
        read_items(dynamodb, tables.audit, transaction_ids),
        tables,
    )


def read_items(dynamodb: Any, table: str, transaction_ids: Sequence[str] = ()) -> list[Item]:
    """Every item of `table` (or of these payments), read consistently, as DynamoDB typed items."""
    if transaction_ids:
        pages = (
            page
            for transaction_id in transaction_ids
            for page in dynamodb.get_paginator("query").paginate(
                TableName=table,
                KeyConditionExpression="TransactionID = :id",
                ExpressionAttributeValues={":id": {"S": transaction_id}},
                ConsistentRead=True,
            )
        )
    else:
        pages = dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
    return [item for page in pages for item in page["Items"]]


def report_lines(verification: Verification) -> list[str]:
    """What an operator reads: one line per finding, then the verdict."""
    v = verification
    lines = [
        f"Verified {_count(v.payments, 'payment')}: {_count(v.ledger_entries, 'entry', 'entries')} of "
        f"{v.tables.ledger}, {_count(v.audit_records, 'record')} of {v.tables.audit}."
    ]
    lines += [str(finding) for finding in v.findings]
    if v.clean:
        lines.append(
            "No entry changed, removed or inserted, as far as the chains can show "
            "(what they cannot: docs/tamper-evidence.md)."
        )
    else:
        affected = len({finding.transaction_id for finding in v.findings})
        lines.append(f"{_count(len(v.findings), 'finding')} in {_count(affected, 'payment')}.")
    return lines


def _count(number: int, one: str, many: str | None = None) -> str:
    return f"{number} {one if number == 1 else many or one + 's'}"


def _by_payment(items: Iterable[Item]) -> dict[str, list[Item]]:
    grouped: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        grouped[chain.string_of(item, "TransactionID") or "(no TransactionID)"].append(item)
    return grouped


def _entries_past_the_end(transaction_id: str, entries: list[Item], table: str) -> list[Finding]:
    """A well-linked entry appended after the terminal one passes the chain; the ledger's rules do not.

    After the payment's terminal entry only the entries of its operations (captures, voids, refunds:
    payments.operations) may follow, and only after an approved payment, but for the refusal of an
    operation (its one entry, DECLINED), which may follow any; each operation's entries carry its
    OperationID and run INITIATED, then PENDING, then one terminal entry."""
    numbered = sorted(
        ((n, item) for item in entries if (n := chain.number_of(item, "EntryNumber")) is not None),
        key=lambda pair: pair[0],
    )
    terminal, terminal_status = next(
        ((n, status) for n, item in numbered if (status := chain.string_of(item, "Status")) in TERMINAL_STATUSES),
        (None, None),
    )
    terminal_item = next((item for n, item in numbered if n == terminal), None)
    facts_after: list[Item] = []
    findings = []
    stages: dict[str, list[str]] = {}
    history: list[HistoryEntry] = []
    for number, item in numbered:
        history.append(_history_entry(item))
        parsed = parse_status(chain.string_of(item, "Status") or "")
        if parsed is not None:
            operation_id = chain.string_of(item, "OperationID")
            resolved = chain.string_of(item, "Resolution") is not None
            unknown = parsed[1] == "FAILED" and chain.string_of(item, "ReasonCode") not in NOTHING_SENT_REASONS
            detail = _operation_entry_problem(parsed[1], operation_id, terminal, number, stages, resolved, unknown)
            detail = detail or _balances_problem(item, history)
            refused = stages.get(operation_id or "") == ["DECLINED"]
            if detail is None and terminal_status not in APPROVED_STATUSES and not refused:
                detail = "an operation on a payment that was not approved"
            if detail is None and parsed[1] == "INITIATED":
                detail = _admission_problem(
                    transaction_id, item, history[:-1], chain.string_of(numbered[0][1], "Currency")
                )
            if detail is not None:
                findings.append(Finding(transaction_id, table, f"entry {number}", INSERTED, detail))
            continue
        if terminal is not None and number > terminal:
            facts_after.append(item)
            detail = _fact_problem(terminal, terminal_item, facts_after)
        elif number > LAST_ENTRY_NUMBER:
            detail = f"a payment has at most {LAST_ENTRY_NUMBER} entries"
        else:
            continue
        if detail is not None:
            findings.append(Finding(transaction_id, table, f"entry {number}", INSERTED, detail))
    return findings


# What status sync and reconciliation may append after a payment's terminal entry, each once, by what
# that entry says: a settlement after an approval; after a failure of unknown outcome, either the
# finding that nothing was charged, or a reversal on its way and then recorded.
_FACTS_AFTER = {
    "APPROVED": [("PAYMENT-SETTLED", "SETTLED")],
    "UNKNOWN": [
        ("PAYMENT-FAILED", "RECORD_NOT_CHARGED"),
        ("PAYMENT-REVERSING", "REVERSE"),
        ("PAYMENT-REVERSED", "REVERSE"),
    ],
}


def _fact_problem(number: int, terminal: Item | None, facts: list[Item]) -> str | None:
    """Why the last of `facts` (the payment's own entries after its terminal one, entry `number`) cannot
    stand, or None."""
    if terminal is None:
        return f"it comes after the terminal entry {number}"
    ended = chain.string_of(terminal, "Status")
    kind = "APPROVED" if ended in APPROVED_STATUSES else None
    if ended == FAILED and chain.string_of(terminal, "ReasonCode") in UNKNOWN_PAYMENT_REASONS:
        kind = "UNKNOWN"
    allowed = _FACTS_AFTER.get(kind or "", [])
    written = [(chain.string_of(f, "Status"), chain.string_of(f, "Resolution")) for f in facts]
    if written[-1] not in allowed or written.count(written[-1]) > 1:
        return f"it comes after the terminal entry {number}"
    statuses = [status for status, _ in written]
    if "PAYMENT-FAILED" in statuses and "PAYMENT-REVERSING" in statuses:
        return "a payment found not charged is not reversed too"
    if statuses[-1] == "PAYMENT-REVERSED" and "PAYMENT-REVERSING" not in statuses[:-1]:
        return "a reversal recorded that never began"
    return None


def _history_entry(item: Item) -> HistoryEntry:
    return HistoryEntry(
        chain.string_of(item, "Status") or "",
        chain.string_of(item, "Amount") or "0",
        chain.string_of(item, "OperationID"),
        chain.string_of(item, "ReasonCode"),
    )


def _balances_problem(item: Item, history: list[HistoryEntry]) -> str | None:
    """An operation's entry carries the payment's balances once it stands: they must add up."""
    captured, refunded = chain.string_of(item, "Captured"), chain.string_of(item, "Refunded")
    if captured is None and refunded is None:
        return None  # written before entries carried balances
    try:
        balances = balances_of(history)
        carried = (Decimal(captured or "x"), Decimal(refunded or "x"))
    except ArithmeticError:
        return "its balances are not amounts"
    if carried != (balances.captured, balances.refunded):
        return "its balances are not what the history before it adds up to"
    return None


def _admission_problem(transaction_id: str, item: Item, before: list[HistoryEntry], currency: str | None) -> str | None:
    """An operation is admitted against the history before its INITIATED entry (payments.operations.admit):
    replayed, the same rules must admit it, for the amount it holds."""
    parsed = parse_status(chain.string_of(item, "Status") or "")
    if parsed is None:
        return None
    kind = parsed[0]
    try:
        amount = Decimal(chain.string_of(item, "Amount") or "x")
    except ArithmeticError:
        return "its amount is not an amount"
    request = OperationRequest(
        kind, chain.string_of(item, "OperationID") or "", transaction_id, None if kind == "void" else amount
    )
    try:
        admitted = admit(request, balances_of(before), payment_found=True, currency=currency)
    except OperationRefused as refusal:
        return f"the history before it does not allow it ({refusal.reason})"
    except ArithmeticError:
        return "the history before it holds an amount that is not one"
    if admitted != amount:
        return "its amount is not what the history before it allowed"
    return None


# An operation refused at admission has one entry: DECLINED, with its reason.
_NEXT_STAGES = {
    None: {"INITIATED", "DECLINED"},
    "INITIATED": {"PENDING", "DECLINED", "FAILED"},
    "PENDING": {"SUCCESS", "DECLINED", "FAILED"},
}


def _operation_entry_problem(
    stage: str,
    operation_id: str | None,
    terminal: int | None,
    number: int,
    stages: dict[str, list[str]],
    resolved: bool = False,
    unknown: bool = False,
) -> str | None:
    """Why an operation's entry cannot stand where it is, or None. Status sync's resolution (`resolved`)
    may end an operation that FAILED with its outcome unknown (`unknown`), once: SUCCESS if the money
    moved, a FAILED whose reason proves it did not otherwise."""
    if terminal is None or number < terminal:
        return "an operation before the payment ended"
    if not operation_id:
        return "an operation entry without its OperationID"
    seen = stages.setdefault(operation_id, [])
    after_failure = {"SUCCESS", "FAILED"} if resolved and seen[-1:] == [_UNKNOWN] and not unknown else set()
    if stage not in _NEXT_STAGES.get(seen[-1] if seen else None, set()) | after_failure:
        return "out of its operation's order (INITIATED, PENDING, one terminal entry)"
    seen.append(_UNKNOWN if unknown else stage)
    return None


_UNKNOWN = "FAILED?"  # an operation's FAILED entry after which the money may have moved
