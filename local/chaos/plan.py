"""The fault plan of a chaos run, drawn from a seed: which payment meets which fault, where."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
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
    expected: str  # the Status the card and amount call for, whatever the faults: no fault may change it
    faults: list[str] = field(default_factory=list)  # kinds, for the report
    scheduled: list[ScheduledFault] = field(default_factory=list)
    processor_rules: list[FaultRule] = field(default_factory=list)


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
