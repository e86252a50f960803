"""Capture, void and refund: what a payment's ledger history allows, decided before any processor call.

A payment's ledger is one numbered, append-only history: the payment's own entries first, then
each operation's INITIATED, PENDING and terminal entries. The balances are a fold over that
history (`balances_of`), and an operation is admitted (`admit`) against the balances of the
entries before the one it would append. Appending is conditional on the next entry number being
free, so two operations admitted against the same history cannot both be written: the second
finds its slot taken, reads again, and is judged against a history that now holds the first. An
operation's amount counts against the payment from its INITIATED entry on (held), and is released
by a DECLINED terminal entry, or a FAILED one whose reason proves nothing was sent: two refunds of
60.00 on a 100.00 sale started at the same instant end one REFUND-SUCCESS and one refused
EXCEEDS_REFUNDABLE, and nothing is sent for it. A FAILED operation whose outcome is unknown keeps
its hold and stops every further operation until it is reconciled: it may have moved the money.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from payments import currencies, ledger
from payments.cards import contains_card_number, identifier_contains_card_number

OperationKind = Literal["capture", "void", "refund"]
KINDS: tuple[OperationKind, ...] = ("capture", "void", "refund")
INITIATED, PENDING, SUCCESS, DECLINED, FAILED = "INITIATED", "PENDING", "SUCCESS", "DECLINED", "FAILED"
_OPERATION_ID = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
_AMOUNT = re.compile(r"^[0-9]{1,8}(\.[0-9]{1,3})?$")
_FIELDS = frozenset({"Operation", "OperationID", "TransactionID", "Amount", "Reason"})
_NOT_PRINTABLE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def status(kind: OperationKind, stage: str) -> str:
    """The ledger Status of an operation's entry: CAPTURE-SUCCESS, REFUND-DECLINED, …"""
    return f"{kind.upper()}-{stage}"


def parse_status(text: str) -> tuple[OperationKind, str] | None:
    kind, _, stage = text.partition("-")
    lowered = kind.lower()
    for known in KINDS:
        if lowered == known and stage in (INITIATED, PENDING, SUCCESS, DECLINED, FAILED):
            return known, stage
    return None


class InvalidOperationRequest(ValueError):
    """The operation's input is malformed: `field` names which, `message` says why (never echoing it)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field} {message}")
        self.field = field
        self.message = message


class OperationRefused(Exception):
    """The payment's history does not allow the operation; `reason` is a stable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class OperationRequest:
    Operation: OperationKind
    OperationID: str
    TransactionID: str
    Amount: Decimal | None = None
    Reason: str | None = None


def parse_operation(event: Any) -> OperationRequest:
    """An operation's execution input, validated field by field."""
    if not isinstance(event, dict):
        raise InvalidOperationRequest("[input]", "must be a JSON object")
    unexpected = set(event) - _FIELDS
    if unexpected:
        raise InvalidOperationRequest("[unexpected field]", "is not part of an operation request")
    kind = event.get("Operation")
    if kind not in KINDS:
        raise InvalidOperationRequest("Operation", 'must be "capture", "void" or "refund"')
    for field in ("OperationID", "TransactionID"):
        value = event.get(field)
        if not isinstance(value, str) or not _OPERATION_ID.fullmatch(value):
            raise InvalidOperationRequest(field, "must be 1 to 36 characters of letters, digits, '-' and '_'")
        if identifier_contains_card_number(value):
            raise InvalidOperationRequest(field, "must not contain a card number")
    if event["OperationID"] == event["TransactionID"]:
        # The processor keeps both as one kind of reference (Converge: ssl_merchant_txn_id).
        raise InvalidOperationRequest("OperationID", "must differ from the TransactionID")
    amount = _amount(event.get("Amount"))
    if kind == "void" and amount is not None:
        raise InvalidOperationRequest("Amount", "must be absent: a void cancels the whole transaction")
    reason = event.get("Reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > 255):
        raise InvalidOperationRequest("Reason", "must be a string of at most 255 characters")
    if reason is not None and (_NOT_PRINTABLE.search(reason) or contains_card_number(reason)):
        raise InvalidOperationRequest("Reason", "must be printable text and hold no card number")
    return OperationRequest(kind, event["OperationID"], event["TransactionID"], amount, reason)


def _amount(value: Any) -> Decimal | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _AMOUNT.fullmatch(value):
        raise InvalidOperationRequest("Amount", 'must be a decimal string such as "25.00"')
    try:
        amount = Decimal(value)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
        raise InvalidOperationRequest("Amount", "is not a decimal number") from None
    if amount <= 0:
        raise InvalidOperationRequest("Amount", "must be greater than zero")
    return amount


@dataclass(frozen=True)
class Balances:
    """What a payment's history says about its money."""

    payment_status: str | None  # the payment's own terminal status, None while it runs
    amount: Decimal  # the payment's amount: authorized (manual) or charged (sale)
    captured: Decimal  # charged: the sale, or what a capture took
    refunded: Decimal
    held_for_capture: Decimal  # captures admitted, not yet ended
    held_for_refunds: Decimal
    voids_in_flight: int
    voided: bool
    unresolved: int  # operations that FAILED with their outcome unknown: they may have moved money

    @property
    def is_authorization(self) -> bool:
        return self.payment_status == ledger.AUTHORIZED

    @property
    def refundable(self) -> Decimal:
        return self.captured - self.refunded - self.held_for_refunds

    @property
    def in_flight(self) -> bool:
        return self.held_for_capture > 0 or self.held_for_refunds > 0 or self.voids_in_flight > 0


@dataclass(frozen=True)
class HistoryEntry:
    """The part of a ledger entry the balances read."""

    Status: str
    Amount: str  # the payment's amount on its own entries, the operation's on an operation's
    OperationID: str | None = None
    ReasonCode: str | None = None


def balances_of(history: Iterable[HistoryEntry]) -> Balances:
    payment_status: str | None = None
    amount = captured = refunded = held_capture = held_refunds = Decimal(0)
    voids = 0
    voided = False
    held: dict[str, tuple[OperationKind, Decimal]] = {}
    unknown: set[str] = set()
    for entry in history:
        if entry.Status in ledger.FACT_STATUSES:
            continue  # a reversal of a failed payment, or a settlement: no balance of the payment changes
        parsed = parse_status(entry.Status)
        if parsed is None:
            amount = Decimal(entry.Amount)
            if entry.Status in ledger.TERMINAL_STATUSES:
                payment_status = entry.Status
                if entry.Status == ledger.SUCCESS:
                    captured = amount
            continue
        kind, stage = parsed
        operation = entry.OperationID or ""
        if stage == INITIATED:
            held[operation] = (kind, Decimal(entry.Amount) if kind != "void" else Decimal(0))
        elif stage in (SUCCESS, DECLINED, FAILED) and operation in held:
            if stage == FAILED and entry.ReasonCode not in ledger.NOTHING_SENT_REASONS:
                unknown.add(operation)  # the hold stays: the money may have moved, until status sync says
                continue
            unknown.discard(operation)  # status sync's resolution, after a FAILED entry of unknown outcome
            held_kind, held_amount = held.pop(operation)
            if stage == SUCCESS:
                if held_kind == "capture":
                    captured += held_amount
                elif held_kind == "refund":
                    refunded += held_amount
                else:
                    voided = True
    for kind, held_amount in held.values():
        if kind == "capture":
            held_capture += held_amount
        elif kind == "refund":
            held_refunds += held_amount
        else:
            voids += 1
    return Balances(payment_status, amount, captured, refunded, held_capture, held_refunds, voids, voided, len(unknown))


def admit(request: OperationRequest, balances: Balances, *, payment_found: bool, currency: str | None) -> Decimal:
    """The amount the operation moves (a void: all the payment holds), or OperationRefused: before any
    processor call."""
    if not payment_found:
        raise OperationRefused("UNKNOWN_PAYMENT", "no payment with this TransactionID is in the ledger")
    if balances.payment_status is None:
        raise OperationRefused("PAYMENT_IN_PROGRESS", "the payment has not ended yet")
    if balances.payment_status not in ledger.APPROVED_STATUSES:
        raise OperationRefused("PAYMENT_NOT_APPROVED", f"the payment ended {balances.payment_status}")
    if balances.voided:
        raise OperationRefused("ALREADY_VOIDED", "the payment was voided")
    if (
        currency is not None
        and request.Amount is not None
        and _decimals(request.Amount) > currencies.exponent_of(currency)
    ):
        raise OperationRefused(
            "AMOUNT_PRECISION", f"{currency} amounts have at most {currencies.exponent_of(currency)} decimals"
        )
    if balances.unresolved:
        raise OperationRefused(
            "OPERATION_OUTCOME_UNKNOWN", "an earlier operation's outcome is unknown: reconcile it first"
        )
    if request.Operation == "capture":
        return _capture(request, balances)
    if request.Operation == "refund":
        return _refund(request, balances)
    return _void(balances)


def _capture(request: OperationRequest, balances: Balances) -> Decimal:
    if not balances.is_authorization:
        raise OperationRefused("NOT_AN_AUTHORIZATION", "only an authorization (capture manual) can be captured")
    if balances.captured > 0 or balances.held_for_capture > 0:
        raise OperationRefused("ALREADY_CAPTURED", "an authorization is captured once; the capture released the rest")
    if balances.voids_in_flight:
        raise OperationRefused("OPERATION_IN_PROGRESS", "a void of this payment has not ended yet")
    amount = request.Amount if request.Amount is not None else balances.amount
    if amount > balances.amount:
        raise OperationRefused("EXCEEDS_AUTHORIZED", "the amount is more than was authorized")
    return amount


def _refund(request: OperationRequest, balances: Balances) -> Decimal:
    if balances.captured == 0 and balances.held_for_capture == 0 and balances.is_authorization:
        raise OperationRefused("NOT_CAPTURED", "an authorization is not charged: capture it, or void it")
    if balances.held_for_capture > 0 or balances.voids_in_flight:
        raise OperationRefused("OPERATION_IN_PROGRESS", "a capture or void of this payment has not ended yet")
    amount = request.Amount if request.Amount is not None else balances.refundable
    if amount <= 0 or amount > balances.refundable:
        raise OperationRefused("EXCEEDS_REFUNDABLE", "the amount is more than what is left to refund")
    return amount


def _void(balances: Balances) -> Decimal:
    if balances.in_flight:
        raise OperationRefused("OPERATION_IN_PROGRESS", "another operation on this payment has not ended yet")
    if balances.refunded > 0:
        raise OperationRefused("ALREADY_REFUNDED", "a refunded payment is not voided: refund the rest instead")
    return balances.captured if balances.captured > 0 else balances.amount


def _decimals(amount: Decimal) -> int:
    exponent = amount.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0
