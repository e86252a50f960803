"""Runs a chaos plan on a fresh local stack, waits for every execution, checks the invariants."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from local import operations
from local.chaos.invariants import Verdict, check_all, payment_terminal
from local.chaos.observations import Observations, execution_output, observe
from local.chaos.plan import (
    RACE,
    OperationSteps,
    PlannedOperation,
    PlannedPayment,
    plan,
    plan_operations,
)
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
    operation_outcomes: Counter[str] = field(default_factory=Counter)
    planned_operations: list[PlannedOperation] = field(default_factory=list)

    @property
    def holds(self) -> bool:
        return all(v.holds for v in self.verdicts)

    @property
    def statuses(self) -> dict[str, str | None]:
        """The Status each payment's own entries end with (None: no ledger entry); its operations' entries
        may follow."""
        return {
            t: payment_terminal(self.observations, t).get("Status") or None for t in self.observations.transaction_ids
        }

    @property
    def approved_charges(self) -> Counter[str]:
        """Approved sales per TransactionID of this run (voided later or not), from the sandbox's own record."""
        ours = set(self.observations.transaction_ids)
        return Counter(
            c["ssl_merchant_txn_id"]
            for c in self.observations.charges
            if c.get("ssl_transaction_type") == "SALE"
            and c.get("ssl_result") == "0"
            and c["ssl_merchant_txn_id"] in ours
        )

    @property
    def operations_not_as_planned(self) -> list[str]:
        """Operations whose ledger does not end as the payment's history calls for; of each race of
        two refunds that do not both fit, exactly one must pass."""
        offenders = []
        races: dict[str, list[str]] = {}
        for operation in self.planned_operations:
            entries = self.observations.operation_entries(operation.operation_id)
            status = entries[-1]["Status"] if entries else None
            if operation.expected == RACE:
                races.setdefault(operation.transaction_id, []).append(str(status))
            elif status != operation.expected or (
                operation.reason is not None and entries[-1].get("ReasonCode") != operation.reason
            ):
                offenders.append(operation.operation_id)
        offenders += [t for t, seen in races.items() if sorted(seen) != ["REFUND-DECLINED", "REFUND-SUCCESS"]]
        return offenders

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
    operation_plan = plan_operations(seed, planned, stack.converge_read_timeout)
    schedule = FaultSchedule()
    for payment in [*planned, *operation_plan.operations]:
        key = payment.operation_id if isinstance(payment, PlannedOperation) else payment.transaction_id
        for fault in payment.scheduled:
            schedule.add(key, fault)
        for rule in payment.processor_rules:
            stack.sandbox.faults.add(rule)
    fired_before = len(stack.sandbox.faults.fired)
    stack.apply_fault_schedule(schedule)
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(lambda p: _pay(stack, p), planned))
            # Captures and voids while the batch is open; the day's settlement; then refunds.
            list(pool.map(lambda steps: _operate(stack, steps), operation_plan.before_settlement.values()))
            stack.sandbox.settle()
            list(pool.map(lambda steps: _operate(stack, steps), operation_plan.after_settlement.values()))
    finally:
        stack.apply_fault_schedule(None)
        stack.sandbox.faults.clear()
    seconds = time.monotonic() - started
    operation_ids = {op.operation_id: op.transaction_id for op in operation_plan.operations}
    observations = observe(stack, [p.transaction_id for p in planned], operation_ids)
    outcomes = {t: _outcome(observations, t) for t in observations.transaction_ids}
    injected = Counter(schedule.injected)
    injected.update(f"converge:{fault}" for fault, _ in stack.sandbox.faults.fired[fired_before:])
    return ChaosReport(
        seed=seed,
        payments=payments,
        seconds=seconds,
        outcomes=Counter(outcomes.values()),
        planned_faults=Counter(kind for p in [*planned, *operation_plan.operations] for kind in p.faults),
        injected_faults=injected,
        verdicts=check_all(observations),
        observations=observations,
        payment_outcomes=outcomes,
        expected={p.transaction_id: p.expected for p in planned},
        operation_outcomes=Counter(_operation_outcome(observations, op) for op in operation_ids),
        planned_operations=operation_plan.operations,
    )


def _pay(stack: LocalStack, payment: PlannedPayment) -> None:
    assert stack.info is not None
    try:
        arn = operations.start_payment(stack.info, payment.request)
    except (PaymentRefused, IntakeUnavailable):
        return  # no execution: the report says so, and an invariant says if anything was left behind
    operations.wait_for_execution(stack.info, arn, timeout_seconds=300)


def _operate(stack: LocalStack, steps: OperationSteps) -> None:
    """One payment's operations of one phase, one after another; a race's refunds started at once."""
    for step in steps:
        together = step if isinstance(step, list) else [step]
        barrier = threading.Barrier(len(together))
        threads = [threading.Thread(target=_run_operation, args=(stack, op, barrier)) for op in together]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def _run_operation(stack: LocalStack, operation: PlannedOperation, barrier: threading.Barrier) -> None:
    assert stack.info is not None
    barrier.wait()
    arn = operations.start_operation(stack.info, operation.request)
    operations.wait_for_execution(stack.info, arn, timeout_seconds=300)


def _operation_outcome(o: Observations, operation_id: str) -> str:
    execution = o.operation_executions[operation_id]
    response = execution_output(execution)
    if response is not None:
        return f"{execution['status']} {response.get('Status')}"
    return f"{execution['status']} {execution.get('error', '')}".strip()


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
        f"  {sum(report.approved_charges.values()):5d}  approved sales in the processor's record (voided later or not)",
        f"  {as_expected:5d}  payments ended as their card and amount call for"
        + (f"; not: {', '.join(report.not_as_expected[:5])}" if report.not_as_expected else ""),
    ]
    lines += ["", "Operations by outcome"]
    lines += [f"  {count:5d}  {outcome}" for outcome, count in sorted(report.operation_outcomes.items())]
    late = report.operations_not_as_planned
    lines.append(
        f"  {len(report.planned_operations) - len(late):5d}  operations ended as the payment's history calls for"
        + (f"; not: {', '.join(late[:5])}" if late else "")
    )
    lines += ["", "Faults: payments (and operations) planned to meet each kind, and faulted calls"]
    kinds = sorted(set(report.planned_faults) | set(report.injected_faults))
    lines += [f"  {report.planned_faults[k]:5d} payments  {report.injected_faults[k]:5d} calls  {k}" for k in kinds]
    lines += ["", "Invariants (checked: payments, or operations for 10 and 13)"]
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
            "operations": report.operation_outcomes,
            "operations_not_as_planned": report.operations_not_as_planned,
            "faults_injected": report.injected_faults,
            "invariants": {v.name: {"holds": v.holds, "offenders": v.offenders} for v in report.verdicts},
        },
        indent=2,
    )
