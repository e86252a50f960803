"""A second card processor, for the tests only: an adapter module as the registry expects one.

It keeps its own ledger of sales in memory and speaks a result format of its own (no `ssl_`
anywhere), so a test can register it and run the domain through it unchanged.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from payments.errors import ProcessorTimeout
from payments.processors.port import (
    AuditView,
    CardDetails,
    ExpectedSale,
    OperationInstruction,
    PaymentInstruction,
    ProcessorTimeouts,
)
from payments.state import ProcessorOutcome

PROCESSOR_ID = "loopbackpay"
CURRENCIES = frozenset({"USD", "NZD"})
_ids = itertools.count(1)


@dataclass(frozen=True)
class FakeCall:
    operation: str
    request: dict[str, Any]
    result: dict[str, str]
    started_at: str = "2026-11-27T06:00:00.000000Z"
    latency_ms: int = 3
    found: tuple[dict[str, str], ...] = ()


@dataclass
class LoopbackPay:
    """Approves any card not ending in 0002; can be told to charge and then lose the answer."""

    processor_id: str = PROCESSOR_ID
    timeouts: ProcessorTimeouts = field(default_factory=lambda: ProcessorTimeouts(connect=0.5, read=2.0))
    sales: list[dict[str, str]] = field(default_factory=list)
    log: list[str] = field(default_factory=list)  # operations, in order, with sleeps of the fake clock
    lose_next_answer: bool = False
    lookup_error: Exception | None = None
    sale_error: Exception | None = None
    cvvs_sent: list[str | None] = field(default_factory=list)
    looked_since: list[dt.date] = field(default_factory=list)

    def sale(self, instruction: PaymentInstruction) -> FakeCall:
        return self._take(instruction, "sale", "captured")

    def authorize(self, instruction: PaymentInstruction) -> FakeCall:
        return self._take(instruction, "authorize", "authorized")

    def _take(self, instruction: PaymentInstruction, operation: str, approved: str) -> FakeCall:
        self.log.append(operation)
        card = instruction.source
        self.cvvs_sent.append(card.cvv if isinstance(card, CardDetails) else None)
        if self.sale_error is not None:
            raise self.sale_error
        declined = isinstance(card, CardDetails) and card.number.endswith("0002")
        result = {
            "status": "declined" if declined else approved,
            "kind": "authorization" if operation == "authorize" else "sale",
            "id": f"lp_{next(_ids)}",
            "reference": instruction.transaction_id,
            "amount": str(instruction.amount),
            "currency": instruction.currency,
            "last4": card.number[-4:] if isinstance(card, CardDetails) else "",
        }
        self.sales.append(result)
        request = {"reference": instruction.transaction_id, "amount": str(instruction.amount)}
        if self.lose_next_answer:
            self.lose_next_answer = False
            raise ProcessorTimeout("loopbackpay: no answer")
        return FakeCall("charge" if operation == "sale" else "authorize", request, result)

    def capture(
        self, processor_transaction_id: str, amount: Decimal | None = None, currency: str | None = None
    ) -> FakeCall:
        raise NotImplementedError

    def void(self, processor_transaction_id: str) -> FakeCall:
        raise NotImplementedError

    def refund(
        self, processor_transaction_id: str, amount: Decimal | None = None, currency: str | None = None
    ) -> FakeCall:
        raise NotImplementedError

    def send_operation(self, instruction: OperationInstruction) -> FakeCall:
        raise NotImplementedError

    def settlement_of(self, processor_transaction_id: str) -> tuple[FakeCall, bool]:
        raise NotImplementedError

    def operation_found(self, lookup: Any, instruction: OperationInstruction) -> dict[str, str] | None:
        raise NotImplementedError

    def find_by_merchant_transaction_id(self, transaction_id: str, since: dt.date) -> FakeCall:
        self.log.append("lookup")
        self.looked_since.append(since)
        if self.lookup_error is not None:
            raise self.lookup_error
        found = tuple(s for s in self.sales if s["reference"] == transaction_id)
        return FakeCall("lookup", {"reference": transaction_id}, {"count": str(len(found))}, found=found)

    def sale_found(self, lookup: Any, expected: ExpectedSale) -> dict[str, str] | None:
        ours = (
            s
            for s in lookup.found
            if s["reference"] == expected.transaction_id
            and Decimal(s["amount"]) == expected.amount
            and s["currency"] == expected.currency
            and s["kind"] == expected.kind
            and (expected.card_last4 is None or s["last4"] == expected.card_last4)
        )
        found = next(ours, None)
        if found is None and lookup.found:
            raise ProcessorTimeout("loopbackpay: a listed sale is not shown to be ours")
        return found

    def normalize(self, result: dict[str, str]) -> ProcessorOutcome:
        return normalize(result)

    def audit_view(self, call: Any) -> AuditView:
        outcome = {"captured": "APPROVED", "authorized": "APPROVED", "declined": "DECLINED"}.get(
            call.result.get("status", "")
        )
        if call.operation == "lookup":
            outcome = "FOUND" if call.found else "NOT_FOUND"
        return AuditView(
            call.operation,
            outcome or "ERROR",
            call.result.get("status", ""),
            call.request,
            call.result,
            call.started_at,
            3,
        )


def normalize(result: dict[str, str]) -> ProcessorOutcome:
    if result.get("status") in ("captured", "authorized"):
        return ProcessorOutcome(Status="APPROVED", ProcessorTransactionID=result["id"], ApprovalCode="LP")
    if result.get("status") == "declined":
        return ProcessorOutcome(Status="DECLINED", ReasonCode="DO_NOT_HONOR", ProcessorTransactionID=result["id"])
    return ProcessorOutcome(Status="ERROR", ReasonCode="UNRECOGNIZED_RESULT")


INSTANCE = LoopbackPay()


def from_environment() -> LoopbackPay:
    return INSTANCE
