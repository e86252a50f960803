"""Runs a chaos plan on a fresh local stack, waits for every execution, checks the invariants."""

from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from local import operations
from local.chaos.invariants import Verdict, check_all
from local.chaos.observations import Observations, execution_output, observe
from local.chaos.plan import PlannedPayment, plan
from local.faults import FaultSchedule
from local.stack import LocalStack
from upstream.client import IntakeUnavailable, PaymentRefused


@dataclass
class ChaosReport:
    seed: int
    payments: int
    seconds: float
    outcomes: Counter[str]
    planned_faults: Counter[str]
    injected_faults: Counter[str]
    verdicts: list[Verdict]
    observations: Observations
    payment_outcomes: dict[str, str] = field(default_factory=dict)  # per TransactionID, as in `outcomes`
    expected: dict[str, str] = field(default_factory=dict)  # the Status each card and amount call for

    @property
    def holds(self) -> bool:
        return all(v.holds for v in self.verdicts)

    @property
    def statuses(self) -> dict[str, str | None]:
        """The Status each payment's ledger ends with (None: no ledger entry)."""
        ledger = self.observations.ledger
        return {t: ledger[t][-1]["Status"] if ledger.get(t) else None for t in self.observations.transaction_ids}

    @property
    def approved_charges(self) -> Counter[str]:
        """Approved charges per TransactionID of this run, from the sandbox's own record."""
        ours = set(self.observations.transaction_ids)
        return Counter(
            c["ssl_merchant_txn_id"]
            for c in self.observations.charges
            if c.get("approved_charge") and c["ssl_merchant_txn_id"] in ours
        )

    @property
    def not_as_expected(self) -> list[str]:
        """The payments whose ledger does not end with the Status their card and amount call for."""
        return [t for t, status in self.statuses.items() if status != self.expected.get(t)]


def run(seed: int, payments: int, concurrency: int = 8, stack: LocalStack | None = None) -> ChaosReport:
    if stack is not None:
        return _run(stack, seed, payments, concurrency)
    # 2 s: on two busy cores a 300 ms "latency" fault must not turn into a client timeout.
    with LocalStack(converge_read_timeout=2.0) as fresh:
        return _run(fresh, seed, payments, concurrency)


def _run(stack: LocalStack, seed: int, payments: int, concurrency: int) -> ChaosReport:
    planned = plan(seed, payments, stack.converge_read_timeout)
    schedule = FaultSchedule()
    for payment in planned:
        for fault in payment.scheduled:
            schedule.add(payment.transaction_id, fault)
        for rule in payment.processor_rules:
            stack.sandbox.faults.add(rule)
    fired_before = len(stack.sandbox.faults.fired)
    stack.apply_fault_schedule(schedule)
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(lambda p: _pay(stack, p), planned))
    finally:
        stack.apply_fault_schedule(None)
        stack.sandbox.faults.clear()
    seconds = time.monotonic() - started
    observations = observe(stack, [p.transaction_id for p in planned])
    outcomes = {t: _outcome(observations, t) for t in observations.transaction_ids}
    injected = Counter(schedule.injected)
    injected.update(f"converge:{fault}" for fault, _ in stack.sandbox.faults.fired[fired_before:])
    return ChaosReport(
        seed=seed,
        payments=payments,
        seconds=seconds,
        outcomes=Counter(outcomes.values()),
        planned_faults=Counter(kind for p in planned for kind in p.faults),
        injected_faults=injected,
        verdicts=check_all(observations),
        observations=observations,
        payment_outcomes=outcomes,
        expected={p.transaction_id: p.expected for p in planned},
    )


def _pay(stack: LocalStack, payment: PlannedPayment) -> None:
    assert stack.info is not None
    try:
        arn = operations.start_payment(stack.info, payment.request)
    except (PaymentRefused, IntakeUnavailable):
        return  # no execution: the report says so, and an invariant says if anything was left behind
    operations.wait_for_execution(stack.info, arn, timeout_seconds=300)


def _outcome(o: Observations, transaction_id: str) -> str:
    execution = o.executions[transaction_id]
    response = execution_output(execution)
    if response is not None:
        return f"{execution['status']} {response.get('Status')}"
    return f"{execution['status']} {execution.get('error', '')}".strip()


def format_report(report: ChaosReport) -> str:
    lines = [
        f"Chaos run: seed {report.seed}, {report.payments} payments, {report.seconds:.1f} s",
        "",
        "Payments by outcome",
    ]
    lines += [f"  {count:5d}  {outcome}" for outcome, count in sorted(report.outcomes.items())]
    successes = sum(1 for status in report.statuses.values() if status == "PAYMENT-SUCCESS")
    authorized = sum(1 for status in report.statuses.values() if status == "PAYMENT-AUTHORIZED")
    as_expected = report.payments - len(report.not_as_expected)
    lines += [
        "",
        "Money",
        f"  {successes:5d}  payments ended PAYMENT-SUCCESS",
        f"  {authorized:5d}  payments ended PAYMENT-AUTHORIZED (held, not charged)",
        f"  {sum(report.approved_charges.values()):5d}  approved charges in the processor's record",
        f"  {as_expected:5d}  payments ended as their card and amount call for"
        + (f"; not: {', '.join(report.not_as_expected[:5])}" if report.not_as_expected else ""),
    ]
    lines += ["", "Faults: payments planned to meet each kind, and faulted calls"]
    kinds = sorted(set(report.planned_faults) | set(report.injected_faults))
    lines += [f"  {report.planned_faults[k]:5d} payments  {report.injected_faults[k]:5d} calls  {k}" for k in kinds]
    lines += ["", "Invariants"]
    for verdict in report.verdicts:
        status = "PASS" if verdict.holds else "FAIL"
        first = f"  first: {', '.join(verdict.offenders[:5])}" if verdict.offenders else ""
        lines.append(
            f"  {status}  {verdict.name}: {verdict.checked - len(verdict.offenders)}/{verdict.checked} hold{first}"
        )
    lines.append("")
    lines.append("All invariants hold." if report.holds else "SOME INVARIANTS FAILED.")
    return "\n".join(lines)


def report_json(report: ChaosReport) -> str:
    return json.dumps(
        {
            "seed": report.seed,
            "payments": report.payments,
            "outcomes": report.outcomes,
            "approved_charges": sum(report.approved_charges.values()),
            "not_as_expected": report.not_as_expected,
            "faults_injected": report.injected_faults,
            "invariants": {v.name: {"holds": v.holds, "offenders": v.offenders} for v in report.verdicts},
        },
        indent=2,
    )
