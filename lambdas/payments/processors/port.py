"""The processor port: what the payment workflow needs of any card processor.

The exactly-once protocol (payments.charging) is written against this interface only; each
adapter (Converge is the first) keeps its wire format, field names and result codes to itself.
See docs/architecture.md#processors.

An adapter raises the typed errors of payments.errors, chosen by what is safe to do next:
ProcessorUnavailable (nothing was processed), ProcessorTimeout (the outcome is unknown: ask
before sending again), ProcessorRejected (our request is wrong: never retry). Each carries the
`ProcessorCall` when the processor answered at all, so that the call is audited.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, Protocol

from payments.state import ProcessorOutcome

SaleKind = Literal["sale", "authorization"]
OperationKind = Literal["capture", "void", "refund"]
CallOutcome = Literal["APPROVED", "DECLINED", "ERROR", "FOUND", "NOT_FOUND"]
# What a processor's listing says a transaction is: a charge (sale, authorization, capture), a void (of a
# charge, or the release of an authorization: a voided charge is listed as one too), a refund, something
# the adapter knows to move no money ("other": a card verification, a token), or a type the adapter does
# not know ("unknown": reconciliation judges it as money, never leaves it out).
ListedKind = Literal["sale", "authorization", "capture", "void", "refund", "other", "unknown"]
ListedOutcome = Literal["APPROVED", "DECLINED", "UNKNOWN"]


@dataclass(frozen=True)
class CardDetails:
    """Plaintext card data: exists only in memory inside CallProcessor."""

    number: str = field(repr=False)
    expiry_month: int
    expiry_year: int
    cvv: str | None = field(default=None, repr=False)
    holder_name: str | None = None


@dataclass(frozen=True)
class StoredToken:
    """A processor's own reusable token for a card (Converge: ssl_token)."""

    token: str = field(repr=False)


@dataclass(frozen=True)
class PaymentInstruction:
    """What to charge or authorize: our TransactionID travels with it, so the processor can find it again."""

    transaction_id: str
    amount: Decimal
    currency: str
    source: CardDetails | StoredToken
    description: str | None = None


@dataclass(frozen=True)
class ExpectedSale:
    """The sale a lookup must show to count as ours: our TransactionID echoed, our amount and currency,
    and the card's last four digits when we know them (a stored processor token carries none)."""

    transaction_id: str
    amount: Decimal
    currency: str
    card_last4: str | None
    kind: SaleKind = "sale"  # an authorization, for a payment captured later


@dataclass(frozen=True)
class OperationInstruction:
    """A capture, void or refund of a payment's transaction. The OperationID travels with it (Converge:
    ssl_merchant_txn_id), so a retry can ask whether the processor already holds it."""

    operation_id: str
    kind: OperationKind
    processor_transaction_id: str  # the payment's own transaction: the sale or the authorization
    amount: Decimal | None  # capture and refund: the amount moved, in `currency`; a void moves the whole
    currency: str
    of_authorization: bool = False  # an uncaptured authorization: a void releases it rather than cancels a charge


@dataclass(frozen=True)
class ProcessorTimeouts:
    """How long a call may wait: after `connect + read` seconds the client has given up on an answer."""

    connect: float
    read: float


@dataclass(frozen=True)
class ListedTransaction:
    """One transaction as a processor's listing by time shows it: no card data, nothing but what
    reconciliation compares. `reference` is the merchant reference it carries (our TransactionID for a
    sale or an authorization, our OperationID for a capture, void or refund); `at` is when it happened
    (UTC), as the processor dates it."""

    processor_transaction_id: str
    reference: str
    kind: ListedKind
    amount: Decimal | None  # None: the listing's amount could not be read
    currency: str
    outcome: ListedOutcome
    settled: bool
    at: dt.datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "ProcessorTransactionID": self.processor_transaction_id,
            "Reference": self.reference,
            "Kind": self.kind,
            "Amount": None if self.amount is None else str(self.amount),
            "Currency": self.currency,
            "Outcome": self.outcome,
            "Settled": self.settled,
            "At": self.at.isoformat().replace("+00:00", "Z"),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ListedTransaction:
        return cls(
            processor_transaction_id=str(data["ProcessorTransactionID"]),
            reference=str(data["Reference"]),
            kind=data["Kind"],
            amount=None if data.get("Amount") is None else Decimal(str(data["Amount"])),
            currency=str(data["Currency"]),
            outcome=data["Outcome"],
            settled=bool(data["Settled"]),
            at=dt.datetime.fromisoformat(str(data["At"]).replace("Z", "+00:00")),
        )


@dataclass(frozen=True)
class Listing:
    """What a processor lists between two moments, every page of it. `complete` is False when the
    processor's paging could not reach every transaction of the span (the report then says so)."""

    transactions: tuple[ListedTransaction, ...]
    calls: tuple[ProcessorCall, ...]
    complete: bool
    pages: int


class ProcessorCall(Protocol):
    """One request/response exchange with a processor, as an adapter reports it."""

    @property
    def operation(self) -> str: ...

    @property
    def started_at(self) -> str: ...

    @property
    def latency_ms(self) -> int: ...

    @property
    def result(self) -> dict[str, str]:
        """The processor's result fields that may leave the adapter: no card data, safe in state and logs."""
        ...


@dataclass(frozen=True)
class AuditView:
    """A call as the audit trail keeps it: query and response masked (no PAN, no CVV, no secrets)."""

    operation: str
    outcome: CallOutcome
    result_code: str
    query: dict[str, Any]
    response: dict[str, Any]
    started_at: str
    latency_ms: int


class Processor(Protocol):
    """A card processor, through one adapter. Every money-moving call is tagged with our TransactionID."""

    processor_id: str
    timeouts: ProcessorTimeouts

    def sale(self, instruction: PaymentInstruction) -> ProcessorCall: ...

    def authorize(self, instruction: PaymentInstruction) -> ProcessorCall: ...

    def capture(
        self, processor_transaction_id: str, amount: Decimal | None = None, currency: str | None = None
    ) -> ProcessorCall:
        """Capture an authorization, all of it or `amount` (in `currency`, the authorization's)."""
        ...

    def void(self, processor_transaction_id: str) -> ProcessorCall: ...

    def refund(
        self, processor_transaction_id: str, amount: Decimal | None = None, currency: str | None = None
    ) -> ProcessorCall:
        """Give back all of a captured charge or `amount` of it (in `currency`, the charge's)."""
        ...

    def send_operation(self, instruction: OperationInstruction) -> ProcessorCall:
        """Send one capture, void or refund, tagged with its OperationID (Converge: cccomplete, ccvoid or,
        for an authorization never captured, ccdelete, ccreturn). A capture's or refund's amount is sent
        as given, in the original's currency. Raises as any money-moving call does."""
        ...

    def settlement_of(self, processor_transaction_id: str) -> tuple[ProcessorCall, bool]:
        """Ask whether a transaction has settled (its batch closed); no money moves. The call is audited.
        A transaction the processor does not hold is ProcessorRejected; an answer that cannot be read
        as this transaction's status is ProcessorTimeout."""
        ...

    def operation_found(self, lookup: ProcessorCall, instruction: OperationInstruction) -> dict[str, str] | None:
        """From a lookup by OperationID (find_by_merchant_transaction_id): the result of the operation we
        sent, if one matching `instruction` is listed; None if nothing is listed for the OperationID;
        ProcessorTimeout if something is listed that cannot be shown to be it (as sale_found)."""
        ...

    def transactions_between(
        self, start: dt.datetime, end: dt.datetime, *, seconds_left: Callable[[], float] | None = None
    ) -> Listing:
        """Every transaction the processor lists from `start` to `end` (UTC, both included, to the second),
        paging as the processor pages; no money moves. Stops early, `complete` False, when the paging cannot
        go on (or `seconds_left` runs short). Raises as a lookup does (ProcessorUnavailable, ProcessorTimeout,
        ProcessorRejected)."""
        ...

    def find_by_merchant_transaction_id(self, transaction_id: str, since: dt.date) -> ProcessorCall:
        """Ask the processor what it holds for our TransactionID, from `since` to tomorrow (no money moves)."""
        ...

    def sale_found(self, lookup: ProcessorCall, expected: ExpectedSale) -> dict[str, str] | None:
        """From a lookup: the result of the sale we sent, if the lookup shows one matching `expected` in
        every field; None only if it lists nothing at all for our TransactionID. A listed transaction
        that cannot be shown to be ours raises ProcessorTimeout: it may be our sale, so sending
        another could charge twice, and adopting it could take another customer's approval. The
        outcome stays unknown, for the retries and reconciliation."""
        ...

    def normalize(self, result: dict[str, str]) -> ProcessorOutcome:
        """The processor's own result as APPROVED, DECLINED or ERROR with a stable reason code."""
        ...

    def audit_view(self, call: ProcessorCall) -> AuditView: ...
