"""The invariants a payment system must keep under any fault. Each returns the offending TransactionIDs.

They read only what the system itself recorded (Observations), so each can be shown to catch a
violation by forging that record.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from local.card_scan import audit_payload_findings, card_data_in
from local.chaos.observations import Observations, execution_output
from local.money import ledger_net
from local.sandbox.terminal import approved_charges, follow_ons_of, net_charged, returned_of
from local.status_sync import unresolved_of
from local.verify_ledger import verify_payment
from payments import events as ledger_events
from payments import ledger, operations, status_sync, topology
from payments.chain import typed
from payments.status_resolution import reversal_reference

TERMINAL = {"PAYMENT-SUCCESS", "PAYMENT-AUTHORIZED", "PAYMENT-DECLINED", "PAYMENT-FAILED"}
PROGRESS = ["PAYMENT-INITIATED", "PAYMENT-PENDING"]
REVERSING, REVERSED, SETTLED = ledger.REVERSING, ledger.REVERSED, ledger.SETTLED
Entry = dict[str, Any]
_EPOCH = "1970-01-01T00:00:00Z"


def payment_entries(entries: list[Entry]) -> list[Entry]:
    """The payment's own entries (PAYMENT-*), without those of its operations."""
    return [e for e in entries if str(e["Status"]).startswith("PAYMENT-")]


def payment_terminal(o: Observations, transaction_id: str) -> Entry:
    """The payment's terminal entry ({} while there is none): the last of its own entries with a terminal
    Status, the one status sync wrote once it resolved the payment (a stuck payment completed, an unknown
    outcome recorded NOT_CHARGED). A reversal (REVERSING, REVERSED) or a settlement (SETTLED) is a fact
    after it, and operations' entries may follow it."""
    own = [e for e in payment_entries(o.ledger.get(transaction_id, [])) if e["Status"] in TERMINAL]
    return own[-1] if own else {}


def execution_terminal(o: Observations, transaction_id: str) -> Entry:
    """The terminal entry the payment's own execution wrote ({} if it wrote none: its terminal ledger
    steps failed for good); status sync's entries carry a Resolution."""
    own = [
        e
        for e in payment_entries(o.ledger.get(transaction_id, []))
        if e["Status"] in TERMINAL and not e.get("Resolution")
    ]
    return own[0] if own else {}


def final_status(o: Observations, transaction_id: str) -> str | None:
    """The Status the payment's own entries end with, settlement facts aside: PAYMENT-REVERSED for a charge
    reversed by status sync, else its terminal Status (None while there is none)."""
    own = [e for e in payment_entries(o.ledger.get(transaction_id, [])) if e["Status"] != SETTLED]
    return str(own[-1]["Status"]) if own and (own[-1]["Status"] in TERMINAL or own[-1]["Status"] == REVERSED) else None


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
    skipped: str | None = None  # why it could not be judged (then it holds vacuously)

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
        executed = _executed(own)
        well_numbered = numbers == list(range(1, len(entries) + 1))
        if not (well_numbered and entries[: len(executed)] == executed and _well_formed(own)):
            offenders.append(t)
    # The stream is the whole table's; the run answers for its own payments (a shared test stack
    # also holds payments other tests tampered with on purpose).
    ours = set(o.transaction_ids)
    rewritten = {
        r["dynamodb"]["Keys"]["TransactionID"]["S"] for r in o.ledger_changes if r["eventName"] in ("MODIFY", "REMOVE")
    } & ours
    broken = _broken_chains(o)
    return sorted(broken.get(t, t) for t in set(offenders) | rewritten | set(broken))


def _executed(own: list[Entry]) -> list[Entry]:
    """The payment's own entries its execution wrote: those before the first one status sync or
    reconciliation wrote (each of those carries a Resolution)."""
    first = next((i for i, e in enumerate(own) if e.get("Resolution")), len(own))
    return own[:first]


# What status sync may append to a payment's own entries, by how its execution left them.
_AFTER_NO_TERMINAL = (  # stuck before a terminal entry (its terminal ledger steps failed for good)
    [("PAYMENT-SUCCESS", "COMPLETE")],
    [("PAYMENT-AUTHORIZED", "COMPLETE")],
    [("PAYMENT-DECLINED", "COMPLETE")],
    [("PAYMENT-FAILED", "FAIL_NOT_CHARGED")],
)
_AFTER_UNKNOWN = (  # ended PAYMENT-FAILED with its outcome unknown
    [],
    [("PAYMENT-FAILED", "RECORD_NOT_CHARGED")],
    [(REVERSING, "REVERSE")],
    [(REVERSING, "REVERSE"), (REVERSED, "REVERSE")],
)


def _well_formed(own: list[Entry]) -> bool:
    """The payment's own entries: progress first and at most one terminal entry, written by its execution;
    then only status sync's, each with its Resolution: a stuck payment's terminal entry (COMPLETE, or a
    FAILED NOT_CHARGED by FAIL_NOT_CHARGED) where the execution wrote none, or after an unknown outcome a
    FAILED NOT_CHARGED (RECORD_NOT_CHARGED) or a reversal (REVERSING, then REVERSED). Reconciliation's
    settlement fact (SETTLED, with its Resolution) only after an approval (SUCCESS or AUTHORIZED)."""
    approved = next((i for i, e in enumerate(own) if e["Status"] in ledger.APPROVED_STATUSES), len(own))
    settled = [i for i, e in enumerate(own) if e["Status"] == SETTLED]
    if any(i < approved or not own[i].get("Resolution") for i in settled):
        return False
    own = [e for e in own if e["Status"] != SETTLED]
    executed = _executed(own)
    statuses = [e["Status"] for e in executed]
    terminals = [s for s in statuses if s in TERMINAL]
    ended = bool(statuses) and statuses[-1] in TERMINAL
    progress = statuses[:-1] if ended else statuses
    if not statuses or len(terminals) != int(ended) or progress != PROGRESS[: len(progress)]:
        return False
    resolutions = own[len(executed) :]  # every one carries a Resolution, by _executed's cut
    shape = [(e["Status"], e.get("Resolution")) for e in resolutions]
    not_charged = all(e.get("ReasonCode") == ledger.NOT_CHARGED for e in resolutions if e["Status"] == "PAYMENT-FAILED")
    if not ended:
        return shape in _AFTER_NO_TERMINAL and not_charged
    last = executed[-1]
    if last["Status"] == "PAYMENT-FAILED" and last.get("ReasonCode") in status_sync.UNKNOWN_PAYMENT_REASONS:
        return shape in _AFTER_UNKNOWN and not_charged
    return not shape


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
    to a payment whose ledger ends PAYMENT-SUCCESS with that ProcessorTransactionID, or is one whose
    reversal by return the ledger records (judged in full by 16), and no TransactionID is charged
    twice. (A captured authorization is checked by 8, 9 and 16.)"""
    charged = [c for c in o.charges if c.get("approved_charge") and c.get("ssl_transaction_type") != "AUTHONLY"]
    per_payment = Counter(c["ssl_merchant_txn_id"] for c in charged)
    offenders = {t for t, n in per_payment.items() if n > 1}
    for charge in charged:
        t = charge["ssl_merchant_txn_id"]
        last = payment_terminal(o, t)
        named = last.get("Status") == "PAYMENT-SUCCESS" and last.get("ProcessorTransactionID") == charge["ssl_txn_id"]
        if not named and _reversal_fault(o, t, charge) is not None:
            offenders.add(t)
    return sorted(offenders)


def _reversal_fault(o: Observations, transaction_id: str, charge: dict[str, Any]) -> str | None:
    """None when the ledger records this charge's reversal and the processor holds it: a PAYMENT-REVERSING
    naming the charge, then its PAYMENT-REVERSED, and under reversal_reference(TransactionID) exactly one
    approved VOID or RETURN of the charge (or the charge deleted by it), the one REVERSED names (a return
    for the whole amount). Else what is missing."""
    own = payment_entries(o.ledger.get(transaction_id, []))
    reference = reversal_reference(transaction_id)
    reversing = [e for e in own if e["Status"] == REVERSING and e.get("ProcessorTransactionID") == charge["ssl_txn_id"]]
    if not reversing:
        return "no PAYMENT-REVERSING names it"
    done = [e for e in own if e["Status"] == REVERSED and e.get("OperationID") == reference]
    if len(done) != 1 or reversing[0].get("OperationID") != reference:
        return f"{len(done) or 'no'} PAYMENT-REVERSED under its reference"
    held = [r for r in follow_ons_of(o.charges, reference) if r.get("ssl_result") == "0"]
    if len(held) != 1:
        return f"{len(held) or 'no'} reversals at the processor under {reference}"
    [reversal] = held
    kind = reversal.get("ssl_transaction_type")
    of_it = (kind in ("VOID", "RETURN") and reversal.get("original_txn_id") == charge["ssl_txn_id"]) or (
        reversal.get("ssl_txn_id") == charge["ssl_txn_id"] and reversal.get("deleted")
    )
    in_full = kind != "RETURN" or Decimal(str(reversal.get("ssl_amount"))) == Decimal(str(charge.get("ssl_amount")))
    if not (of_it and in_full) or reversal.get("ssl_txn_id") != done[0].get("ProcessorTransactionID"):
        return f"the processor's {kind} {reversal.get('ssl_txn_id')} is not the reversal the ledger records"
    return None


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
    audit record, in the payment's trail or the capture's, void's or refund's (status sync's lookups
    too, and a reversal's calls, made under its own reference, in the payment's trail): of each call
    type, at least as many records as the sandbox answered calls (one record cannot stand for two)."""
    offenders = []
    trails = [(t, o.audit.get(t, []), (t, reversal_reference(t))) for t in o.transaction_ids]
    trails += [(op, o.operation_trail(op), (op,)) for op in o.operations]
    for reference, records, asked_under in trails:
        answered = Counter(call for name in asked_under for call in o.answered_calls.get(name, []))
        audited = Counter(r["Operation"] for r in records)
        if any(audited[operation] < n for operation, n in answered.items()):
            offenders.append(reference)
    return offenders


def output_matches_ledger(o: Observations) -> list[str]:
    """6. The Status the caller gets (execution output, or a PaymentFailed cause) equals the terminal
    Status the execution wrote to the ledger. An execution that ended after the ledger was written must
    give the caller that Status, failed or not; one that ended before it (invalid input, Tokenize failed)
    must give none; so must one whose terminal ledger steps failed for good, and then only status sync
    may have ended the payment (its terminal entry carries a Resolution)."""
    offenders = []
    for t in o.transaction_ids:
        execution = o.executions[t]
        if execution["status"] == "RUNNING":
            continue  # not ended: invariant 1 says so
        response = execution_output(execution)
        terminal = execution_terminal(o, t)
        if response is None and not o.ledger.get(t):
            continue
        if not terminal:
            if response is not None or not payment_terminal(o, t).get("Resolution"):
                offenders.append(t)
        elif response is None or response.get("Status") != terminal["Status"]:
            offenders.append(t)
    return offenders


def no_card_data_at_rest(o: Observations) -> list[str]:
    """7. No PAN and no CVV in any table item, in what the audit trail's encrypted payloads hold (the
    query keeps a masked PAN only), in any history event (ExecutionStarted included), or in any log
    line; and once a payment has ended, nothing of its card is left in the vault, not even ciphertext,
    but where its execution's terminal ledger steps failed for good (they are what removes the card), and
    then only until the item's TTL (CardVault's backstop)."""
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
        if o.executions[t]["status"] != "RUNNING" and t in o.vaulted and not _left_to_the_ttl(o, t):
            offenders.add(t)
    if card_data_in(o.logs):
        offenders.add("(logs)")
    return sorted(offenders)


def _left_to_the_ttl(o: Observations, transaction_id: str) -> bool:
    """The payment's execution wrote no terminal entry (its terminal steps, which remove the card, failed
    for good), and the vault item expires within the vault's TTL of when it was observed."""
    if execution_terminal(o, transaction_id) or not o.observed_at:
        return False
    expires = o.vault_expires_at.get(transaction_id, 0)
    observed = _time(o.observed_at).timestamp()
    return 0 < expires <= observed + topology.CARD_VAULT_TTL_SECONDS


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def money_at_the_processor_equals_the_ledger(o: Observations) -> list[str]:
    """9. For every payment, what the processor holds as charged (a sale, or the captured part of an
    authorization; nothing once voided) minus what it returned equals the ledger's captured minus
    refunded (nothing once VOID-SUCCESS; an operation's RECORD_SUCCESS or COMPLETE counts as its
    SUCCESS), plus what a reversal holds until it is done: a charge status sync is reversing
    (PAYMENT-REVERSING) is held, a reversed one (PAYMENT-REVERSED) nets zero."""
    return [t for t in o.transaction_ids if net_charged(o.charges, t) != ledger_net(o.ledger.get(t, []))]


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
            returned_of(o.charges, c) > Decimal(str(c.get("completed_amount") or c["ssl_amount"]))
            for c in approved_charges(o.charges, t)
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
    the last ledger entry its execution wrote (status sync's resolutions, with their Resolution, may
    follow); an operation refused without a ledger entry (no payment to record it in, malformed) gives the
    caller no Status, nor does one whose terminal ledger steps failed for good, which then only status
    sync may have ended."""
    offenders = []
    for operation_id, execution in o.operation_executions.items():
        if execution["status"] == "RUNNING":
            continue  # invariant 1
        response = execution_output(execution)
        entries = o.operation_entries(operation_id)
        if response is None and not entries:
            continue
        executed = [e for e in entries if not e.get("Resolution")]
        ended = bool(executed) and operations.parse_status(str(executed[-1]["Status"]))[1] in _ENDED  # type: ignore[index]
        if not ended:
            if response is not None or not entries or not entries[-1].get("Resolution"):
                offenders.append(operation_id)
        elif response is None or response.get("Status") != executed[-1]["Status"]:
            offenders.append(operation_id)
    return offenders


_ENDED = (operations.SUCCESS, operations.DECLINED, operations.FAILED)


def every_terminal_entry_is_one_event(o: Observations) -> list[str]:
    """14. Every ledger entry that is an event (payments.events.event_of: every terminal entry, a payment's
    or an operation's, and every entry status sync or reconciliation wrote but a REVERSING) is exactly
    one event on the payments bus: its EventID (<TransactionID>#<EntryNumber>), its detail type, its
    Status; and every event of these payments is one such entry's (a progress entry, or none, has no
    event). An offender names each entry or event at fault."""
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
            expected = ledger_events.event_of({"TransactionID": t, "CreatedAt": _EPOCH, **entry})
            detail_type = None if expected is None else expected["DetailType"]
            found = published.pop(event_id, [])
            where = f"#{int(entry['EntryNumber'])} {entry['Status']}"
            if detail_type is None and found:
                what = "a progress entry" if entry["Status"] != REVERSING else "an entry that is no event"
                faults[t].append(f"{where}: {len(found)} event(s) of {what}")
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


def nothing_left_unresolved(o: Observations) -> list[str]:
    """15. After status sync, no payment and no operation is left unresolved (payments.status_sync.unresolved_in
    over its ledger entries, with a pending deadline of 0: an outcome unknown, or an execution's entries
    stopped short of a terminal one), and none is left pending: every payment's own entries reach a
    terminal entry (and a reversal begun is done), every operation's last entry has ended. An offender
    names the payment, or <TransactionID>/<OperationID>, and why."""
    now = _time(o.observed_at) if o.observed_at else dt.datetime.now(dt.UTC)
    offenders: set[str] = set()
    for t in o.transaction_ids:
        entries = o.ledger.get(t, [])
        if not entries:
            continue
        for found in unresolved_of(t, entries, now=now, pending_deadline=dt.timedelta(0)):
            where = t if found.operation_id is None else f"{t}/{found.operation_id}"
            offenders.add(f"{where} ({found.why})")
        own = [e for e in payment_entries(entries) if e["Status"] != SETTLED]
        if not payment_terminal(o, t):
            offenders.add(f"{t} (PENDING: {own[-1]['Status'] if own else 'no entry of its own'})")
        elif own[-1]["Status"] == REVERSING:
            offenders.add(f"{t} (PENDING: {REVERSING})")
        last_of: dict[str, Entry] = {}
        for entry in entries:
            if entry.get("OperationID") and operations.parse_status(str(entry["Status"])) is not None:
                last_of[str(entry["OperationID"])] = entry
        for operation_id, last in last_of.items():
            if operations.parse_status(str(last["Status"]))[1] not in _ENDED:  # type: ignore[index]
                offenders.add(f"{t}/{operation_id} (PENDING: {last['Status']})")
    return sorted(offenders)


def approvals_belong_to_the_ledger(o: Observations) -> list[str]:
    """16. Every approval the processor gave a payment of the run (a sale or an authorization, voided or
    released since or not) belongs to the ledger: to the payment's PAYMENT-SUCCESS or PAYMENT-AUTHORIZED
    that names it (and a completed authorization to a CAPTURE-SUCCESS of the OperationID that completed
    it), or to a PAYMENT-REVERSING that names it whose reversal is recorded (PAYMENT-REVERSED) and is at
    the processor: exactly one approved VOID or RETURN (a RETURN in full) of it, or its delete, under
    reversal_reference(TransactionID), the one REVERSED names. And every PAYMENT-REVERSING names such an
    approval. An offender names the payment, the processor's id and what is wrong."""
    ours = set(o.transaction_ids)
    offenders: list[str] = []
    approvals: dict[str, set[str]] = defaultdict(set)
    for c in o.charges:
        t = str(c.get("ssl_merchant_txn_id"))
        if t not in ours or c.get("ssl_transaction_type") not in ("SALE", "AUTHONLY") or c.get("ssl_result") != "0":
            continue
        approvals[t].add(str(c["ssl_txn_id"]))
        terminal = payment_terminal(o, t)
        if (
            terminal.get("Status") in ledger.APPROVED_STATUSES
            and terminal.get("ProcessorTransactionID") == c["ssl_txn_id"]
        ):
            completion = c.get("completion_merchant_txn_id")
            if c.get("completed_amount") is not None and not any(
                e["Status"] == "CAPTURE-SUCCESS" and e.get("OperationID") == completion for e in o.ledger.get(t, [])
            ):
                offenders.append(f"{t} ({c['ssl_txn_id']}: completed by {completion or '-'}, no CAPTURE-SUCCESS of it)")
            continue
        fault = _reversal_fault(o, t, c)
        if fault is not None:
            offenders.append(f"{t} ({c['ssl_txn_id']}: {fault})")
    for t in o.transaction_ids:
        for entry in payment_entries(o.ledger.get(t, [])):
            if entry["Status"] == REVERSING and entry.get("ProcessorTransactionID") not in approvals[t]:
                offenders.append(f"{t} (#{int(entry['EntryNumber'])} {REVERSING} names no approval at the processor)")
    return sorted(set(offenders))


def reconciliation_finds_no_mismatch(o: Observations) -> list[str]:
    """17. Reconciliation of the days the run spans, run after status sync, lists every window in full and
    reports no mismatch. On a stack of its own (`make chaos`) every finding counts, whatever it names: a
    charge sent under a wrong reference names none of the run's ids, and is exactly what must be caught. On
    a shared stack (a test session's) a finding naming none of the run's payments, operations or reversals,
    or naming nothing at all, is another test's, and left alone. Not applicable while the stack has no
    reconciliation."""
    if o.reconciliation is None:
        return [f"(reconciliation failed: {o.reconciliation_error})"] if o.reconciliation_error else []
    ours = set(o.transaction_ids) | set(o.operations) | {reversal_reference(t) for t in o.transaction_ids}
    offenders = []
    for report in o.reconciliation:
        if not report.get("Complete", True):
            offenders.append(f"({report.get('Date')}: listing incomplete)")
        for finding in report.get("Findings", []):
            names = {finding.get("TransactionID"), finding.get("OperationID"), finding.get("Reference")} - {None, ""}
            if o.shared_stack and not names & ours:
                continue
            who = finding.get("TransactionID") or finding.get("Reference") or "-"
            what = f"{finding.get('Category')}: {finding.get('Detail') or ''}".rstrip(": ")
            offenders.append(f"{who} ({report.get('Date')} {what})")
    return offenders


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
    ("15 after status sync nothing is unresolved or pending", nothing_left_unresolved),
    ("16 every approval at Converge is a ledger success or a recorded reversal", approvals_belong_to_the_ledger),
    ("17 reconciliation reports no mismatch", reconciliation_finds_no_mismatch),
]
RECONCILIATION = "17 reconciliation reports no mismatch"


def _checked(name: str, o: Observations) -> int:
    """How many things the invariant judged: operations (10, 13), payments and operations (15), the
    transactions reconciliation listed (17), else payments."""
    number = int(name.split()[0])
    if number in (10, 13):
        return len(o.operations)
    if number == 15:
        return len(o.transaction_ids) + len(o.operations)
    if number == 17:
        return sum(int(report.get("Listed", 0)) for report in o.reconciliation or [])
    return len(o.transaction_ids)


def check_all(o: Observations) -> list[Verdict]:
    verdicts = []
    for name, check in INVARIANTS:
        skipped = None
        if name == RECONCILIATION and o.reconciliation is None and not o.reconciliation_error:
            skipped = "no reconciliation on this stack (hook: local/chaos/run.py _reconcile)"
        verdicts.append(Verdict(name, _checked(name, o), check(o), skipped))
    return verdicts
