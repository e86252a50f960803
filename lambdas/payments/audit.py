"""The append-only audit trail: one record per processor call, payloads encrypted by the caller.

The Audit function only stores what CallProcessor already encrypted; it cannot read it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from payments import aws
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
        item = record.to_item()
        taken = aws.append_item(self._client, self.table_name, item, "the audit trail")
        if taken is not None and taken != item:
            raise AuditConflict({key: _deserializer.deserialize(value) for key, value in taken.items()})


def persist_payment_audit_trail(
    repository: AuditRepository, transaction_id: str, execution_arn: str, calls: list[ProcessorCallRecord]
) -> list[str]:
    """The contract's `persist_payment_audit_trail`: store one record per call. Returns their AuditIDs."""
    for call in calls:
        repository.append_record(AuditRecord(transaction_id, execution_arn, call))
    return [call.AuditID for call in calls]
