"""The append-only audit trail: one record per processor call, payloads encrypted by the caller.

The Audit function only stores what CallProcessor already encrypted; it cannot read it.

Records are hash-chained in write order (payments.chain): each one is numbered `ChainSeq` and
linked to the record numbered ChainSeq - 1, both found by a consistent Query of the payment's
records just before the write. The conditional put on the AuditID still decides: a record already
stored under that AuditID with the same content (chain fields aside) makes the write a no-op,
different content is an AuditConflict.

The writers of one payment's trail run one at a time (Step Functions runs CallProcessor's attempts
and then Audit in sequence; CallProcessor's Lambda timeout is shorter than its state's), so two
records never take one ChainSeq. Should two writers ever race (CallProcessor invoked by hand during
a payment), both records stand and the verifier names the shared ChainSeq for someone to look at.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from payments import aws, chain
from payments.errors import LedgerConflict

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


@dataclass(frozen=True)
class ProcessorCallRecord:
    """What CallProcessor reports of one call; carried in the state until Audit stores it."""

    AuditID: str  # <CreatedAt>#<Operation>#<Attempt>: unique per call and sortable by time
    Operation: str
    Attempt: int
    Outcome: str
    ResultCode: str
    LatencyMs: int
    EncryptedQuery: str
    EncryptedResponse: str | None
    Actor: str
    CreatedAt: str

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> ProcessorCallRecord:
        known = cls.__dataclass_fields__
        return cls(**{key: value for key, value in data.items() if key in known})


@dataclass(frozen=True)
class AuditRecord:
    TransactionID: str
    ExecutionArn: str
    call: ProcessorCallRecord

    def to_item(self) -> dict[str, Any]:
        values = {"TransactionID": self.TransactionID, "ExecutionArn": self.ExecutionArn, **asdict(self.call)}
        return {key: _serializer.serialize(value) for key, value in values.items() if value is not None}


class AuditConflict(LedgerConflict):
    """An audit record with this AuditID exists with different content; `existing` holds it."""

    def __init__(self, existing: dict[str, Any]) -> None:
        self.existing = existing
        super().__init__(f"audit record {existing.get('AuditID')} of {existing.get('TransactionID')} differs")


class AuditRepository:
    """Conditional appends to the audit table."""

    def __init__(self, table_name: str, client: Any | None = None) -> None:
        self.table_name = table_name
        self._client = client or aws.client("dynamodb")

    def append_record(self, record: AuditRecord) -> None:
        """Append `record` after the last one of its payment; a no-op if it is stored already."""
        item = record.to_item()
        seq, link = self._next_link(record.TransactionID)
        chained = chain.sealed({**item, chain.CHAIN_SEQ: {"N": str(seq)}}, link)
        taken = aws.append_item(self._client, self.table_name, chained, "the audit trail")
        if taken is not None and chain.content_of(taken) != item:
            raise AuditConflict({key: _deserializer.deserialize(value) for key, value in taken.items()})

    def _next_link(self, transaction_id: str) -> tuple[int, str]:
        """The ChainSeq a new record of this payment takes, and the EntryHash it links to."""
        items = aws.payment_items(
            self._client, self.table_name, transaction_id, "the audit trail", projection="AuditID, ChainSeq, EntryHash"
        )
        chained = [(seq, item) for item in items if (seq := chain.number_of(item, chain.CHAIN_SEQ))]
        if not chained:
            return 1, chain.GENESIS
        seq, last = max(chained, key=lambda pair: (pair[0], chain.string_of(pair[1], "AuditID") or ""))
        return seq + 1, chain.link_to(last)


def persist_payment_audit_trail(
    repository: AuditRepository, transaction_id: str, execution_arn: str, calls: list[ProcessorCallRecord]
) -> list[str]:
    """The contract's `persist_payment_audit_trail`: store one record per call. Returns their AuditIDs."""
    for call in calls:
        repository.append_record(AuditRecord(transaction_id, execution_arn, call))
    return [call.AuditID for call in calls]
