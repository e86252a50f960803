"""The API response (docs/architecture.md#contracts), built from the terminal ledger entry: the ledger is the truth."""

from __future__ import annotations

from typing import Any

from payments import ledger
from payments.ledger import LedgerEntry
from payments.state import PaymentFacts


def api_response(payment: PaymentFacts, terminal: LedgerEntry) -> dict[str, Any]:
    response: dict[str, Any] = {
        "TransactionID": payment.TransactionID,
        "Status": terminal.Status,
        "Amount": payment.Amount,
        "Currency": payment.Currency,
        "ProcessorID": payment.ProcessorID,
    }
    if terminal.Status in ledger.APPROVED_STATUSES:
        response["ProcessorTransactionID"] = terminal.ProcessorTransactionID
        response["ApprovalCode"] = terminal.ApprovalCode
    elif terminal.Status == ledger.DECLINED:
        response["Decline"] = {"Code": terminal.ReasonCode, "Message": terminal.ReasonMessage}
    else:
        response["Failure"] = {"Code": terminal.ReasonCode, "Message": terminal.ReasonMessage}
    if payment.Card is not None:
        response["Card"] = {"Brand": payment.Card.Brand, "Last4": payment.Card.Last4}
    return response
