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

from local.card_scan import audit_payload_findings, card_data_in
from local.chaos.observations import Observations, execution_output
from local.verify_ledger import verify_payment
from payments.chain import typed

TERMINAL = {"PAYMENT-SUCCESS", "PAYMENT-AUTHORIZED", "PAYMENT-DECLINED", "PAYMENT-FAILED"}
PROGRESS = ["PAYMENT-INITIATED", "PAYMENT-PENDING"]


@dataclass(frozen=True)
class Verdict:
    name: str
    checked: int
    offenders: list[str]

    @property
    def holds(self) -> bool:
        return not self.offenders


def every_execution_ends(o: Observations) -> list[str]:
    """1. No execution is left RUNNING: every payment reached an end the caller can see."""
    return [t for t in o.transaction_ids if o.executions[t]["status"] == "RUNNING"]


def ledger_is_append_only_and_complete(o: Observations) -> list[str]:
    """2. Each payment's entries are numbered 1..n with no gap, progress first, exactly one terminal
    entry and it is the last; the ledger's stream shows no entry ever modified or removed; and the
    hash chains of its ledger entries and audit records verify (local.verify_ledger), an offender
    naming each entry they show changed, removed or inserted."""
    offenders = []
    for t in o.transaction_ids:
        entries = o.ledger.get(t, [])
        if not entries:
            continue  # rejected before the ledger (invalid input): nothing to check here
        numbers = [int(e["EntryNumber"]) for e in entries]
        statuses = [e["Status"] for e in entries]
        well_numbered = numbers == list(range(1, len(entries) + 1))
        one_terminal_last = [s in TERMINAL for s in statuses].count(True) == 1 and statuses[-1] in TERMINAL
        progress_first = statuses[:-1] == PROGRESS[: len(statuses) - 1]
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
        if findings:
            broken[t] = f"{t} ({'; '.join(f'{f.table} {f.where} {f.kind}' for f in findings)})"
    return broken


def charges_belong_to_successful_payments(o: Observations) -> list[str]:
    """3. Every approved charge in the processor's own record belongs to a payment whose ledger ends
    PAYMENT-SUCCESS with that ProcessorTransactionID, and no TransactionID is charged twice."""
    charged = [c for c in o.charges if c.get("approved_charge")]
    per_payment = Counter(c["ssl_merchant_txn_id"] for c in charged)
    offenders = {t for t, n in per_payment.items() if n > 1}
    for charge in charged:
        t = charge["ssl_merchant_txn_id"]
        entries = o.ledger.get(t, [])
        last = entries[-1] if entries else {}
        if last.get("Status") != "PAYMENT-SUCCESS" or last.get("ProcessorTransactionID") != charge["ssl_txn_id"]:
            offenders.add(t)
    return sorted(offenders)


def successes_were_charged_once(o: Observations) -> list[str]:
    """4. Every PAYMENT-SUCCESS has exactly one approved charge at the processor, the one its ledger
    entry names."""
    charged: dict[str, list[str]] = defaultdict(list)
    for charge in o.charges:
        if charge.get("approved_charge"):
            charged[charge["ssl_merchant_txn_id"]].append(charge["ssl_txn_id"])
    offenders = []
    for t in o.transaction_ids:
        last = (o.ledger.get(t) or [{}])[-1]
        if last.get("Status") == "PAYMENT-SUCCESS" and charged[t] != [last.get("ProcessorTransactionID")]:
            offenders.append(t)
    return offenders


def authorizations_were_taken_once(o: Observations) -> list[str]:
    """8. Every PAYMENT-AUTHORIZED holds exactly one approved authorization at the processor, the one
    its ledger entry names, for its amount and currency; and no payment that ended otherwise holds one."""
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
        last = (o.ledger.get(t) or [{}])[-1]
        expected = []
        if last.get("Status") == "PAYMENT-AUTHORIZED":
            expected = [(last.get("ProcessorTransactionID"), Decimal(str(last.get("Amount"))), last.get("Currency"))]
        if held[t] != expected:
            offenders.append(t)
    return offenders


def processor_calls_are_audited(o: Observations) -> list[str]:
    """5. Every processor call that returned to the adapter (the sandbox answered it) has its own
    audit record: of each operation, at least as many records as the sandbox answered calls (one
    record cannot stand for two calls)."""
    offenders = []
    for t in o.transaction_ids:
        answered = Counter(o.answered_calls.get(t, []))
        audited = Counter(r["Operation"] for r in o.audit.get(t, []))
        if any(audited[operation] < n for operation, n in answered.items()):
            offenders.append(t)
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
        entries = o.ledger.get(t, [])
        if response is None and not entries:
            continue
        if response is None or not entries or response.get("Status") != entries[-1]["Status"]:
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


INVARIANTS: list[tuple[str, Callable[[Observations], list[str]]]] = [
    ("1 every execution ends", every_execution_ends),
    ("2 ledger 1..n, one terminal, never rewritten, chains verify", ledger_is_append_only_and_complete),
    ("3 every charge belongs to a PAYMENT-SUCCESS", charges_belong_to_successful_payments),
    ("4 every PAYMENT-SUCCESS charged exactly once", successes_were_charged_once),
    ("5 every answered processor call audited", processor_calls_are_audited),
    ("6 output Status equals ledger Status", output_matches_ledger),
    ("7 no PAN or CVV at rest or in logs", no_card_data_at_rest),
    ("8 every PAYMENT-AUTHORIZED authorized exactly once", authorizations_were_taken_once),
]


def check_all(o: Observations) -> list[Verdict]:
    return [Verdict(name, len(o.transaction_ids), check(o)) for name, check in INVARIANTS]
