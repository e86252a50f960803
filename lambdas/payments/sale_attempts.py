"""The write-ahead record of every sale sent: what decides whether CallProcessor asks before it sends.

Before a sale leaves, CallProcessor claims the next `sale-attempt#NN` record in the audit trail,
conditionally: two attempts can never both claim the same number, and nothing is sent without a
claim. Whoever runs CallProcessor next — a Step Functions retry, a redrive (which starts
`$$.State.RetryCount` again at 0), or a person invoking the function by hand — finds the claim
and asks the processor about that sale before sending another.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from payments import aws
from payments.audit import AuditConflict, AuditRecord, AuditRepository, ProcessorCallRecord

SALE_ATTEMPT = "sale-attempt"
OPERATION_ATTEMPT = "operation-attempt"  # a capture, void or refund about to be sent, in the operation's trail
SENDING = "SENDING"


@dataclass(frozen=True)
class SaleAttempt:
    number: int
    started_at: dt.datetime  # when it was claimed: its sale left after this


class SaleAttemptTaken(Exception):
    """Another attempt claimed this number first: it may be sending a sale right now."""


class SaleAttempts(Protocol):
    """The sale attempts on record for one payment."""

    def on_record(self) -> list[SaleAttempt]: ...

    def claim(self, number: int, now: dt.datetime) -> None:
        """Record that sale attempt `number` is about to be sent; SaleAttemptTaken if it is on record."""
        ...


def audit_id(number: int, kind: str = SALE_ATTEMPT) -> str:
    return f"{kind}#{number:02d}"


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class AuditedSaleAttempts:
    """Sale attempts as records of the audit trail (Operation `sale-attempt`, Outcome `SENDING`)."""

    repository: AuditRepository
    client: Any  # DynamoDB, to read the claims back
    transaction_id: str
    execution_arn: str
    attempt: int
    actor: str
    seal_instruction: Callable[[], str]  # the amount and currency about to be charged, sealed for the audit purpose
    kind: str = SALE_ATTEMPT  # or OPERATION_ATTEMPT

    def on_record(self) -> list[SaleAttempt]:
        items = aws.payment_items(
            self.client,
            self.repository.table_name,
            self.transaction_id,
            "the audit trail",
            projection="AuditID, CreatedAt",
            sort_key_prefix=("AuditID", f"{self.kind}#"),
        )
        return [
            SaleAttempt(int(item["AuditID"]["S"].rpartition("#")[2]), parse_time(item["CreatedAt"]["S"]))
            for item in items
        ]

    def claim(self, number: int, now: dt.datetime) -> None:
        record = ProcessorCallRecord(
            AuditID=audit_id(number, self.kind),
            Operation=self.kind,
            Attempt=self.attempt,
            Outcome=SENDING,
            ResultCode="",
            LatencyMs=0,
            EncryptedQuery=self.seal_instruction(),  # sealed only when a sale is about to leave
            EncryptedResponse=None,
            Actor=self.actor,
            CreatedAt=now.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        )
        try:
            self.repository.append_record(AuditRecord(self.transaction_id, self.execution_arn, record))
        except AuditConflict:
            raise SaleAttemptTaken(f"{self.kind} {number} is already on record") from None
