"""The append-only PaymentLedger (docs/architecture.md#ledger-and-audit-model).

Entry 1 is PAYMENT-INITIATED, 2 PAYMENT-PENDING, the last one terminal. Every write is a
conditional put: a retried write of the same entry is a no-op success, a write that would
change an existing entry is a LedgerConflict. Nothing here updates or deletes.

Entries are hash-chained (payments.chain): entry n's PrevHash is entry n-1's EntryHash, read
consistently before the write. A retry of entry n reads the same entry n-1, so it links the same
way; its EntryHash differs only through CreatedAt, which the comparison ignores.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import asdict, dataclass
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from payments import aws, chain, topology
from payments.errors import LedgerConflict, StorageUnavailable

INITIATED = "PAYMENT-INITIATED"
PENDING = "PAYMENT-PENDING"
SUCCESS = "PAYMENT-SUCCESS"
AUTHORIZED = "PAYMENT-AUTHORIZED"  # capture manual: the processor holds the amount; a capture takes it
DECLINED = "PAYMENT-DECLINED"
FAILED = "PAYMENT-FAILED"
TERMINAL_STATUSES = frozenset({SUCCESS, AUTHORIZED, DECLINED, FAILED})
APPROVED_STATUSES = frozenset({SUCCESS, AUTHORIZED})
# Status sync's reversal of a charge the processor approved after the payment had ended FAILED with its
# outcome unknown (the caller was told it failed): REVERSING before the void or return is sent,
# REVERSED once the processor approved it. Neither is an approval: nothing can be captured,
# voided or refunded after them.
REVERSING = "PAYMENT-REVERSING"
REVERSED = "PAYMENT-REVERSED"
# A fact from reconciliation: the payment's charge is in a batch the processor has settled.
SETTLED = "PAYMENT-SETTLED"
# Entries after the payment's terminal one that change no balance of it (payments.operations).
FACT_STATUSES = frozenset({REVERSING, REVERSED, SETTLED})
# Failure reasons that prove no money moved: any other failure after the processor call leaves the
# outcome unknown (PROCESSOR_OUTCOME_UNKNOWN) until status sync resolves it. NOT_CHARGED is status
# sync's answer: the processor holds nothing under the reference.
NOT_CHARGED = "NOT_CHARGED"
NOTHING_SENT_REASONS = frozenset(
    {"PROCESSOR_REJECTED", "PROCESSOR_UNAVAILABLE", "CARD_NOT_IN_VAULT", "CHARGE_REFUSED", "NOT_SENT", NOT_CHARGED}
)
LAST_ENTRY_NUMBER = 3

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
# Fields that may differ between two writes of the same entry: a retry writes a new timestamp,
# hence another EntryHash (and a caller's entry has no chain fields until it is written).
_VOLATILE_FIELDS = frozenset({"CreatedAt", chain.PREV_HASH, chain.ENTRY_HASH})


@dataclass(frozen=True)
class LedgerEntry:
    TransactionID: str
    EntryNumber: int
    Status: str
    SecureToken: str
    Amount: str
    Currency: str
    ProcessorID: str
    ExecutionArn: str
    CreatedAt: str
    CardBrand: str | None = None
    CardLast4: str | None = None
    ProcessorTransactionID: str | None = None
    ApprovalCode: str | None = None
    ReasonCode: str | None = None
    ReasonMessage: str | None = None
    # Who asked for the payment: through the intake (its Lambda request id names the CloudTrail Invoke
    # event, and so the principal) or by a direct StartExecution (CloudTrail's event for ExecutionArn).
    StartedVia: str | None = None
    IntakeRequestId: str | None = None
    Capture: str | None = None  # automatic (a sale) or manual (an authorization)
    OperationID: str | None = None  # a capture's, void's or refund's entries: Amount is the operation's
    # On an operation's entries: the payment's balances once this entry stands, written by the same
    # conditional put as the entry (payments.operations.balances_of over the history up to it).
    Captured: str | None = None
    Refunded: str | None = None
    # Written by status sync or reconciliation, not by the payment's or operation's own execution:
    # what resolved it (payments.status_sync.Resolution) or SETTLED.
    Resolution: str | None = None
    PrevHash: str | None = None  # set by LedgerRepository.append_entry
    EntryHash: str | None = None

    @property
    def is_terminal(self) -> bool:
        return self.Status in TERMINAL_STATUSES

    def to_item(self) -> dict[str, Any]:
        return {key: _serializer.serialize(value) for key, value in asdict(self).items() if value is not None}

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> LedgerEntry:
        values = {key: _deserializer.deserialize(value) for key, value in item.items()}
        values["EntryNumber"] = int(values["EntryNumber"])
        known = cls.__dataclass_fields__
        return cls(**{key: value for key, value in values.items() if key in known})

    def same_content_as(self, other: LedgerEntry) -> bool:
        mine = {k: v for k, v in asdict(self).items() if k not in _VOLATILE_FIELDS}
        theirs = {k: v for k, v in asdict(other).items() if k not in _VOLATILE_FIELDS}
        return mine == theirs


class EntryAlreadyExists(LedgerConflict):
    """The slot is taken by a different entry; `existing` says by what."""

    def __init__(self, existing: LedgerEntry) -> None:
        self.existing = existing
        super().__init__(
            f"ledger entry {existing.EntryNumber} of {existing.TransactionID} already exists "
            f"with status {existing.Status} from {existing.ExecutionArn}"
        )


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class LedgerRepository:
    """Conditional appends to the PaymentLedger table."""

    def __init__(self, table_name: str, client: Any | None = None) -> None:
        self.table_name = table_name
        self._client = client or aws.client("dynamodb")

    def append_entry(self, entry: LedgerEntry) -> LedgerEntry:
        """Write `entry`, linked to entry n-1, unless its slot is taken. Returns what the ledger holds
        for that slot, chain fields included."""
        item = chain.sealed(entry.to_item(), self._link_before(entry))
        taken = aws.append_item(self._client, self.table_name, item, "the ledger")
        if taken is None:
            return LedgerEntry.from_item(item)
        existing = LedgerEntry.from_item(taken)
        if existing.same_content_as(entry):
            return existing
        raise EntryAlreadyExists(existing)

    def _link_before(self, entry: LedgerEntry) -> str:
        """The EntryHash of entry n-1 (GENESIS for entry 1), read consistently.

        Always entry n-1, never "the latest": a retry must link exactly as the first write did.
        Entries are written in order, so n-1 is there; if it is not (removed behind our back), the
        entry is written all the same, linked to GENESIS: the ledger must still record what happened
        to the money, and the verifier names the gap.
        """
        if entry.EntryNumber == 1:
            return chain.GENESIS
        key = {"TransactionID": {"S": entry.TransactionID}, "EntryNumber": {"N": str(entry.EntryNumber - 1)}}
        found = aws.call_with_transient_mapping(
            lambda: self._client.get_item(
                TableName=self.table_name,
                Key=key,
                ProjectionExpression="EntryNumber, EntryHash",
                ConsistentRead=True,
            ),
            StorageUnavailable,
            "DynamoDB GetItem on the ledger",
        )
        return chain.link_to(found.get("Item"))

    def entries_with_status(self, status: str, since: str, until: str) -> list[dict[str, Any]]:
        """Entries of one Status with since <= CreatedAt < until (ISO 8601 UTC), oldest first, as the
        EntriesByStatus index carries them: keys, Status, CreatedAt and its projected attributes."""
        index = topology.ENTRIES_BY_STATUS
        found: list[dict[str, Any]] = []
        start: dict[str, Any] | None = None
        while True:
            request: dict[str, Any] = {
                "TableName": self.table_name,
                "IndexName": index.name,
                "KeyConditionExpression": "#status = :status AND #created BETWEEN :since AND :until",
                "ExpressionAttributeNames": {"#status": "Status", "#created": "CreatedAt"},
                "ExpressionAttributeValues": {":status": {"S": status}, ":since": {"S": since}, ":until": {"S": until}},
            }
            if start:
                request["ExclusiveStartKey"] = start
            page = aws.call_with_transient_mapping(
                functools.partial(self._client.query, **request),
                StorageUnavailable,
                f"DynamoDB Query on {index.name}",
            )
            found.extend(
                {key: _deserializer.deserialize(value) for key, value in item.items()}
                for item in page.get("Items", [])
                if item["CreatedAt"]["S"] < until
            )
            start = page.get("LastEvaluatedKey")
            if not start:
                return found

    def entries(self, transaction_id: str) -> list[LedgerEntry]:
        """Every entry of one payment, in order, read consistently."""
        items = aws.payment_items(self._client, self.table_name, transaction_id, "the ledger")
        found = [LedgerEntry.from_item(item) for item in items]
        return sorted(found, key=lambda entry: entry.EntryNumber)


def persist_payment_ledger(repository: LedgerRepository, entry: LedgerEntry) -> LedgerEntry:
    """The contract's `persist_payment_ledger`: append one entry, idempotently."""
    return repository.append_entry(entry)


def persist_terminal_entry(repository: LedgerRepository, entry: LedgerEntry) -> LedgerEntry:
    """Append the one terminal entry after the last one this execution wrote.

    The caller's idea of the last entry can be stale (a step wrote its entry but its response
    was lost), so an entry of this same execution found in the slot moves us to the next slot;
    a terminal one already written by this execution is returned as is: there is only ever one.
    """
    number = entry.EntryNumber
    while True:
        candidate = LedgerEntry(**{**asdict(entry), "EntryNumber": number})
        try:
            return persist_payment_ledger(repository, candidate)
        except EntryAlreadyExists as conflict:
            existing = conflict.existing
            if existing.ExecutionArn != entry.ExecutionArn:
                raise
            if existing.is_terminal:
                return existing
            if number >= LAST_ENTRY_NUMBER:
                raise
            number += 1
