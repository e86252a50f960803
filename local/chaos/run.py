"""Runs a chaos plan on a fresh local stack, waits for every execution, resolves what was left unknown
(status sync), reconciles the run's days, checks the invariants."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from local import operations
from local.chaos.invariants import Verdict, check_all, final_status, payment_entries
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
from local.status_sync import SETTLED_OUTCOMES, run_status_sync
from upstream.client import IntakeUnavailable, PaymentRefused

# Status sync runs until nothing of the run is left (its output says More, or something of the run
# FAILED, was LEFT_FOR_AN_OPERATOR, STILL_RUNNING or NOT_YET): at most this many runs, a second apart, or
# NOT_YET_WAIT when something of the run was NOT_YET (a request sent moments ago may still land).
MAX_SYNC_RUNS = 8
NOT_YET_WAIT = 5.0
SYNC_REQUEST = {"PendingDeadlineSeconds": 0}  # every execution has ended: nothing pending can still move


@dataclass
class SyncSummary:
    """What the status sync runs after the payments and operations did to the run's references."""

    runs: int = 0
    seconds: float = 0.0
    found: list[int] = field(default_factory=list)  # per run: how many unresolved it found (the whole stack's)
    # The last result per (TransactionID, OperationID or None) of the run's, as status sync reported it
    results: dict[tuple[str, str | None], dict[str, Any]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # runs that did not end SUCCEEDED

    @property
    def resolutions(self) -> Counter[str]:
        return Counter(
            f"{r.get('Resolution')} -> {r.get('Status')}" for r in self.results.values() if r["Outcome"] == "RESOLVED"
        )

    @property
    def left(self) -> list[str]:
        return [
            f"{t}{'/' + op if op else ''}: {r['Outcome']} {r.get('Detail') or r.get('Error') or ''}".rstrip()
            for (t, op), r in self.results.items()
            if r["Outcome"] not in SETTLED_OUTCOMES
        ]


@dataclass
class ReconciliationSummary:
    days: list[str] = field(default_factory=list)
    seconds: float = 0.0
    available: bool = False
    why_not: str = ""  # why no reconciliation was run (the hook found none), or why it failed


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
    # Endings left unknown on purpose: per TransactionID the resolution status sync must settle it by
    expected_resolutions: dict[str, str | None] = field(default_factory=dict)
    planned_unknown: Counter[str] = field(default_factory=Counter)  # "payment unknown:charged", ...
    sync: SyncSummary = field(default_factory=SyncSummary)
    reconciliation: ReconciliationSummary = field(default_factory=ReconciliationSummary)

    @property
    def holds(self) -> bool:
        return all(v.holds for v in self.verdicts)

    @property
    def statuses(self) -> dict[str, str | None]:
        """The Status each payment's own entries end with, settlement facts aside (None: no terminal entry):
        PAYMENT-REVERSED once status sync reversed a charge; its operations' entries may follow."""
        return {t: final_status(self.observations, t) for t in self.observations.transaction_ids}

    @property
    def resolutions(self) -> dict[str, str | None]:
        """The Resolution of each payment's last own entry (settlement facts aside): None unless status sync
        resolved it."""
        found = {}
        for t in self.observations.transaction_ids:
            own = [e for e in payment_entries(self.observations.ledger.get(t, [])) if e["Status"] != "PAYMENT-SETTLED"]
            found[t] = own[-1].get("Resolution") if own else None
        return found

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
            elif (
                status != operation.expected
                or (operation.reason is not None and entries[-1].get("ReasonCode") != operation.reason)
                or entries[-1].get("Resolution") != operation.resolution
            ):
                offenders.append(operation.operation_id)
        offenders += [t for t, seen in races.items() if sorted(seen) != ["REFUND-DECLINED", "REFUND-SUCCESS"]]
        return offenders

    @property
    def not_as_expected(self) -> list[str]:
        """The payments whose ledger does not end with the Status their card and amount call for (an ending
        left unknown on purpose: what status sync must leave it at, by the planned resolution; no other
        payment may need one)."""
        resolutions = self.resolutions
        return [
            t
            for t, status in self.statuses.items()
            if status != self.expected.get(t) or resolutions[t] != self.expected_resolutions.get(t)
        ]


def run(seed: int, payments: int, concurrency: int = 32, stack: LocalStack | None = None) -> ChaosReport:
    if stack is not None:
        return _run(stack, seed, payments, concurrency, shared=True)
    # 2 s: on two busy cores a 300 ms "latency" fault must not turn into a client timeout.
    with LocalStack(converge_read_timeout=2.0) as fresh:
        return _run(fresh, seed, payments, concurrency)


def _run(stack: LocalStack, seed: int, payments: int, concurrency: int, shared: bool = False) -> ChaosReport:
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
    started, first_day = time.monotonic(), dt.datetime.now(dt.UTC).date()
    subscriber = _Subscriber(stack)
    try:
        with subscriber, ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(lambda p: _pay(stack, p), planned))
            # Captures and voids while the batch is open; the day's settlement; then refunds.
            list(pool.map(lambda steps: _operate(stack, steps), operation_plan.before_settlement.values()))
            stack.sandbox.settle()
            list(pool.map(lambda steps: _operate(stack, steps), operation_plan.after_settlement.values()))
    finally:
        # Every fault ends here (a rule of an unknown ending lasts until removed): status sync must find
        # the processor answering.
        stack.apply_fault_schedule(None)
        stack.sandbox.faults.clear()
    injected = Counter(schedule.injected)
    # A Converge fault of an ending left unknown counts as that kind; any other as its own.
    unknown_refs = {p.transaction_id: p.unknown for p in planned if p.unknown}
    unknown_refs |= {op.operation_id: op.unknown for op in operation_plan.operations if op.unknown}
    injected.update(
        unknown_refs.get(reference) or f"converge:{fault}"
        for fault, reference in stack.sandbox.faults.fired[fired_before:]
    )
    transaction_ids = [p.transaction_id for p in planned]
    sync = _sync(stack, set(transaction_ids))
    reconciliation, reports = _reconcile(stack, first_day)
    seconds = time.monotonic() - started
    operation_ids = {op.operation_id: op.transaction_id for op in operation_plan.operations}
    observations = observe(stack, transaction_ids, operation_ids)
    observations.shared_stack = shared
    if reconciliation.available:
        observations.reconciliation = reports if not reconciliation.why_not else None
        observations.reconciliation_error = reconciliation.why_not
    outcomes = {t: _outcome(observations, t) for t in observations.transaction_ids}
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
        expected_resolutions={p.transaction_id: p.resolution for p in planned},
        planned_unknown=Counter(
            [f"payment {p.unknown}" for p in planned if p.unknown]
            + [f"operation {op.unknown}" for op in operation_plan.operations if op.unknown]
        ),
        sync=sync,
        reconciliation=reconciliation,
    )


class _Subscriber:
    """Takes the events off the stack's queue as they come, as a subscriber does (LocalStack keeps them for
    the checks): moto counts a queue's messages for every message it adds, so a queue nobody reads makes
    every PutEvents slower than the last."""

    def __init__(self, stack: LocalStack) -> None:
        self._stack = stack
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._take, name="chaos-subscriber", daemon=True)

    def __enter__(self) -> _Subscriber:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._thread.join()

    def _take(self) -> None:
        while not self._stopping.wait(1.0):
            self._stack.received_events()


def _sync(stack: LocalStack, ours: set[str]) -> SyncSummary:
    """Status sync, as an operator would run it once every execution has ended, until nothing of the run
    is left to it (bounded: MAX_SYNC_RUNS)."""
    assert stack.info is not None
    summary = SyncSummary()
    started = time.monotonic()
    for _ in range(MAX_SYNC_RUNS):
        summary.runs += 1
        try:
            output = run_status_sync(stack.info, dict(SYNC_REQUEST))
        except RuntimeError as failed:  # the run itself failed: the next one finds the same
            summary.errors.append(str(failed))
            time.sleep(1)
            continue
        summary.found.append(int(output.get("Found", 0)))
        mine = [r for r in output.get("Results", []) if r.get("TransactionID") in ours]
        for result in mine:
            summary.results[(result["TransactionID"], result.get("OperationID"))] = result
        if not output.get("More") and all(r.get("Outcome") in SETTLED_OUTCOMES for r in mine):
            break
        time.sleep(NOT_YET_WAIT if any(r.get("Outcome") == "NOT_YET" for r in mine) else 1)
    summary.seconds = time.monotonic() - started
    return summary


def _reconcile(stack: LocalStack, first_day: dt.date) -> tuple[ReconciliationSummary, list[dict[str, Any]]]:
    """Reconciliation of every day the run spans (UTC), after status sync, as `python -m local reconcile
    --date` runs it.

    HOOK: it runs only if the stack has a reconciliation workflow and local.reconciliation offers
    run_reconciliation(info, {"Date": ...}); else the summary says why not, and invariant 17 is skipped.
    """
    assert stack.info is not None
    today = dt.datetime.now(dt.UTC).date()
    days = [first_day + dt.timedelta(days=n) for n in range((today - first_day).days + 1)]
    summary = ReconciliationSummary(days=[day.isoformat() for day in days])
    try:
        from local import reconciliation as local_reconciliation

        run_reconciliation = local_reconciliation.run_reconciliation
    except (ImportError, AttributeError) as missing:
        summary.why_not = f"no local reconciliation ({type(missing).__name__}: {missing})"
        return summary, []
    if not getattr(stack.info, "reconciliation_state_machine_arn", ""):
        summary.why_not = "the stack has no reconciliation workflow"
        return summary, []
    summary.available = True
    reports: list[dict[str, Any]] = []
    started = time.monotonic()
    for day in summary.days:
        try:
            output = run_reconciliation(stack.info, {"Date": day})
        except Exception as failed:  # any failure of the run is the invariant's finding
            summary.why_not = f"{day}: {type(failed).__name__}: {failed}"
            break
        try:
            reports.append(local_reconciliation.stored_report(stack.info, output))  # every finding, not the first
        except Exception:  # the output holds the counts and the first findings
            reports.append(output)
    summary.seconds = time.monotonic() - started
    return summary, reports


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
    lines += _unknown_lines(report)
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
    lines += [
        "",
        "Invariants (checked: payments; operations for 10 and 13; both for 15; transactions listed for 17)",
    ]
    for verdict in report.verdicts:
        if verdict.skipped and verdict.holds:
            lines.append(f"  SKIP  {verdict.name}: {verdict.skipped}")
            continue
        status = "PASS" if verdict.holds else "FAIL"
        first = f"  first: {', '.join(verdict.offenders[:5])}" if verdict.offenders else ""
        held = max(verdict.checked - len(verdict.offenders), 0)
        lines.append(f"  {status}  {verdict.name}: {held}/{verdict.checked} hold{first}")
    lines.append("")
    lines.append("All invariants hold." if report.holds else "SOME INVARIANTS FAILED.")
    return "\n".join(lines)


def _unknown_lines(report: ChaosReport) -> list[str]:
    sync, reconciliation = report.sync, report.reconciliation
    unresolved = next((v for v in report.verdicts if v.name.startswith("15 ")), None)
    mismatches = next((v for v in report.verdicts if v.name.startswith("17 ")), None)
    lines = ["", "Endings left unknown on purpose (resolved by status sync after the run)"]
    lines += [f"  {count:5d}  {kind}" for kind, count in sorted(report.planned_unknown.items())]
    found = ", ".join(str(n) for n in sync.found) or "-"
    lines.append(f"  status sync: {sync.runs} run(s), {sync.seconds:.1f} s, found {found} (the whole stack's)")
    lines += [f"  {count:5d}  resolved {what}" for what, count in sorted(sync.resolutions.items())]
    lines += [f"         LEFT {what}" for what in sync.left[:10]]
    lines += [f"         sync run failed: {error}" for error in sync.errors[:3]]
    if unresolved is not None:
        lines.append(f"  {len(unresolved.offenders):5d}  payments or operations unresolved or pending after sync")
    if reconciliation.available and mismatches is not None:
        lines.append(
            f"  {len(mismatches.offenders):5d}  reconciliation mismatches ({', '.join(reconciliation.days)}, "
            f"{reconciliation.seconds:.1f} s)"
        )
    else:
        lines.append(f"      -  reconciliation not run: {reconciliation.why_not}")
    return lines


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
            "planned_unknown": report.planned_unknown,
            "status_sync": {"runs": report.sync.runs, "resolved": report.sync.resolutions, "left": report.sync.left},
            "reconciliation": {"days": report.reconciliation.days, "ran": report.reconciliation.available},
            "invariants": {
                v.name: {"holds": v.holds, "offenders": v.offenders, "skipped": v.skipped} for v in report.verdicts
            },
        },
        indent=2,
    )
