"""The fault plan of a chaos run, drawn from a seed: which payment meets which fault, where."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from local.faults import ScheduledFault
from local.payment_requests import APPROVING, DECLINING, card_request
from local.sandbox import FAULT_KINDS, FaultRule
from local.sandbox.terminal import AMOUNT_TRIGGERS
from payments import topology

PROCESSOR_FAULTS = FAULT_KINDS
# (kind, target, count). Three consecutive throttles outlast the SDK's own three attempts, so
# they reach the state machine's Retry as a typed error; one lost response is retried by the SDK
# into a conditional write that finds its own entry.
AWS_FAULTS = (
    ("dynamodb:throttle", "dynamodb:PutItem", "throttle", 3),
    ("dynamodb:internal_error", "dynamodb:PutItem", "internal_error", 3),
    ("dynamodb:lost_response", "dynamodb:PutItem", "lost_response", 1),
    ("kms:throttle", "kms:GenerateDataKey", "throttle", 3),
    ("kms:throttle_decrypt", "kms:Decrypt", "throttle", 3),
)
SIDE_EFFECT_STEPS = ("LedgerInitiated", "LedgerPending", "CallProcessor", "LedgerSuccess", "Audit")
LAMBDA_FAULTS = (
    ("lambda:service_error", "service_error"),
    ("lambda:crash_after", "crash_after"),
)
ALL_KINDS = [f"converge:{f}" for f in PROCESSOR_FAULTS] + [a[0] for a in AWS_FAULTS] + [k for k, _ in LAMBDA_FAULTS]
# Cents at which the sandbox's issuer declines an approving card.
DECLINING_CENTS = frozenset(cents for cents, (result, *_) in AMOUNT_TRIGGERS.items() if result != "0")


@dataclass
class PlannedPayment:
    transaction_id: str
    request: dict[str, Any]
    # The Status the card and amount call for, whatever the faults: no fault may change it. A planned
    # unknown ending: the Status its payment's own entries end with once status sync resolved it.
    expected: str
    faults: list[str] = field(default_factory=list)  # kinds, for the report
    scheduled: list[ScheduledFault] = field(default_factory=list)
    processor_rules: list[FaultRule] = field(default_factory=list)
    unknown: str | None = None  # one of UNKNOWN_KINDS: the ending is left for status sync on purpose
    resolution: str | None = None  # what status sync must resolve it by (payments.status_sync.Resolution)


def plan(seed: int, payments: int, read_timeout: float = 1.0) -> list[PlannedPayment]:
    """The same seed always gives the same payments and the same faults."""
    rng = random.Random(seed)
    planned = []
    for index in range(payments):
        transaction_id = f"chaos-{seed}-{index:04d}"
        # The first payments meet every kind once as a sale, then once as an authorization; the rest
        # draw 0, 1 or 2 faults, and one in five of them authorizes only.
        covering = index < 2 * len(ALL_KINDS)
        manual = index >= len(ALL_KINDS) if covering else None
        request = _request(rng, transaction_id, manual)
        payment = PlannedPayment(transaction_id, request, _expected(request))
        kinds = (
            [ALL_KINDS[index % len(ALL_KINDS)]] if covering else rng.sample(ALL_KINDS, k=rng.choice((0, 0, 1, 1, 2)))
        )
        for kind in kinds:
            _add_fault(rng, payment, kind, read_timeout)
        planned.append(payment)
    plan_unknown_endings(seed, planned)
    return planned


def _request(rng: random.Random, transaction_id: str, manual: bool | None) -> dict[str, Any]:
    roll = rng.random()
    number = DECLINING if roll < 0.1 else rng.choice(APPROVING)
    cents = rng.choice(("00", "25", "50", "99", "51", "55")) if roll > 0.95 else rng.choice(("00", "10", "25", "99"))
    amount = f"{rng.randint(1, 500)}.{cents}"
    drawn = rng.random() < 0.2  # one in five authorizes only (capture manual), unless `manual` says
    capture = "manual" if (drawn if manual is None else manual) else None
    return card_request(
        transaction_id,
        number=number,
        amount=amount,
        holder_name="Chaos Monkey",
        description="make chaos",
        capture=capture,
    )


def _expected(request: dict[str, Any]) -> str:
    declines = request["PaymentMethod"]["Number"] == DECLINING or request["Amount"][-2:] in DECLINING_CENTS
    if declines:
        return "PAYMENT-DECLINED"
    return "PAYMENT-AUTHORIZED" if request.get("Capture") == "manual" else "PAYMENT-SUCCESS"


def _charge_type(payment: PlannedPayment) -> str:
    """The Converge transaction type that moves this payment's money: the one processor faults strike."""
    return "ccauthonly" if payment.request.get("Capture") == "manual" else "ccsale"


def _add_fault(rng: random.Random, payment: PlannedPayment, kind: str, read_timeout: float) -> None:
    payment.faults.append(kind)
    source, _, name = kind.partition(":")
    if source == "converge":
        rule = FaultRule(
            name,
            match={"ssl_transaction_type": _charge_type(payment), "ssl_merchant_txn_id": payment.transaction_id},
            # A sale filed after the client gave up, but within one more read timeout.
            delay_ms={"latency": 300, "charge_in_flight": int(1500 * read_timeout)}.get(name, 0),
        )
        payment.processor_rules.append(rule)
        return
    for aws_kind, target, fault, count in AWS_FAULTS:
        if aws_kind == kind:
            payment.scheduled.append(ScheduledFault(target, fault, count, label=kind))
            return
    step = rng.choice(SIDE_EFFECT_STEPS)
    fault = dict(LAMBDA_FAULTS)[kind]
    target = f"lambda:{topology.function_by_step(step).function_name}"
    payment.scheduled.append(ScheduledFault(target, fault, label=kind))


# -- endings left unknown on purpose, for status sync to resolve ------------------------------------------

# How an ending is left unknown (the same three for payments and operations):
#   charged   the money call reaches Converge, its answer is withheld, and every lookup of the reference is
#             lost (timeout_after_charge, then drop_before_charge on its txnquery, for as long as the run
#             lasts): the execution ends FAILED, outcome unknown, with the money moved;
#   not_sent  every request under the reference is dropped before Converge acts: FAILED, outcome unknown,
#             nothing moved;
#   pending   the money moves, then both terminal ledger steps fail past their retries (Lambda service
#             errors planned under the reference): the execution ends with the ledger at PENDING.
UNKNOWN_KINDS = ("unknown:charged", "unknown:not_sent", "unknown:pending")
PAYMENT_RESOLUTIONS = {
    "unknown:charged": "REVERSE",
    "unknown:not_sent": "RECORD_NOT_CHARGED",
    "unknown:pending": "COMPLETE",
}
OPERATION_RESOLUTIONS = {
    "unknown:charged": "RECORD_SUCCESS",
    "unknown:not_sent": "RECORD_NOT_CHARGED",
    "unknown:pending": "COMPLETE",
}
UNKNOWN_PAYMENT_SHARE = 0.05  # of the payments after the covering ones that approve
UNKNOWN_OPERATION_SHARE = 0.03  # of the operations after the covering ones
# Lambda service errors enough to outlast every retry of both terminal steps (5 invocations each).
_STUCK_INVOCATIONS = 40
_PAYMENT_TERMINAL_FUNCTIONS = ("LedgerSuccess", "LedgerFailed")
_OPERATION_TERMINAL_FUNCTIONS = ("OperationSuccess", "OperationFailed")


def plan_unknown_endings(seed: int, payments: list[PlannedPayment]) -> list[PlannedPayment]:
    """About one approving payment in twenty after the covering ones ends unknown on purpose, each kind
    at least once as a sale and once as an authorization when there are enough; drawn from a stream of
    its own. Such a payment meets only its unknown ending's faults (any drawn for it are dropped), and
    its `expected` becomes what status sync must leave it at."""
    rng = random.Random(f"unknown-{seed}")
    eligible = [
        p
        for index, p in enumerate(payments)
        if index >= 2 * len(ALL_KINDS) and p.expected in ("PAYMENT-SUCCESS", "PAYMENT-AUTHORIZED")
    ]
    if not eligible:
        return []
    count = min(len(eligible), max(2 * len(UNKNOWN_KINDS), round(UNKNOWN_PAYMENT_SHARE * len(payments))))
    pool = list(eligible)
    chosen: list[tuple[PlannedPayment, str]] = []
    for kind in UNKNOWN_KINDS:
        for manual in (False, True):
            fits = [p for p in pool if (p.request.get("Capture") == "manual") == manual]
            if fits and len(chosen) < count:
                payment = rng.choice(fits)
                pool.remove(payment)
                chosen.append((payment, kind))
    while len(chosen) < count and pool:
        payment = rng.choice(pool)
        pool.remove(payment)
        chosen.append((payment, rng.choice(UNKNOWN_KINDS)))
    for payment, kind in chosen:
        _leave_unknown(payment, kind)
    return [payment for payment, _ in chosen]


def _leave_unknown(payment: PlannedPayment, kind: str) -> None:
    t = payment.transaction_id
    payment.faults, payment.scheduled, payment.processor_rules = [kind], [], []
    payment.unknown, payment.resolution = kind, PAYMENT_RESOLUTIONS[kind]
    if kind == "unknown:pending":
        payment.scheduled += _stuck(_PAYMENT_TERMINAL_FUNCTIONS, kind)
        return  # completed by status sync: it ends as its card and amount call for
    payment.processor_rules += _unknown_rules(kind, t, (_charge_type(payment),))
    payment.expected = "PAYMENT-REVERSED" if kind == "unknown:charged" else "PAYMENT-FAILED"


def _unknown_rules(kind: str, reference: str, converge_types: tuple[str, ...]) -> list[FaultRule]:
    """Converge fault rules that leave the outcome of the request under `reference` unknown to the workflow."""
    if kind == "unknown:not_sent":
        return [FaultRule("drop_before_charge", times=0, match={"ssl_merchant_txn_id": reference})]
    rules = [
        FaultRule("timeout_after_charge", match={"ssl_transaction_type": t, "ssl_merchant_txn_id": reference})
        for t in converge_types
    ]
    lost = {"ssl_transaction_type": "txnquery", "ssl_merchant_txn_id": reference}
    return [*rules, FaultRule("drop_before_charge", times=0, match=lost)]


def _stuck(steps: tuple[str, ...], label: str) -> list[ScheduledFault]:
    """Both terminal ledger steps fail past their retries: the execution ends with the ledger at PENDING."""
    return [
        ScheduledFault(
            f"lambda:{topology.function_by_step(step).function_name}", "service_error", _STUCK_INVOCATIONS, label
        )
        for step in steps
    ]


# -- operations after the payments: captures and voids before the batch settles, refunds after ----------

BEFORE_SETTLEMENT, AFTER_SETTLEMENT = "before settlement", "after settlement"
OPERATION_STEPS = ("AdmitOperation", "OperationPending", "CallOperationProcessor", "OperationSuccess", "Audit")
# The faults an operation can meet: every processor fault on its own Converge request, the storage and
# key faults of its writes (its ledger entries and audit records are keyed by its OperationID), and
# the Lambda faults of its steps. Operations decrypt nothing.
OPERATION_KINDS = (
    [f"converge:{f}" for f in PROCESSOR_FAULTS]
    + [kind for kind, *_ in AWS_FAULTS if kind != "kms:throttle_decrypt"]
    + [k for k, _ in LAMBDA_FAULTS]
)
RACE = "REFUND-SUCCESS|REFUND-DECLINED"  # of two refunds started together that do not both fit, one wins


@dataclass
class PlannedOperation:
    operation_id: str
    transaction_id: str
    request: dict[str, Any]
    expected: str  # the Status the payment's history calls for; RACE: one of a race wins
    reason: str | None = None  # the refusal's reason, when expected is a refusal
    faults: list[str] = field(default_factory=list)
    scheduled: list[ScheduledFault] = field(default_factory=list)
    processor_rules: list[FaultRule] = field(default_factory=list)
    unknown: str | None = None  # one of UNKNOWN_KINDS: the ending is left for status sync on purpose
    resolution: str | None = None  # what status sync must resolve it by


# One payment's operations in one phase: run one after another; a list inside is a race, started at once.
OperationSteps = list[PlannedOperation | list[PlannedOperation]]


@dataclass
class OperationPlan:
    before_settlement: dict[str, OperationSteps] = field(default_factory=dict)  # per TransactionID
    after_settlement: dict[str, OperationSteps] = field(default_factory=dict)

    @property
    def operations(self) -> list[PlannedOperation]:
        steps = [*self.before_settlement.values(), *self.after_settlement.values()]
        return [op for run in steps for step in run for op in (step if isinstance(step, list) else [step])]


def plan_operations(seed: int, payments: list[PlannedPayment], read_timeout: float = 1.0) -> OperationPlan:
    """Captures, voids and refunds of the planned payments, with their faults: the same seed, the same plan.

    Drawn from a stream of their own, so that adding operations changed no payment's plan.
    """
    rng = random.Random(f"operations-{seed}")
    planned = OperationPlan()
    counter = iter(range(10**6))

    def new(transaction_id: str, kind: str, amount: Decimal | None, expected: str, reason: str | None = None):
        operation_id = f"{transaction_id}-{kind[0]}{next(counter):03d}"
        request = {"Operation": kind, "OperationID": operation_id, "TransactionID": transaction_id}
        if amount is not None:
            request["Amount"] = f"{amount:.2f}"
        return PlannedOperation(operation_id, transaction_id, request, expected, reason)

    for payment in payments:
        t, amount, roll = payment.transaction_id, Decimal(payment.request["Amount"]), rng.random()
        if payment.unknown is not None:
            continue  # failed, or stuck until status sync: nothing to operate on during the run
        before: OperationSteps = []
        after: OperationSteps = []
        if payment.expected == "PAYMENT-DECLINED" and roll < 0.2:
            before.append(new(t, "void", None, "VOID-DECLINED", "PAYMENT_NOT_APPROVED"))
        elif payment.expected == "PAYMENT-AUTHORIZED" and roll < 0.5:
            captured = _part_of(rng, amount)
            before.append(new(t, "capture", captured, "CAPTURE-SUCCESS"))
            if rng.random() < 0.5:
                after.append(new(t, "refund", _part_of(rng, captured), "REFUND-SUCCESS"))
        elif payment.expected == "PAYMENT-AUTHORIZED" and roll < 0.75:
            before.append(new(t, "void", None, "VOID-SUCCESS"))
        elif payment.expected == "PAYMENT-SUCCESS" and roll < 0.15:
            before.append(new(t, "void", None, "VOID-SUCCESS"))
            after.append(new(t, "refund", None, "REFUND-DECLINED", "ALREADY_VOIDED"))
        elif payment.expected == "PAYMENT-SUCCESS" and roll < 0.45:
            # Two refunds of 60% at the same instant: exactly one may pass.
            sixty = (amount * Decimal("0.6")).quantize(Decimal("0.01"))
            after.append([new(t, "refund", sixty, RACE), new(t, "refund", sixty, RACE)])
        elif payment.expected == "PAYMENT-SUCCESS" and roll < 0.7:
            first = _part_of(rng, amount)
            after.append(new(t, "refund", first, "REFUND-SUCCESS"))
            if first < amount:
                after.append(new(t, "refund", None, "REFUND-SUCCESS"))  # all that is left
            after.append(new(t, "refund", Decimal("0.01"), "REFUND-DECLINED", "EXCEEDS_REFUNDABLE"))
        elif payment.expected == "PAYMENT-SUCCESS" and roll < 0.8:
            after.append(new(t, "void", None, "VOID-DECLINED", "ALREADY_SETTLED"))
        if before:
            planned.before_settlement[t] = before
        if after:
            planned.after_settlement[t] = after
    # The first operations meet every fault kind once; the rest one in three, one fault drawn.
    singles = [op for op in planned.operations if op.expected != RACE]
    for index, operation in enumerate(singles):
        if index < len(OPERATION_KINDS):
            _add_operation_fault(rng, operation, OPERATION_KINDS[index], read_timeout)
        elif rng.random() < 1 / 3:
            _add_operation_fault(rng, operation, rng.choice(OPERATION_KINDS), read_timeout)
    plan_unknown_operations(seed, planned)
    return planned


def plan_unknown_operations(seed: int, planned: OperationPlan) -> list[PlannedOperation]:
    """A few operations end unknown on purpose (about three in a hundred after the covering ones; each
    unknown kind once with each operation kind when there are enough), from a stream of their own. Only a
    payment's last operation, and one its history lets through (<KIND>-SUCCESS expected): an operation
    left unknown holds its payment until status sync resolves it, so nothing may come after it."""
    rng = random.Random(f"unknown-operations-{seed}")
    singles = [op for op in planned.operations if op.expected != RACE]
    covering = {op.operation_id for op in singles[: len(OPERATION_KINDS)]}
    last_of_payment: dict[str, PlannedOperation] = {}
    for operation in planned.operations:
        last_of_payment[operation.transaction_id] = operation
    eligible = [
        op
        for op in last_of_payment.values()
        if op.operation_id not in covering and op.expected != RACE and op.expected.endswith("-SUCCESS")
    ]
    count = min(len(eligible), max(2 * len(UNKNOWN_KINDS), round(UNKNOWN_OPERATION_SHARE * len(singles))))
    pool = list(eligible)
    chosen: list[tuple[PlannedOperation, str]] = []
    # Each unknown kind with another operation kind first, so that the first three already meet all six.
    operation_kinds = ("capture", "void", "refund")
    pairs = [(UNKNOWN_KINDS[i % 3], operation_kinds[(i + i // 3) % 3]) for i in range(9)]
    for kind, operation_kind in pairs:
        fits = [op for op in pool if op.request["Operation"] == operation_kind]
        if fits and len(chosen) < count:
            operation = rng.choice(fits)
            pool.remove(operation)
            chosen.append((operation, kind))
    while len(chosen) < count and pool:
        operation = rng.choice(pool)
        pool.remove(operation)
        chosen.append((operation, rng.choice(UNKNOWN_KINDS)))
    for operation, kind in chosen:
        _leave_operation_unknown(operation, kind)
    return [operation for operation, _ in chosen]


def _leave_operation_unknown(operation: PlannedOperation, kind: str) -> None:
    operation.faults, operation.scheduled, operation.processor_rules = [kind], [], []
    operation.unknown, operation.resolution = kind, OPERATION_RESOLUTIONS[kind]
    if kind == "unknown:pending":
        operation.scheduled += _stuck(_OPERATION_TERMINAL_FUNCTIONS, kind)
        return  # completed by status sync: <KIND>-SUCCESS, as planned
    # A void of an authorization is a ccdelete, of anything else a ccvoid: the rules name both.
    kind_of = operation.request["Operation"]
    types = ("ccdelete", "ccvoid") if kind_of == "void" else (converge_type_of(operation, False),)
    operation.processor_rules += _unknown_rules(kind, operation.operation_id, types)
    if kind == "unknown:not_sent":
        operation.expected, operation.reason = f"{kind_of.upper()}-FAILED", "NOT_CHARGED"


def _part_of(rng: random.Random, amount: Decimal) -> Decimal:
    """A part of `amount` (all of it, now and then), in cents, never below one cent."""
    if rng.random() < 0.25:
        return amount
    return max(Decimal("0.01"), (amount * Decimal(rng.randint(10, 90)) / 100).quantize(Decimal("0.01")))


def converge_type_of(operation: PlannedOperation, payment_is_authorization: bool) -> str:
    kind = operation.request["Operation"]
    if kind == "void":
        return "ccdelete" if payment_is_authorization else "ccvoid"
    return {"capture": "cccomplete", "refund": "ccreturn"}[kind]


def _add_operation_fault(rng: random.Random, operation: PlannedOperation, kind: str, read_timeout: float) -> None:
    """A fault on one operation, planned under its OperationID (see local.faults.transaction_id_of)."""
    operation.faults.append(kind)
    source, _, name = kind.partition(":")
    if source == "converge":
        # A void of an authorization is a ccdelete, of anything else a ccvoid: the rule names both.
        types = (
            ("ccdelete", "ccvoid")
            if operation.request["Operation"] == "void"
            else (converge_type_of(operation, False),)
        )
        for converge_type in types:
            operation.processor_rules.append(
                FaultRule(
                    name,
                    match={"ssl_transaction_type": converge_type, "ssl_merchant_txn_id": operation.operation_id},
                    delay_ms={"latency": 300, "charge_in_flight": int(1500 * read_timeout)}.get(name, 0),
                )
            )
        return
    for aws_kind, target, fault, count in AWS_FAULTS:
        if aws_kind == kind:
            operation.scheduled.append(ScheduledFault(target, fault, count, label=kind))
            return
    step = rng.choice(OPERATION_STEPS)
    target = f"lambda:{topology.function_by_step(step).function_name}"
    operation.scheduled.append(ScheduledFault(target, dict(LAMBDA_FAULTS)[kind], label=kind))
