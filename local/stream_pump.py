"""The local stand-in for Lambda's event source mapping: the ledger table's stream, delivered to LedgerEvents.

moto keeps a table's stream but runs no event source mapping, so this thread does what the mapping
does in AWS, with its semantics:

- it reads every shard of the stream from its start (shards found as they appear), in order;
- it invokes the function through the Lambda API (so the in-process runtime and its injected
  faults apply) with batches of up to `batch_size` records, each record shaped exactly as the
  mapping delivers it (eventID, eventName, eventSource, awsRegion, dynamodb, eventSourceARN);
- at least once: an invoke that fails (the service errs, the response is lost, the function
  errs) is retried with the same batch after a backoff, indefinitely (the mapping's default);
  a response naming `batchItemFailures` has the batch retried from the first failed record on
  (a failure naming no record of the batch fails the whole batch).

It reads the stream when there can be something new: every `poll_seconds` (100 ms) if a DynamoDB
write has reached the stack since its last read (`notice_write`, called by the stack's endpoint),
and at least every `idle_poll_seconds` (5 s) whatever happens: an idle stack costs next to nothing.

`caught_up(timeout)` waits until every record the stream holds at the moment of asking has been
delivered: a poll that starts after the question must find nothing left to deliver. `disable()` and
`enable()` do what UpdateEventSourceMapping's Enabled does: records wait in the stream meanwhile.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

log = logging.getLogger(__name__)

ClientFactory = Callable[[str, Config | None], Any]
# The mapping's own retries are the pump's: botocore's would retry a lost response on its own.
_LAMBDA_CONFIG = Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=120)
_STREAMS_CONFIG = Config(retries={"total_max_attempts": 3, "mode": "standard"}, connect_timeout=2, read_timeout=10)


@dataclass
class _Shard:
    shard_id: str
    iterator: str | None = None
    last_read: str | None = None  # SequenceNumber of the last record read (not necessarily delivered)
    pending: list[dict[str, Any]] = field(default_factory=list)  # read, not yet delivered, in order
    retry: int = 0  # the size of the batch that failed as a whole: retried as it was
    closed: bool = False  # read to its end: a closed shard, every record read


class StreamPump:
    def __init__(
        self,
        client: ClientFactory,
        table_name: str,
        function_name: str,
        batch_size: int = 100,
        poll_seconds: float = 0.1,
        idle_poll_seconds: float = 5.0,
        shard_refresh_seconds: float = 1.0,
        max_backoff_seconds: float = 2.0,
    ) -> None:
        self.table_name = table_name
        self.function_name = function_name
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.idle_poll_seconds = idle_poll_seconds
        self._writes = 0  # DynamoDB writes the stack has answered (the ledger's among them)
        self.shard_refresh_seconds = shard_refresh_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self._client = client
        self._stream_arn = ""
        self._shards: dict[str, _Shard] = {}  # in the order the stream lists them: parents first
        self._shards_listed = 0.0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._progress = threading.Condition()
        self._cycles_started = 0
        self._cycles_drained = 0  # the last cycle that left nothing to deliver
        self._list_requested = False  # a caught_up question: the next cycle lists the shards afresh
        self._enabled = True
        self._running = False  # a cycle is under way
        self._thread: threading.Thread | None = None
        # What it did, for tests and diagnostics.
        self.delivered = 0  # records delivered (a record retried after a failure counts again)
        self.invocations = 0
        self.failures = 0
        self.last_error = ""

    def start(self) -> None:
        self._stream_arn = self._client("dynamodb", None).describe_table(TableName=self.table_name)["Table"][
            "LatestStreamArn"
        ]
        self._streams = self._client("dynamodbstreams", _STREAMS_CONFIG)
        self._lambda = self._client("lambda", _LAMBDA_CONFIG)
        self._thread = threading.Thread(target=self._run, name=f"stream-pump-{self.table_name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._progress:
            self._progress.notify_all()

    def notice_write(self) -> None:
        """A DynamoDB write has been carried out: the stream may hold a new record."""
        self._writes += 1

    def disable(self) -> None:
        """No more deliveries until `enable()`; returns once a delivery under way has ended."""
        with self._progress:
            self._enabled = False
            while self._running and self._thread is not None and self._thread.is_alive():
                self._progress.wait(1.0)

    def enable(self) -> None:
        with self._progress:
            self._enabled = True
            self._wake.set()

    def caught_up(self, timeout: float) -> bool:
        """True once every record the stream holds now has been delivered; False if `timeout` seconds
        pass first (the function keeps failing, say, or the pump is disabled) or the pump is not running."""
        deadline = time.monotonic() + timeout
        with self._progress:
            # The poll under way may have read the stream before the last records were written.
            needed = self._cycles_started + 1
            self._list_requested = True
            self._wake.set()
            while self._cycles_drained < needed:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stop.is_set() or self._thread is None or not self._thread.is_alive():
                    return False
                self._progress.wait(min(remaining, 1.0))
        return True

    def _run(self) -> None:
        backoff = 0.0
        writes_read, last_read = -1, 0.0  # the writes noticed when the last poll began, and when
        while not self._stop.is_set():
            with self._progress:
                asked = self._wake.is_set()
                self._wake.clear()
                due = (
                    asked
                    or backoff > 0  # a failed batch waits to be retried
                    or self._writes != writes_read
                    or time.monotonic() - last_read >= self.idle_poll_seconds
                )
                self._running = self._enabled and due
                if self._running:
                    writes_read, last_read = self._writes, time.monotonic()
                    self._cycles_started += 1
                    cycle = self._cycles_started
                    list_shards, self._list_requested = self._list_requested, False
            if not self._running:
                self._wake.wait(self.poll_seconds)
                continue
            try:
                drained = self._cycle(list_shards)
            except Exception as error:  # the pump outlives any error: it is retried like a failed batch
                drained = False
                self._failed(f"stream pump: {type(error).__name__}: {error}")
            with self._progress:
                self._running = False
                if drained:
                    self._cycles_drained = cycle
                self._progress.notify_all()
            if drained:
                backoff = 0.0
                self._wake.wait(self.poll_seconds)
            else:
                backoff = min(self.max_backoff_seconds, max(0.1, backoff * 2))
                self._stop.wait(backoff)

    def _cycle(self, list_shards: bool) -> bool:
        """Read and deliver until nothing is left; False at the first failure (retried after a backoff)."""
        self._list_shards(list_shards)
        for shard in self._shards.values():
            while not self._stop.is_set():
                self._read(shard)
                if not shard.pending:
                    break
                if not self._deliver(shard):
                    return False
        return not self._stop.is_set()

    def _list_shards(self, now_required: bool) -> None:
        """New shards appear over time: listed every `shard_refresh_seconds`, and for every caught_up question."""
        now = time.monotonic()
        if self._shards and now - self._shards_listed < self.shard_refresh_seconds and not now_required:
            return
        self._shards_listed = now
        kwargs: dict[str, Any] = {"StreamArn": self._stream_arn}
        while True:
            description = self._streams.describe_stream(**kwargs)["StreamDescription"]
            for listed in description["Shards"]:
                self._shards.setdefault(listed["ShardId"], _Shard(listed["ShardId"]))
            if not description.get("LastEvaluatedShardId"):
                return
            kwargs["ExclusiveStartShardId"] = description["LastEvaluatedShardId"]

    def _read(self, shard: _Shard) -> None:
        """Reads on until a batch is pending or the shard has nothing more for now."""
        while not shard.closed and len(shard.pending) < self.batch_size:
            if shard.iterator is None:
                shard.iterator = self._new_iterator(shard)
            try:
                page = self._streams.get_records(
                    ShardIterator=shard.iterator, Limit=self.batch_size - len(shard.pending)
                )
            except ClientError:
                # Expired (a batch failed for longer than an iterator lives): a new one from where reading stopped.
                shard.iterator = None
                raise
            shard.pending += page["Records"]
            if page["Records"]:
                shard.last_read = page["Records"][-1]["dynamodb"]["SequenceNumber"]
            shard.iterator = page.get("NextShardIterator")
            if shard.iterator is None:
                shard.closed = True
            if not page["Records"]:
                return

    def _new_iterator(self, shard: _Shard) -> str:
        position: dict[str, Any] = (
            {"ShardIteratorType": "TRIM_HORIZON"}
            if shard.last_read is None
            else {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": shard.last_read}
        )
        answer = self._streams.get_shard_iterator(StreamArn=self._stream_arn, ShardId=shard.shard_id, **position)
        return str(answer["ShardIterator"])

    def _deliver(self, shard: _Shard) -> bool:
        """Invokes the function with the first batch pending; True when the whole batch was delivered."""
        batch = shard.pending[: shard.retry or self.batch_size]
        event = {"Records": [self._lambda_record(record) for record in batch]}
        self.invocations += 1
        try:
            answer = self._lambda.invoke(FunctionName=self.function_name, Payload=json.dumps(event, default=_json))
            payload = answer["Payload"].read()
        except (ClientError, BotoCoreError) as error:
            shard.retry = len(batch)
            return self._failed(f"Invoke {self.function_name} failed: {error}")
        if answer.get("FunctionError"):
            shard.retry = len(batch)
            return self._failed(f"{self.function_name} failed ({answer['FunctionError']}): {payload[:300]!r}")
        failed = _failed_items(payload)
        first = next((i for i, record in enumerate(batch) if record["dynamodb"]["SequenceNumber"] in failed), None)
        if failed and first is None:
            shard.retry = len(batch)
            return self._failed(f"{self.function_name} named items not in the batch as failed: {sorted(failed)}")
        shard.retry = 0
        del shard.pending[: len(batch) if first is None else first]
        self.delivered += len(batch) if first is None else first
        if first is None:
            return True
        return self._failed(
            f"{self.function_name} failed {len(failed)} of {len(batch)} records; retried from record {first}"
        )

    def _lambda_record(self, record: dict[str, Any]) -> dict[str, Any]:
        """A record as the event source mapping delivers it: the stream's record, plus its stream's ARN."""
        return {
            "eventID": record["eventID"],
            "eventName": record["eventName"],
            "eventVersion": record.get("eventVersion", "1.1"),
            "eventSource": "aws:dynamodb",
            "awsRegion": record["awsRegion"],
            "dynamodb": record["dynamodb"],
            "eventSourceARN": self._stream_arn,
        }

    def _failed(self, message: str) -> bool:
        self.failures += 1
        self.last_error = message
        log.warning("%s", message)
        return False


def _failed_items(payload: bytes) -> set[str]:
    """The sequence numbers a response names in batchItemFailures ({""} for an entry naming none)."""
    try:
        response = json.loads(payload or b"null")
    except ValueError:
        return set()
    failures = response.get("batchItemFailures") if isinstance(response, dict) else None
    return {str(f.get("itemIdentifier") or "") if isinstance(f, dict) else "" for f in failures or []}


def _json(value: Any) -> Any:
    """As the mapping writes them: times as epoch seconds, binary attribute values as base64."""
    if isinstance(value, dt.datetime):
        return int(value.timestamp())
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
