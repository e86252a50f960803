"""What a payment's ledger holds as charged, to set beside what the processor holds (local.sandbox.terminal's
`net_charged`): the chaos run's invariant 9 asserts they are equal, and the console shows both."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from payments import ledger, operations


def ledger_net(entries: Iterable[dict[str, Any]]) -> Decimal:
    """Captured minus refunded (nothing once VOID-SUCCESS; an operation's RECORD_SUCCESS or COMPLETE
    counts as its SUCCESS), plus what a reversal holds until it is done: a charge status sync is
    reversing (PAYMENT-REVERSING) is held, a reversed one (PAYMENT-REVERSED) nets zero."""
    history = list(entries)
    held = operations.balances_of(
        operations.HistoryEntry(e["Status"], str(e["Amount"]), e.get("OperationID"), e.get("ReasonCode"))
        for e in history
    )
    net = Decimal(0) if held.voided else held.captured - held.refunded
    return net + _amount_of(history, ledger.REVERSING) - _amount_of(history, ledger.REVERSED)


def _amount_of(history: list[dict[str, Any]], status: str) -> Decimal:
    return sum((Decimal(str(e["Amount"])) for e in history if e["Status"] == status), Decimal(0))
