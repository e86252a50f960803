"""Counts the AWS requests that reach the local stack's endpoint, from any process, as CloudTrail would see them.

The handlers run in worker processes (local.lambda_worker), so no hook in this process could see
their calls; the endpoint sees every one: the handlers' (DynamoDB, KMS, EventBridge, Step Functions),
the Step Functions interpreter's Lambda invokes, the stream pump's (DynamoDB Streams reads and its
LedgerEvents invokes). `EndpointCounter.observe` is given to `LocalStack.observe_requests` and is
called once per request, with the request and moto's answer together, on the server thread that
answered it: each request is attributed from its own content, whatever else runs at the same time.

- Service and operation from botocore's service models: the `X-Amz-Target` header for the JSON
  protocols (`DynamoDB_20120810.PutItem`, `TrentService.Decrypt`...); for the REST protocols (Lambda's
  `POST /2015-03-31/functions/<name>/invocations` is Invoke) the method and path against the
  operations' request URIs, among the services that sign with the request's credential scope; for
  the query protocol, the `Action` parameter. Service names are botocore's hyphenized service ids,
  as in its event names: dynamodb, dynamodb-streams, kms, lambda, sfn, eventbridge.
- A call is a request that is its client's first attempt (botocore's `amz-sdk-request: attempt=1`
  header, or none); every request is an HTTP request, retries included.
- Excluded: requests whose User-Agent carries BENCH_MARK (the bench's own clients, made with
  `botocore.config.Config(user_agent_extra=BENCH_MARK)`: the intake invoke that starts a payment,
  DescribeExecution, GetExecutionHistory), counted apart as `excluded_requests`. The stack's own
  `/_local/...` routes never reach the observer.
- From the JSON bodies: the KMS EncryptionContext's purpose (and transaction_id, to find the most any
  one payment needed); DynamoDB write request units from the written item (its size by DynamoDB's
  rule), read request units from the items in the answer.

Counting happens only between `start` and `stop`.
"""

from __future__ import annotations

import base64
import json
import math
import re
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import botocore.session

from local.stack import ObservedRequest

# In the User-Agent of the bench's own clients (user_agent_extra): their requests are not counted.
BENCH_MARK = "bench-upstream"
# The services whose models identify requests: those the stack provisions and the functions call.
SERVICES = (
    "dynamodb",
    "dynamodbstreams",
    "kms",
    "lambda",
    "stepfunctions",
    "events",
    "sqs",
    "s3",
    "secretsmanager",
    "iam",
    "sts",
)
UNKNOWN = "(unknown)"
DYNAMODB_READS = frozenset({"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"})
DYNAMODB_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,]+/\d{8}/[^/,]+/([^/,]+)/aws4_request")
_ATTEMPT = re.compile(r"attempt=(\d+)")


@dataclass(frozen=True)
class CallCounts:
    """What one measured run made, in total."""

    calls: dict[tuple[str, str], int]  # (service, operation) -> API calls (first attempts)
    http_requests: dict[str, int]  # service -> HTTP requests (retries included)
    kms_by_purpose: dict[tuple[str, str], int]  # (operation, encryption-context purpose) -> calls
    dynamodb_write_units: float
    dynamodb_read_units: float
    # table -> (writes, their write units, PutItems, the PutItems' item bytes)
    dynamodb_writes_by_table: dict[str, tuple[int, float, int, int]]
    # (operation, purpose) -> the most calls any one payment (the context's transaction_id) made
    kms_most_per_payment: dict[tuple[str, str], int]
    excluded_requests: int  # the bench's own (BENCH_MARK), not counted above

    def of_service(self, service: str) -> int:
        return sum(count for (name, _), count in self.calls.items() if name == service)


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    query_keys: frozenset[str]  # query parameters the request URI names literally (`?uploads`)
    literal: int  # characters of the URI that are not placeholders: the more, the more specific
    service: str
    operation: str


class OperationIndex:
    """Service and operation of a request, from botocore's service models."""

    def __init__(self, services: tuple[str, ...] = SERVICES) -> None:
        session = botocore.session.get_session()
        self._by_target: dict[str, tuple[str, frozenset[str]]] = {}  # targetPrefix -> (service, operations)
        self._routes: dict[str, list[_Route]] = {}  # signing name -> REST routes
        self._query: dict[str, str] = {}  # signing name -> service (query protocol)
        for name in services:
            model = session.get_service_model(name)
            service = model.service_id.hyphenize()
            prefix = model.metadata.get("targetPrefix")
            if prefix:
                self._by_target[prefix] = (service, frozenset(model.operation_names))
            elif model.protocol in ("rest-json", "rest-xml"):
                routes = self._routes.setdefault(model.signing_name, [])
                for operation in model.operation_names:
                    http = model.operation_model(operation).http
                    routes.append(_route(http["method"], http["requestUri"], service, operation))
            else:
                self._query[model.signing_name] = service

    def identify(self, request: ObservedRequest) -> tuple[str, str]:
        target = request.headers.get("x-amz-target", "")
        if target:
            prefix, _, operation = target.rpartition(".")
            service, operations = self._by_target.get(prefix, (UNKNOWN, frozenset()))
            return service, operation if operation in operations else target
        scope = _CREDENTIAL_SCOPE.search(request.headers.get("authorization", ""))
        signing_name = scope.group(1) if scope else ""
        if signing_name in self._query:
            parameters = dict(parse_qsl(request.query))
            if "form-urlencoded" in request.headers.get("content-type", ""):
                parameters |= dict(parse_qsl(request.body.decode(errors="replace")))
            return self._query[signing_name], parameters.get("Action", UNKNOWN)
        query_keys = {key for key, _ in parse_qsl(request.query, keep_blank_values=True)}
        matches = [
            route
            for route in self._routes.get(signing_name, [])
            if route.method == request.method and route.query_keys <= query_keys and route.pattern.match(request.path)
        ]
        if not matches:
            return signing_name or UNKNOWN, UNKNOWN
        best = max(matches, key=lambda route: (len(route.query_keys), route.literal))
        return best.service, best.operation


def _route(method: str, request_uri: str, service: str, operation: str) -> _Route:
    path, _, query = request_uri.partition("?")
    pattern, literal = "", 0
    for part in re.split(r"(\{[^}]+\})", path):
        if part.startswith("{"):
            pattern += ".+" if part.endswith("+}") else "[^/]+"
        else:
            pattern += re.escape(part)
            literal += len(part)
    keys = frozenset(item.partition("=")[0] for item in query.split("&") if item)
    return _Route(method, re.compile(f"^{pattern}/?$"), keys, literal, service, operation)


class EndpointCounter:
    """Give `observe` to LocalStack.observe_requests; `start` and `stop` around what is measured."""

    def __init__(self, index: OperationIndex | None = None) -> None:
        self._index = index or OperationIndex()
        self._lock = threading.Lock()
        self._active = False
        self._reset()

    def _reset(self) -> None:
        self._calls: Counter[tuple[str, str]] = Counter()
        self._http: Counter[str] = Counter()
        self._purposes: Counter[tuple[str, str]] = Counter()
        self._kms_per_payment: Counter[tuple[str, str, str]] = Counter()
        self._write_units = 0.0
        self._read_units = 0.0
        self._by_table: dict[str, tuple[int, float, int, int]] = {}
        self._excluded = 0

    def start(self) -> None:
        with self._lock:
            self._reset()
            self._active = True

    def stop(self) -> CallCounts:
        with self._lock:
            self._active = False
            most: dict[tuple[str, str], int] = {}
            for (operation, purpose, _), count in self._kms_per_payment.items():
                most[(operation, purpose)] = max(most.get((operation, purpose), 0), count)
            return CallCounts(
                calls=dict(self._calls),
                http_requests=dict(self._http),
                kms_by_purpose=dict(self._purposes),
                dynamodb_write_units=self._write_units,
                dynamodb_read_units=self._read_units,
                dynamodb_writes_by_table=dict(self._by_table),
                kms_most_per_payment=most,
                excluded_requests=self._excluded,
            )

    def observe(self, request: ObservedRequest) -> None:
        if not self._active:  # read again under the lock; this only spares an idle stack the parsing
            return
        if BENCH_MARK in request.headers.get("user-agent", ""):
            with self._lock:
                if self._active:
                    self._excluded += 1
            return
        service, operation = self._index.identify(request)
        attempt = _ATTEMPT.search(request.headers.get("amz-sdk-request", ""))
        first_attempt = attempt is None or attempt.group(1) == "1"
        kms = write = read = None
        if first_attempt and service == "kms":
            context = _json(request.body).get("EncryptionContext") or {}
            kms = (str(context.get("purpose", "(none)")), str(context.get("transaction_id", "(none)")))
        elif first_attempt and service == "dynamodb" and operation in DYNAMODB_WRITES:
            write = _write(operation, _json(request.body))
        elif service == "dynamodb" and operation in DYNAMODB_READS and request.status == 200:
            read = _read_units(_json(request.response), consistent=bool(_json(request.body).get("ConsistentRead")))
        with self._lock:
            if not self._active:
                return
            self._http[service] += 1
            if read is not None:
                self._read_units += read
            if not first_attempt:
                return
            self._calls[(service, operation)] += 1
            if kms is not None:
                purpose, transaction_id = kms
                self._purposes[(operation, purpose)] += 1
                self._kms_per_payment[(operation, purpose, transaction_id)] += 1
            if write is not None:
                table, units, item_bytes = write
                self._write_units += units
                writes, table_units, puts, put_bytes = self._by_table.get(table, (0, 0.0, 0, 0))
                put = operation == "PutItem"
                self._by_table[table] = (writes + 1, table_units + units, puts + put, put_bytes + item_bytes)


def _json(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _write(operation: str, params: dict[str, Any]) -> tuple[str, float, int]:
    """(table, write request units, item bytes) of a DynamoDB write as sent on the wire."""
    item_bytes = item_size(params.get("Item", {})) if operation == "PutItem" else 0
    return str(params.get("TableName", "(batch)")), _write_units(operation, params), item_bytes


def item_size(item: dict[str, Any]) -> int:
    """DynamoDB's item size: attribute names plus values, in bytes (the rule write units are billed by).

    Binary values may be bytes (botocore's parameters) or base64 text (the wire's JSON)."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: dict[str, Any]) -> int:
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return _number_size(inner)
    if kind == "B":
        return _binary_size(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(member.encode()) for member in inner)
    if kind == "NS":
        return sum(_number_size(member) for member in inner)
    if kind == "BS":
        return sum(_binary_size(member) for member in inner)
    if kind == "M":
        return 3 + sum(len(name.encode()) + _value_size(member) + 1 for name, member in inner.items())
    if kind == "L":
        return 3 + sum(_value_size(member) + 1 for member in inner)
    raise ValueError(f"unknown DynamoDB type {kind}")


def _binary_size(value: bytes | str) -> int:
    return len(value) if isinstance(value, bytes) else len(base64.b64decode(value))


def _number_size(text: str) -> int:
    digits = text.lstrip("-").replace(".", "").strip("0") or "0"
    return (len(digits) + 1) // 2 + 1


def _write_units(operation: str, params: dict[str, Any]) -> float:
    """PutItem exactly (1 unit per started KB). The others at 1 unit per item: UpdateItem and DeleteItem are
    billed by the size of the item they change, which the request does not carry, so this is a lower bound."""
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
