"""The invariants a payment system must keep under any fault. Each returns the offending TransactionIDs.

They read only what the system itself recorded (Observations), so each can be shown to catch a
violation by forging that record.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from local.card_scan import audit_payload_findings, card_data_in
from local.chaos.observations import Observations, execution_output
from local.sandbox.terminal import follow_ons_of
from local.verify_ledger import verify_payment
from payments import events as ledger_events
from payments import operations
from payments.chain import typed

TERMINAL = {"PAYMENT-SUCCESS", "PAYMENT-AUTHORIZED", "PAYMENT-DECLINED", "PAYMENT-FAILED"}
PROGRESS = ["PAYMENT-INITIATED", "PAYMENT-PENDING"]
Entry = dict[str, Any]


def payment_entries(entries: list[Entry]) -> list[Entry]:
    """The payment's own entries (PAYMENT-*), without those of its operations."""
    return [e for e in entries if str(e["Status"]).startswith("PAYMENT-")]


def payment_terminal(o: Observations, transaction_id: str) -> Entry:
    """The payment's own terminal entry ({} while there is none): operations' entries may follow it."""
    own = payment_entries(o.ledger.get(transaction_id, []))
    return own[-1] if own and own[-1]["Status"] in TERMINAL else {}


def balances(o: Observations, transaction_id: str) -> operations.Balances:
    history = [
        operations.HistoryEntry(e["Status"], str(e["Amount"]), e.get("OperationID"), e.get("ReasonCode"))
        for e in o.ledger.get(transaction_id, [])
    ]
    return operations.balances_of(history)


@dataclass(frozen=True)
class Verdict:
    name: str
    checked: int
    offenders: list[str]

    @property
    def holds(self) -> bool:
        return not self.offenders


def every_execution_ends(o: Observations) -> list[str]:
    """1. No execution is left RUNNING: every payment and every operation reached an end the caller can see."""
    running = [t for t in o.transaction_ids if o.executions[t]["status"] == "RUNNING"]
    return running + [op for op, e in o.operation_executions.items() if e["status"] == "RUNNING"]


def ledger_is_append_only_and_complete(o: Observations) -> list[str]:
    """2. Each payment's entries are numbered 1..n with no gap; its own entries run progress first and
    exactly one terminal entry, after which only its operations' entries follow (each operation's in
    order: local.verify_ledger); the ledger's stream shows no entry ever modified or removed; and the
    hash chains of its ledger entries, its audit records and each operation's audit trail verify, an
    offender naming each entry they show changed, removed or inserted."""
    offenders = []
    for t in o.transaction_ids:
        entries = o.ledger.get(t, [])
        if not entries:
            continue  # rejected before the ledger (invalid input): nothing to check here
        numbers = [int(e["EntryNumber"]) for e in entries]
        own = payment_entries(entries)
        statuses = [e["Status"] for e in own]
        well_numbered = numbers == list(range(1, len(entries) + 1))
        one_terminal_last = [s in TERMINAL for s in statuses].count(True) == 1 and statuses[-1] in TERMINAL
        progress_first = statuses[:-1] == PROGRESS[: len(statuses) - 1] and entries[: len(own)] == own
        if not (well_numbered and one_terminal_last and progress_first):
            offenders.append(t)
    # The stream is the whole table's; the run answers for its own payments (a shared test stack
    # also holds payments other tests tampered with on purpose).
    ours = set(o.transaction_ids)
    rewritten = {
        r["dynamodb"]["Keys"]["TransactionID"]["S"] for r in o.ledger_changes if r["eventName"] in ("MODIFY", "REMOVE")
    } & ours
    broken = _broken_chains(o)
    return sorted(broken.get(t, t) for t in set(offenders) | rewritten | set(broken))


def _broken_chains(o: Observations) -> dict[str, str]:
    """Per payment whose chains show tampering: "<TransactionID> (<table> <entry> <what>; ...)"."""
    broken = {}
    for t in o.transaction_ids:
        ledger = [typed(e) for e in o.ledger.get(t, [])]
        audit = [typed(r) for r in o.audit.get(t, [])]
        findings = verify_payment(t, ledger, audit)
        for operation_id in {e["OperationID"] for e in o.ledger.get(t, []) if e.get("OperationID")}:
            trail = f"{t}/{operation_id}"
            findings += verify_payment(trail, [], [typed(r) for r in o.audit.get(trail, [])])
        if findings:
            broken[t] = f"{t} ({'; '.join(f'{f.table} {f.where} {f.kind}' for f in findings)})"
    return broken


def charges_belong_to_successful_payments(o: Observations) -> list[str]:
    """3. Every approved charge in the processor's own record (not voided; not an authorization) belongs
    to a payment whose ledger ends PAYMENT-SUCCESS with that ProcessorTransactionID, and no
    TransactionID is charged twice. (A captured authorization is checked by 8 and 9.)"""
    charged = [c for c in o.charges if c.get("approved_charge") and c.get("ssl_transaction_type") != "AUTHONLY"]
    per_payment = Counter(c["ssl_merchant_txn_id"] for c in charged)
    offenders = {t for t, n in per_payment.items() if n > 1}
    for charge in charged:
        t = charge["ssl_merchant_txn_id"]
        last = payment_terminal(o, t)
        if last.get("Status") != "PAYMENT-SUCCESS" or last.get("ProcessorTransactionID") != charge["ssl_txn_id"]:
            offenders.add(t)
    return sorted(offenders)


def successes_were_charged_once(o: Observations) -> list[str]:
    """4. Every PAYMENT-SUCCESS has exactly one approved sale at the processor, the one its ledger entry
    names (voided later or not: the void is judged by 9 and 12)."""
    charged: dict[str, list[str]] = defaultdict(list)
    for charge in o.charges:
        sold = charge.get("approved_charge") or (charge.get("voided") and charge.get("ssl_result") == "0")
        if sold and charge.get("ssl_transaction_type") != "AUTHONLY":
            charged[charge["ssl_merchant_txn_id"]].append(charge["ssl_txn_id"])
    offenders = []
    for t in o.transaction_ids:
        last = payment_terminal(o, t)
        if last.get("Status") == "PAYMENT-SUCCESS" and charged[t] != [last.get("ProcessorTransactionID")]:
            offenders.append(t)
    return offenders


def authorizations_were_taken_once(o: Observations) -> list[str]:
    """8. Every PAYMENT-AUTHORIZED holds exactly one approved authorization at the processor, the one
    its ledger entry names, for its amount and currency, unless its ledger shows it voided; and no
    payment that ended otherwise holds one."""
    held: dict[str, list[tuple[str, Decimal, str]]] = defaultdict(list)
    for transaction in o.charges:
        approved = (
            transaction.get("ssl_result") == "0" and not transaction.get("voided") and not transaction.get("deleted")
        )
        if transaction.get("ssl_transaction_type") == "AUTHONLY" and approved:
            amount = Decimal(str(transaction.get("ssl_amount", "0")))
            currency = str(transaction.get("ssl_transaction_currency", ""))
            held[transaction["ssl_merchant_txn_id"]].append((transaction["ssl_txn_id"], amount, currency))
    offenders = []
    for t in o.transaction_ids:
        last = payment_terminal(o, t)
        expected = []
        if last.get("Status") == "PAYMENT-AUTHORIZED" and not balances(o, t).voided:
            expected = [(last.get("ProcessorTransactionID"), Decimal(str(last.get("Amount"))), last.get("Currency"))]
        if held[t] != expected:
            offenders.append(t)
    return offenders


def processor_calls_are_audited(o: Observations) -> list[str]:
    """5. Every processor call that returned to the adapter (the sandbox answered it) has its own
    audit record, in the payment's trail or the capture's, void's or refund's: of each call type, at
    least as many records as the sandbox answered calls (one record cannot stand for two calls)."""
    offenders = []
    trails = [(t, o.audit.get(t, [])) for t in o.transaction_ids]
    trails += [(op, o.operation_trail(op)) for op in o.operations]
    for reference, records in trails:
        answered = Counter(o.answered_calls.get(reference, []))
        audited = Counter(r["Operation"] for r in records)
        if any(audited[operation] < n for operation, n in answered.items()):
            offenders.append(reference)
    return offenders


def output_matches_ledger(o: Observations) -> list[str]:
    """6. The Status the caller gets (execution output, or a PaymentFailed cause) equals the ledger's
    terminal Status. An execution that ended after the ledger was written must give the caller that
    Status, failed or not; one that ended before it (invalid input, Tokenize failed) must give none."""
    offenders = []
    for t in o.transaction_ids:
        execution = o.executions[t]
        if execution["status"] == "RUNNING":
            continue  # not ended: invariant 1 says so
        response = execution_output(execution)
        terminal = payment_terminal(o, t)
        if response is None and not o.ledger.get(t):
            continue
        if response is None or not terminal or response.get("Status") != terminal["Status"]:
            offenders.append(t)
    return offenders


def no_card_data_at_rest(o: Observations) -> list[str]:
    """7. No PAN and no CVV in any table item, in what the audit trail's encrypted payloads hold (the
    query keeps a masked PAN only), in any history event (ExecutionStarted included), or in any log
    line; and once a payment has ended, nothing of its card is left in the vault, not even ciphertext."""
    offenders = set()
    for item in o.table_items:
        if card_data_in(json.dumps(item, default=str)):
            offenders.add(str(item.get("TransactionID")))
    for payload in o.audit_payloads:
        if audit_payload_findings(payload):
            offenders.add(str(payload.get("TransactionID")))
    for t, events in o.history.items():
        if any(card_data_in(json.dumps(e, default=str)) for e in events):
            offenders.add(t)
    for t in o.transaction_ids:
        if o.executions[t]["status"] != "RUNNING" and t in o.vaulted:
            offenders.add(t)
    if card_data_in(o.logs):
        offenders.add("(logs)")
    return sorted(offenders)


def money_at_the_processor_equals_the_ledger(o: Observations) -> list[str]:
    """9. For every payment, what the processor holds as charged (a sale, or the captured part of an
    authorization; nothing once voided) minus what it returned equals the ledger's captured minus
    refunded (nothing once VOID-SUCCESS)."""
    offenders = []
    for t in o.transaction_ids:
        held = balances(o, t)
        ledger_net = Decimal(0) if held.voided else held.captured - held.refunded
        if _net_at_processor(o, t) != ledger_net:
            offenders.append(t)
    return offenders


def _originals(o: Observations, transaction_id: str) -> list[dict[str, Any]]:
    return [
        c
        for c in o.charges
        if c.get("ssl_merchant_txn_id") == transaction_id
        and c.get("ssl_transaction_type") in ("SALE", "AUTHONLY")
        and c.get("ssl_result") == "0"
    ]


def _charged(original: dict[str, Any]) -> Decimal:
    if original.get("voided") or original.get("deleted"):
        return Decimal(0)
    if original["ssl_transaction_type"] == "SALE":
        return Decimal(str(original["ssl_amount"]))
    return Decimal(str(original.get("completed_amount") or 0))


def _returned(o: Observations, original: dict[str, Any]) -> Decimal:
    returns = [
        c
        for c in o.charges
        if c.get("ssl_transaction_type") == "RETURN"
        and c.get("original_txn_id") == original["ssl_txn_id"]
        and c.get("ssl_result") == "0"
        and not c.get("voided")
    ]
    return sum((Decimal(str(c["ssl_amount"])) for c in returns), Decimal(0))


def _net_at_processor(o: Observations, transaction_id: str) -> Decimal:
    return sum(
        (_charged(c) - _returned(o, c) for c in _originals(o, transaction_id)),
        Decimal(0),
    )


def operations_reach_the_processor_once(o: Observations) -> list[str]:
    """10. No operation reaches the processor twice: the processor holds at most one capture, void or
    refund under each OperationID, and exactly one for each operation whose ledger ends <KIND>-SUCCESS
    (none for one that ended otherwise)."""
    offenders = []
    for operation_id in o.operations:
        held = len(follow_ons_of(o.charges, operation_id))
        entries = o.operation_entries(operation_id)
        succeeded = bool(entries) and str(entries[-1]["Status"]).endswith("-SUCCESS")
        if held > 1 or (held == 1) != succeeded:
            offenders.append(operation_id)
    return offenders


def refunds_never_exceed_the_charge(o: Observations) -> list[str]:
    """11. Nothing is refunded beyond what was charged: at the processor, per charge, and in the ledger."""
    offenders = []
    for t in o.transaction_ids:
        held = balances(o, t)
        over_at_processor = any(
            _returned(o, c) > (Decimal(str(c.get("completed_amount") or c["ssl_amount"]))) for c in _originals(o, t)
        )
        if over_at_processor or held.refunded > held.captured:
            offenders.append(t)
    return offenders


def voided_never_settles(o: Observations) -> list[str]:
    """12. A voided sale or capture, or a released authorization, never settles at the processor."""
    ours = set(o.transaction_ids)
    return sorted(
        {
            str(c.get("ssl_merchant_txn_id"))
            for c in o.charges
            if (c.get("voided") or c.get("deleted"))
            and c.get("ssl_trans_status") == "STL"
            and c.get("ssl_merchant_txn_id") in ours
        }
    )


def operation_output_matches_ledger(o: Observations) -> list[str]:
    """13. Every operation's terminal Status (the execution's output, or its OperationFailed cause) equals
    its last ledger entry; an operation refused without a ledger entry (no payment to record it in,
    malformed) gives the caller no Status."""
    offenders = []
    for operation_id, execution in o.operation_executions.items():
        if execution["status"] == "RUNNING":
            continue  # invariant 1
        response = execution_output(execution)
        entries = o.operation_entries(operation_id)
        if response is None and not entries:
            continue
        if response is None or not entries or response.get("Status") != entries[-1]["Status"]:
            offenders.append(operation_id)
    return offenders


def every_terminal_entry_is_one_event(o: Observations) -> list[str]:
    """14. Every terminal ledger entry, a payment's or an operation's, is exactly one event on the payments
    bus: its EventID (<TransactionID>#<EntryNumber>), its detail type, its Status; and every event of
    these payments is one such entry's (a progress entry, or none, has no event). An offender names
    each entry or event at fault."""
    ours = set(o.transaction_ids)
    published: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in o.events:
        detail = event.get("detail") or {}
        event_id = str(detail.get("EventID", ""))
        if str(detail.get("TransactionID") or event_id.rpartition("#")[0]) in ours:
            published[event_id].append(event)
    faults: dict[str, list[str]] = defaultdict(list)
    for t in o.transaction_ids:
        for entry in o.ledger.get(t, []):
            event_id = f"{t}#{int(entry['EntryNumber'])}"
            detail_type = ledger_events.detail_type_of(str(entry["Status"]))
            found = published.pop(event_id, [])
            where = f"#{int(entry['EntryNumber'])} {entry['Status']}"
            if detail_type is None and found:
                faults[t].append(f"{where}: {len(found)} event(s) of a progress entry")
            elif detail_type is not None and len(found) != 1:
                faults[t].append(f"{where}: {len(found) or 'no'} events")
            elif found and (found[0].get("detail-type"), found[0]["detail"].get("Status")) != (
                detail_type,
                entry["Status"],
            ):
                said = f"{found[0].get('detail-type')} {found[0]['detail'].get('Status')}"
                faults[t].append(f"{where}: its event says {said}")
    for event_id, found in published.items():
        faults[event_id.rpartition("#")[0]].append(f"{event_id}: {len(found)} event(s) of no entry")
    return sorted(f"{t} ({'; '.join(what)})" for t, what in faults.items())


INVARIANTS: list[tuple[str, Callable[[Observations], list[str]]]] = [
    ("1 every execution ends", every_execution_ends),
    ("2 ledger 1..n, one terminal, never rewritten, chains verify", ledger_is_append_only_and_complete),
    ("3 every charge belongs to a PAYMENT-SUCCESS", charges_belong_to_successful_payments),
    ("4 every PAYMENT-SUCCESS charged exactly once", successes_were_charged_once),
    ("5 every answered processor call audited", processor_calls_are_audited),
    ("6 output Status equals ledger Status", output_matches_ledger),
    ("7 no PAN or CVV at rest or in logs", no_card_data_at_rest),
    ("8 every PAYMENT-AUTHORIZED authorized exactly once", authorizations_were_taken_once),
    ("9 captured minus refunded at Converge equals the ledger's", money_at_the_processor_equals_the_ledger),
    ("10 no operation reaches Converge twice", operations_reach_the_processor_once),
    ("11 refunds never exceed the charge", refunds_never_exceed_the_charge),
    ("12 a voided transaction never settles", voided_never_settles),
    ("13 operation output Status equals ledger Status", operation_output_matches_ledger),
    ("14 every terminal entry has exactly one event and every event one entry", every_terminal_entry_is_one_event),
]
_PER_OPERATION = {"10 no operation reaches Converge twice", "13 operation output Status equals ledger Status"}


def check_all(o: Observations) -> list[Verdict]:
    return [
        Verdict(name, len(o.operations) if name in _PER_OPERATION else len(o.transaction_ids), check(o))
        for name, check in INVARIANTS
    ]
