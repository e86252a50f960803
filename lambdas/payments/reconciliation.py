"""Daily reconciliation, the deciding half: what the processor lists for a day against what the ledger says.

Pure: no AWS, no processor. `payments.reconciliation_run` reads the listings and the ledger and
writes what is decided here (docs/architecture.md#daily-reconciliation).

Both sides are keyed the same way: the processor's id of a transaction (Converge: ssl_txn_id) and the
merchant reference it carries (ssl_merchant_txn_id: our TransactionID for a sale or an authorization, our
OperationID for a capture, void or refund, status sync's reference for a reversal). A processor id alone
is not enough: Converge lists an authorization, its completion and its release under one ssl_txn_id, each
with its own reference. What the ledger says a transaction should be listed as:

| ledger entry                    | key: processor id, reference  | listed as                                  |
|---------------------------------|-------------------------------|--------------------------------------------|
| PAYMENT-SUCCESS                 | its id, the TransactionID     | a sale                                     |
| PAYMENT-AUTHORIZED              | its id, the TransactionID     | an authorization                           |
| CAPTURE-SUCCESS                 | its id, the OperationID       | a capture                                  |
| VOID-SUCCESS                    | its id, the OperationID       | a void (or an authorization's release)     |
| REFUND-SUCCESS                  | its id, the OperationID       | a refund                                   |
| PAYMENT-REVERSING (status sync) | the charge's, the TransactionID | a sale or an authorization               |
| PAYMENT-REVERSED (status sync)  | its id, the OperationID       | a void or a refund, as its ReasonCode says |

A charge (sale, authorization, capture) of a payment the ledger shows voided since (VOID-SUCCESS, or a
reversal by void) is listed as a void under its own id; one not voided must not be.

Categories, for each transaction of the day (by the processor's time; for one the processor does not list,
by the day its ledger entry was written):

- MATCHED: listed as the ledger says, same kind, amount and currency;
- MISSING_IN_LEDGER: the processor lists an approval the ledger does not hold;
- MISSING_AT_PROCESSOR: the ledger holds an approval the processor does not list;
- AMOUNT_MISMATCH: both hold it, for another amount or currency;
- STATUS_MISMATCH: both hold it, but not alike: declined (or unreadable) at the processor, another kind,
  voided on one side only, or another reference;
- SETTLED (not a mismatch): a matched sale or capture the processor lists as settled: its payment's
  PAYMENT-SETTLED fact is recorded (not for a charge status sync is reversing: that payment ended failed).
  One still open is counted apart (`not_yet_settled`): its fact waits for a run after its batch settles.

A transaction of a kind the processor's adapter does not know ("unknown") is money until shown otherwise:
listed approved, it is a finding (MISSING_IN_LEDGER, or a STATUS_MISMATCH against the ledger's entry);
only the kinds the adapter knows to move no money ("other": a card verification, a token) are left out.

A decline at the processor moves no money and the ledger records declines under no processor id to
match: one the ledger does not hold as approved is counted (DECLINED_AT_PROCESSOR), never a mismatch.
Transactions listed, and ledger entries written, in the margins around the day (the processor's
clock and ours differ, and a ledger entry follows its processor call by up to minutes) match what
they can and are never reported by themselves; a listing in a margin is paired by its key only (by
processor id alone, only in its own day's run, which reads the ledger around it).

An entry written after the fact (a status sync or an operator resolution, a reversal's REVERSING) dates
from when its request left, which may be an earlier day whose run could not see the entry. Unlisted in
this day's listing, it is judged on the day it was written: against the stored listing of the day its
request left, if there is one, and reported MISSING_AT_PROCESSOR unless that listing holds it.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, Protocol

from payments import ledger, operations

Category = Literal["MATCHED", "MISSING_IN_LEDGER", "MISSING_AT_PROCESSOR", "AMOUNT_MISMATCH", "STATUS_MISMATCH"]
MATCHED: Category = "MATCHED"
MISSING_IN_LEDGER: Category = "MISSING_IN_LEDGER"
MISSING_AT_PROCESSOR: Category = "MISSING_AT_PROCESSOR"
AMOUNT_MISMATCH: Category = "AMOUNT_MISMATCH"
STATUS_MISMATCH: Category = "STATUS_MISMATCH"
MISMATCHES: tuple[Category, ...] = (MISSING_IN_LEDGER, MISSING_AT_PROCESSOR, AMOUNT_MISMATCH, STATUS_MISMATCH)
SETTLED = "SETTLED"
DECLINED_AT_PROCESSOR = "DECLINED_AT_PROCESSOR"
COUNTED = (MATCHED, *MISMATCHES, SETTLED, DECLINED_AT_PROCESSOR)

CAPTURE_SUCCESS = operations.status("capture", operations.SUCCESS)
VOID_SUCCESS = operations.status("void", operations.SUCCESS)
REFUND_SUCCESS = operations.status("refund", operations.SUCCESS)
# Every ledger Status that says the processor approved a transaction: what reconciliation reads.
APPROVAL_STATUSES = (
    ledger.SUCCESS,
    ledger.AUTHORIZED,
    CAPTURE_SUCCESS,
    VOID_SUCCESS,
    REFUND_SUCCESS,
    ledger.REVERSING,
    ledger.REVERSED,
)
# status sync's ReasonCode on a reversal: how it goes (payments.status_resolution).
REVERSE_BY_VOID, REVERSE_BY_RETURN = "REVERSE_BY_VOID", "REVERSE_BY_RETURN"
_CHARGE_KINDS = frozenset({"sale", "authorization", "capture"})
_SETTLING_KINDS = frozenset({"sale", "capture"})  # what a settled batch moves to the merchant
# The approvals whose settlement the ledger records: a payment's sale, or its capture. A charge being reversed
# (its payment ended failed: the caller was told so) gets no PAYMENT-SETTLED; status sync returns it in full.
_SETTLED_FACT_STATUSES = frozenset({ledger.SUCCESS, CAPTURE_SUCCESS})
NOT_MONEY_KIND = "other"  # what an adapter lists a transaction it knows to move no money as
UNKNOWN_KIND = "unknown"  # a type the adapter does not know: judged as money
_PENDING_STATUSES = frozenset({ledger.PENDING, *(operations.status(k, operations.PENDING) for k in operations.KINDS)})


class Listed(Protocol):
    """A transaction as the processor lists it (payments.processors.port.ListedTransaction)."""

    @property
    def processor_transaction_id(self) -> str: ...

    @property
    def reference(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def amount(self) -> Decimal | None: ...

    @property
    def currency(self) -> str: ...

    @property
    def outcome(self) -> str: ...

    @property
    def settled(self) -> bool: ...

    @property
    def at(self) -> dt.datetime: ...


@dataclass(frozen=True)
class LedgerFact:
    """A ledger entry as reconciliation reads it: from the EntriesByStatus index (what it projects), or a
    payment's whole ledger when a finding is looked at again."""

    TransactionID: str
    Status: str
    CreatedAt: str
    Amount: str | None = None
    Currency: str | None = None
    ProcessorID: str | None = None
    OperationID: str | None = None
    ProcessorTransactionID: str | None = None
    ReasonCode: str | None = None
    Resolution: str | None = None

    @classmethod
    def of(cls, item: dict[str, Any]) -> LedgerFact:
        known = cls.__dataclass_fields__
        values: dict[str, Any] = {name: None if v is None else str(v) for name, v in item.items() if name in known}
        return cls(**values)


@dataclass(frozen=True)
class Expected:
    """One transaction the ledger says the processor holds, and how it should be listed."""

    transaction_id: str
    operation_id: str | None
    status: str  # the ledger Status it stands for
    processor_transaction_id: str
    reference: str
    kinds: frozenset[str]  # what it may be listed as while it stands
    amount: Decimal | None
    currency: str
    charge: bool
    voided: bool | None  # a charge: whether the ledger says it was voided since (None: a reversal in flight)
    at: dt.datetime  # when the processor made it, as the ledger tells
    written: dt.datetime  # when its entry was written (`at`, but for an entry written after the fact)

    @property
    def key(self) -> tuple[str, str]:
        return (self.processor_transaction_id, self.reference)

    @property
    def listable_kinds(self) -> frozenset[str]:
        if not self.charge or self.voided is False:
            return self.kinds
        return frozenset({"void"}) if self.voided else self.kinds | {"void"}


@dataclass(frozen=True)
class Finding:
    """One reported transaction (a mismatch): what each side holds, never card data."""

    category: Category
    transaction_id: str | None
    operation_id: str | None
    processor_transaction_id: str
    reference: str
    ledger_status: str | None
    ledger_amount: str | None
    processor_kind: str | None
    processor_amount: str | None
    currency: str
    at: str
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {
            "Category": self.category,
            "TransactionID": self.transaction_id,
            "OperationID": self.operation_id,
            "ProcessorTransactionID": self.processor_transaction_id,
            "Reference": self.reference,
            "LedgerStatus": self.ledger_status,
            "LedgerAmount": self.ledger_amount,
            "ProcessorKind": self.processor_kind,
            "ProcessorAmount": self.processor_amount,
            "Currency": self.currency,
            "At": self.at,
            "Detail": self.detail,
        }


@dataclass(frozen=True)
class SettledCharge:
    """A payment's charge the processor lists settled: its PAYMENT-SETTLED fact."""

    transaction_id: str
    processor_transaction_id: str
    amount: str
    currency: str


@dataclass
class Reconciliation:
    """What one day's reconciliation found."""

    day: dt.date
    counts: Counter[str] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    settled: list[SettledCharge] = field(default_factory=list)
    listed: int = 0  # transactions of the day the processor listed
    not_money: int = 0  # listed, but moving no money (verifications, tokens)
    # matched sales and captures (of the kind that gets a PAYMENT-SETTLED) the processor lists still open
    not_yet_settled: int = 0

    @property
    def mismatches(self) -> int:
        return sum(self.counts[category] for category in MISMATCHES)

    def counts_json(self) -> dict[str, int]:
        return {category: self.counts[category] for category in COUNTED}


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The day in UTC: [its midnight, the next)."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


def expectations_of(facts: Iterable[LedgerFact], processor_id: str) -> list[Expected]:
    """What the ledger says the processor holds, from the entries of one or more payments (of this processor).

    A charge is voided if its payment shows a VOID-SUCCESS or a reversal by void among `facts` (the day's
    entries at first; a payment's whole ledger when a finding is looked at again). `at` is the entry's time,
    except for entries written after the fact (status sync's resolutions, a reversal's REVERSING): those
    date from the pending entry before them, when the request left, if `facts` hold it."""
    by_payment: dict[str, list[LedgerFact]] = {}
    for fact in facts:
        by_payment.setdefault(fact.TransactionID, []).append(fact)
    found: dict[tuple[str, str], Expected] = {}
    for entries in by_payment.values():
        entries.sort(key=lambda fact: fact.CreatedAt)
        reversed_by = [e.ReasonCode for e in entries if e.Status == ledger.REVERSED]
        reversing = any(e.Status == ledger.REVERSING for e in entries)
        voided: bool | None = any(e.Status == VOID_SUCCESS for e in entries) or REVERSE_BY_VOID in reversed_by
        if not voided and reversing and not reversed_by:
            voided = None  # the reversal may be a void on its way
        for entry in entries:
            if entry.Status not in APPROVAL_STATUSES or (entry.ProcessorID or processor_id) != processor_id:
                continue
            expected = _expected(entry, entries, voided)
            found.setdefault(expected.key, expected)
    return list(found.values())


def _expected(entry: LedgerFact, history: list[LedgerFact], voided: bool | None) -> Expected:
    kinds, charge, reference = _shape_of(entry)
    return Expected(
        transaction_id=entry.TransactionID,
        operation_id=entry.OperationID,
        status=entry.Status,
        processor_transaction_id=entry.ProcessorTransactionID or "",
        reference=reference,
        kinds=kinds,
        amount=_decimal(entry.Amount),
        currency=entry.Currency or "",
        charge=charge,
        voided=voided if charge else False,
        at=_when_sent(entry, history),
        written=parse_time(entry.CreatedAt),
    )


def _shape_of(entry: LedgerFact) -> tuple[frozenset[str], bool, str]:
    """(the kinds it may be listed as, whether it is a charge, the reference it carries)."""
    own, operation = entry.TransactionID, entry.OperationID or ""
    if entry.Status == ledger.SUCCESS:
        return frozenset({"sale"}), True, own
    if entry.Status == ledger.AUTHORIZED:
        return frozenset({"authorization"}), True, own
    if entry.Status == ledger.REVERSING:  # the charge being reversed, as the payment made it
        return frozenset({"sale", "authorization"}), True, own
    if entry.Status == CAPTURE_SUCCESS:
        return frozenset({"capture"}), True, operation
    if entry.Status == VOID_SUCCESS:
        return frozenset({"void"}), False, operation
    if entry.Status == REFUND_SUCCESS:
        return frozenset({"refund"}), False, operation
    by = {REVERSE_BY_VOID: {"void"}, REVERSE_BY_RETURN: {"refund"}}.get(entry.ReasonCode or "", {"void", "refund"})
    return frozenset(by), False, operation  # REVERSED


def _when_sent(entry: LedgerFact, history: list[LedgerFact]) -> dt.datetime:
    """When the entry's processor request left: the entry's time, or for one written after the fact (a
    resolution, a reversal's REVERSING) the pending entry before it of the same payment or operation."""
    if entry.Resolution is None and entry.Status != ledger.REVERSING:
        return parse_time(entry.CreatedAt)
    pending = [
        e
        for e in history
        if e.Status in _PENDING_STATUSES
        and (e.OperationID or None) == (None if entry.Status == ledger.REVERSING else entry.OperationID or None)
        and e.CreatedAt <= entry.CreatedAt
    ]
    return parse_time(pending[-1].CreatedAt if pending else entry.CreatedAt)


StoredListing = Callable[[dt.date], Iterable[Listed] | None]


def reconcile(
    listed: Iterable[Listed], expected: Iterable[Expected], day: dt.date, stored_listing: StoredListing | None = None
) -> Reconciliation:
    """Match the processor's listing against the ledger's expectations and report the day.

    Pairs are made by (processor id, reference) first, then, for a listing of the day, by processor id
    alone (a reference that differs is a STATUS_MISMATCH). A pair belongs to the day the processor dates it
    (so a transaction near midnight is reported once, whichever day its ledger entry fell on); an unpaired
    listing to the day it dates from; an unpaired expectation to the day its entry was written. One written
    after the fact whose request left another day is looked for in `stored_listing(that day)` (what an
    earlier run listed of it; None: none stored) and reported unless it is listed there."""
    start, end = day_bounds(day)

    def in_day(moment: dt.datetime) -> bool:
        return start <= moment < end

    outcome = Reconciliation(day=day)
    money = []
    for item in listed:
        if item.kind != NOT_MONEY_KIND:
            money.append(item)
        elif in_day(item.at):
            outcome.not_money += 1
    outcome.listed = sum(1 for item in money if in_day(item.at))
    by_key: dict[tuple[str, str], Expected] = {}
    for expectation in expected:
        by_key.setdefault(expectation.key, expectation)
    pairs: list[tuple[Listed, Expected]] = []
    unpaired: list[Listed] = []
    for item in sorted(money, key=lambda i: (i.at, i.processor_transaction_id, i.reference)):
        match = by_key.pop((item.processor_transaction_id, item.reference), None)
        if match is None:
            unpaired.append(item)
        else:
            pairs.append((item, match))
    by_id: dict[str, list[Expected]] = {}
    for expectation in by_key.values():
        by_id.setdefault(expectation.processor_transaction_id, []).append(expectation)
    still_unpaired = []
    for item in unpaired:
        # By id alone only in the listing's own day: a margin's run does not read the ledger around it, so the
        # entry it may pair with by its key (an authorization's, say) can be out of sight.
        by_id_alone = item.outcome != "DECLINED" and in_day(item.at)
        others = by_id.get(item.processor_transaction_id) if by_id_alone else None
        if others:
            match = others.pop(0)
            del by_key[match.key]
            pairs.append((item, match))
        else:
            still_unpaired.append(item)

    for item, expectation in pairs:
        if not in_day(item.at):
            continue  # the processor's day of it: its report
        category, detail = _judged(item, expectation)
        outcome.counts[category] += 1
        if category != MATCHED:
            outcome.findings.append(_finding(category, detail, item, expectation))
        elif item.kind not in _SETTLING_KINDS or expectation.status not in _SETTLED_FACT_STATUSES:
            pass
        elif not item.settled:
            outcome.not_yet_settled += 1
        else:
            outcome.counts[SETTLED] += 1
            outcome.settled.append(
                SettledCharge(
                    expectation.transaction_id,
                    item.processor_transaction_id,
                    str(expectation.amount),
                    expectation.currency,
                )
            )
    for item in still_unpaired:
        if not in_day(item.at):
            continue
        if item.outcome == "DECLINED":
            outcome.counts[DECLINED_AT_PROCESSOR] += 1
            continue
        outcome.counts[MISSING_IN_LEDGER] += 1
        if item.outcome != "APPROVED":
            detail = "the processor lists a transaction whose outcome its listing does not say; the ledger holds none"
        elif item.kind == UNKNOWN_KIND:
            detail = "the processor lists an approved transaction of a type reconciliation does not know"
        else:
            detail = "the processor lists an approval the ledger does not hold"
        outcome.findings.append(_finding(MISSING_IN_LEDGER, detail, item, None))
    elsewhere: dict[dt.date, dict[tuple[str, str], Listed] | None] = {}
    for expectation in by_key.values():
        if not in_day(expectation.written):
            continue  # the day its entry was written judges it
        detail = (
            "the ledger holds an approval the processor does not list"
            if expectation.processor_transaction_id
            else "the ledger holds an approval without the processor's transaction id"
        )
        if not in_day(expectation.at):  # written after the fact: its request left another day
            sent_on = expectation.at.astimezone(dt.UTC).date()
            if sent_on not in elsewhere:
                stored = stored_listing(sent_on) if stored_listing is not None else None
                elsewhere[sent_on] = (
                    None if stored is None else {(i.processor_transaction_id, i.reference): i for i in stored}
                )
            there = elsewhere[sent_on]
            held = None if there is None else there.get(expectation.key)
            if held is not None:
                category, found = _judged(held, expectation)
                if category != MATCHED:  # matched: that day's, as listed
                    outcome.counts[category] += 1
                    outcome.findings.append(
                        _finding(category, f"{found} (in the stored listing of {sent_on})", held, expectation)
                    )
                continue
            where = (
                "that day's stored listing does not hold it either"
                if there is not None
                else "no listing of that day is stored"
            )
            detail += f": written after the fact, its request left on {sent_on}, and {where}"
        outcome.counts[MISSING_AT_PROCESSOR] += 1
        outcome.findings.append(_finding(MISSING_AT_PROCESSOR, detail, None, expectation))
    # One PAYMENT-SETTLED fact per payment: its first settled charge of the day.
    first: dict[str, SettledCharge] = {}
    for charge in outcome.settled:
        first.setdefault(charge.transaction_id, charge)
    outcome.settled = list(first.values())
    outcome.findings.sort(key=lambda f: (MISMATCHES.index(f.category), f.at, f.processor_transaction_id))
    return outcome


def _judged(item: Listed, expectation: Expected) -> tuple[Category, str]:
    if item.outcome == "DECLINED":
        return STATUS_MISMATCH, "the ledger holds an approval; the processor lists it declined"
    if item.outcome != "APPROVED":
        return STATUS_MISMATCH, "the ledger holds an approval; the processor's listing does not say it was approved"
    if item.kind == UNKNOWN_KIND:
        return STATUS_MISMATCH, "the processor lists it as a transaction type reconciliation does not know"
    if item.kind not in expectation.listable_kinds:
        if item.kind == "void" and expectation.charge:
            return STATUS_MISMATCH, "the processor lists it voided; the ledger does not say it was voided"
        if expectation.charge and expectation.voided:
            return STATUS_MISMATCH, "the ledger says it was voided; the processor lists it standing"
        wanted = " or ".join(sorted(expectation.kinds))
        return STATUS_MISMATCH, f"the ledger holds a {wanted}; the processor lists a {item.kind}"
    if item.reference != expectation.reference:
        return STATUS_MISMATCH, "the processor lists it under another merchant reference"
    if item.currency != expectation.currency:
        return AMOUNT_MISMATCH, "the processor lists it in another currency"
    if item.amount is None or expectation.amount is None or item.amount != expectation.amount:
        return AMOUNT_MISMATCH, "the processor lists it for another amount"
    return MATCHED, ""


def _finding(category: Category, detail: str, item: Listed | None, expectation: Expected | None) -> Finding:
    if item is not None:
        processor_transaction_id, reference, currency, moment = (
            item.processor_transaction_id,
            item.reference,
            item.currency,
            item.at,
        )
    else:
        assert expectation is not None
        processor_transaction_id, reference, currency, moment = (
            expectation.processor_transaction_id,
            expectation.reference,
            expectation.currency,
            expectation.at,
        )
    return Finding(
        category=category,
        transaction_id=expectation.transaction_id if expectation else None,
        operation_id=expectation.operation_id if expectation else None,
        processor_transaction_id=processor_transaction_id,
        reference=reference,
        ledger_status=expectation.status if expectation else None,
        ledger_amount=None if expectation is None or expectation.amount is None else str(expectation.amount),
        processor_kind=item.kind if item else None,
        processor_amount=None if item is None or item.amount is None else str(item.amount),
        currency=currency,
        at=format_time(moment),
        detail=detail,
    )


def findings_to_look_at_again(outcome: Reconciliation) -> list[str]:
    """The payments whose whole ledger may change a finding: each finding's TransactionID, and for an
    approval missing in the ledger the reference it is listed under (a TransactionID, if it names a payment)."""
    seen: dict[str, None] = {}
    for finding in outcome.findings:
        for candidate in (finding.transaction_id, finding.reference if finding.transaction_id is None else None):
            if candidate:
                seen.setdefault(candidate, None)
    return list(seen)


def parse_time(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def format_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _decimal(text: str | None) -> Decimal | None:
    try:
        return None if text is None else Decimal(text)
    except InvalidOperation:
        return None
