"""Counts the AWS API calls made in this process, through botocore's own event hooks.

Every botocore Session created after `install` gets the hooks, and so does every client made
from it: the handlers' boto3 sessions (payments.aws), the Encryption SDK's botocore session
(Powertools' KMSKeyProvider) and the boto3 clients moto's Step Functions interpreter makes to
invoke Lambda. The bench's own clients (StartExecution, polling, history) are excluded one by
one with `exclude`. Counting happens only between `start` and `stop`.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.session

_HOOK_PREFIX = "bench-call-counter"
DYNAMODB_READS = frozenset({"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"})
DYNAMODB_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})


@dataclass(frozen=True)
class CallCounts:
    """What one measured run made, in total."""

    calls: dict[tuple[str, str], int]  # (service, operation) -> API calls
    http_requests: dict[str, int]  # service -> HTTP requests sent (retries included)
    kms_by_purpose: dict[tuple[str, str], int]  # (operation, encryption-context purpose) -> calls
    dynamodb_write_units: float
    dynamodb_read_units: float
    dynamodb_writes_by_table: dict[str, tuple[int, float, int]]  # table -> (writes, write units, item bytes)

    def of_service(self, service: str) -> int:
        return sum(count for (name, _), count in self.calls.items() if name == service)


class CallCounter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active = False
        self._calls: Counter[tuple[str, str]] = Counter()
        self._http: Counter[str] = Counter()
        self._purposes: Counter[tuple[str, str]] = Counter()
        self._write_units = 0.0
        self._read_units = 0.0
        self._by_table: dict[str, tuple[int, float, int]] = {}
        self._hooks: dict[str, Callable[..., None]] = {
            "before-parameter-build": self._on_parameters,
            "before-call": self._on_call,
            "before-send": self._on_send,
            "after-call": self._on_result,
        }

    def start(self) -> None:
        with self._lock:
            self._calls.clear()
            self._http.clear()
            self._purposes.clear()
            self._by_table.clear()
            self._write_units = self._read_units = 0.0
            self._active = True

    def stop(self) -> CallCounts:
        with self._lock:
            self._active = False
            return CallCounts(
                dict(self._calls),
                dict(self._http),
                dict(self._purposes),
                self._write_units,
                self._read_units,
                dict(self._by_table),
            )

    def attach(self, session: botocore.session.Session) -> None:
        for event, handler in self._hooks.items():
            session.register(event, handler, unique_id=f"{_HOOK_PREFIX}:{event}")

    def exclude(self, client: Any) -> Any:
        """Take the hooks off one client (its emitter is a copy of its session's); returns the client."""
        for event in self._hooks:
            client.meta.events.unregister(event, unique_id=f"{_HOOK_PREFIX}:{event}")
        return client

    # botocore calls hooks with keyword arguments only; a hook that returns a value could answer
    # the call in the service's place, so every hook here returns None.

    def _on_parameters(self, event_name: str, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        service, operation = _service_and_operation(event_name)
        if service == "kms":
            context["bench_purpose"] = str((params.get("EncryptionContext") or {}).get("purpose", "(none)"))
        elif service == "dynamodb" and operation in DYNAMODB_WRITES:
            context["bench_write_units"] = _write_units(operation, params)
            context["bench_table"] = str(params.get("TableName", "(batch)"))
            context["bench_item_bytes"] = item_size(params["Item"]) if operation == "PutItem" else 0
        elif service == "dynamodb" and operation in DYNAMODB_READS:
            context["bench_consistent"] = bool(params.get("ConsistentRead"))

    def _on_call(self, event_name: str, context: dict[str, Any], **_: Any) -> None:
        service, operation = _service_and_operation(event_name)
        with self._lock:
            if not self._active:
                return
            self._calls[(service, operation)] += 1
            if "bench_purpose" in context:
                self._purposes[(operation, context["bench_purpose"])] += 1
            if "bench_write_units" in context:
                units = context["bench_write_units"]
                self._write_units += units
                writes, table_units, item_bytes = self._by_table.get(context["bench_table"], (0, 0.0, 0))
                self._by_table[context["bench_table"]] = (
                    writes + 1,
                    table_units + units,
                    item_bytes + context["bench_item_bytes"],
                )

    def _on_send(self, event_name: str, **_: Any) -> None:
        service, _operation = _service_and_operation(event_name)
        with self._lock:
            if self._active:
                self._http[service] += 1

    def _on_result(self, event_name: str, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if "bench_consistent" not in context:
            return
        units = _read_units(parsed, consistent=context["bench_consistent"])
        with self._lock:
            if self._active:
                self._read_units += units


_installed: CallCounter | None = None


def install(counter: CallCounter) -> None:
    """Hook every botocore Session created from now on (and boto3's default one, if it exists)."""
    global _installed
    if _installed is not None:
        raise RuntimeError("a call counter is already installed in this process")
    _installed = counter
    original = botocore.session.Session.__init__

    def hooked_init(self: botocore.session.Session, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        counter.attach(self)

    botocore.session.Session.__init__ = hooked_init
    if boto3.DEFAULT_SESSION is not None:
        counter.attach(boto3.DEFAULT_SESSION._session)


def _service_and_operation(event_name: str) -> tuple[str, str]:
    # e.g. before-call.dynamodb.PutItem; the service part is botocore's hyphenized service id.
    _, service, operation = event_name.split(".", 2)
    return service, operation


def item_size(item: dict[str, Any]) -> int:
    """DynamoDB's item size: attribute names plus values, in bytes (the rule write units are billed by)."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: dict[str, Any]) -> int:
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return _number_size(inner)
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(member.encode()) for member in inner)
    if kind == "NS":
        return sum(_number_size(member) for member in inner)
    if kind == "BS":
        return sum(len(member) for member in inner)
    if kind == "M":
        return 3 + sum(len(name.encode()) + _value_size(member) + 1 for name, member in inner.items())
    if kind == "L":
        return 3 + sum(_value_size(member) + 1 for member in inner)
    raise ValueError(f"unknown DynamoDB type {kind}")


def _number_size(text: str) -> int:
    digits = text.lstrip("-").replace(".", "").strip("0") or "0"
    return (len(digits) + 1) // 2 + 1


def _write_units(operation: str, params: dict[str, Any]) -> float:
    """PutItem exactly (1 unit per started KB); the others, which the handlers do not use, at 1 unit per item."""
    if operation == "PutItem":
        return float(max(1, math.ceil(item_size(params.get("Item", {})) / 1024)))
    if operation == "BatchWriteItem":
        return float(sum(len(requests) for requests in params.get("RequestItems", {}).values()))
    if operation == "TransactWriteItems":
        return 2.0 * len(params.get("TransactItems", []))
    return 1.0


def _read_units(parsed: dict[str, Any], consistent: bool) -> float:
    items = parsed.get("Items") or ([parsed["Item"]] if parsed.get("Item") else [])
    size = sum(item_size(item) for item in items)
    units = max(1, math.ceil(size / 4096))
    return float(units if consistent else units / 2)
