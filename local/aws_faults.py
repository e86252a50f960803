"""DynamoDB and KMS faults, answered the way AWS answers them, by a WSGI layer in front of moto.

Only calls that name a payment or an operation are considered (a ledger or audit PutItem carries
its TransactionID, an operation's its OperationID; a KMS call its encryption context), and only when
the schedule plans a fault for that payment or operation and call. Everything else passes straight
through to moto.

The layer also gives moto one guarantee DynamoDB makes and moto's threaded server does not: a
conditional write is atomic. moto checks a condition and then writes, with nothing between two
requests that arrive at once, so two appends to the same ledger slot could both succeed. Here
DynamoDB's writes reach moto one at a time.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterable
from typing import Any

from local.faults import FaultSchedule

_SERVICES = {"DynamoDB_20120810": "dynamodb", "TrentService": "kms"}
_ERRORS = {
    ("dynamodb", "throttle"): (
        400,
        "com.amazonaws.dynamodb.v20120810#ThrottlingException",
        "Throughput exceeds the current capacity for one or more global secondary indexes",
    ),
    ("dynamodb", "internal_error"): (
        500,
        "com.amazonaws.dynamodb.v20120810#InternalServerError",
        "Internal server error",
    ),
    ("kms", "throttle"): (400, "ThrottlingException", "Rate exceeded"),
    ("kms", "internal_error"): (500, "KMSInternalException", "An internal error occurred"),
}
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_DYNAMODB_WRITES = frozenset(
    {
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactWriteItems",
        "ExecuteStatement",
        "ExecuteTransaction",
    }
)


class AwsFaultMiddleware:
    def __init__(self, app: WsgiApp) -> None:
        self.app = app
        self.schedule: FaultSchedule | None = None
        self._writes = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        prefix, _, operation = environ.get("HTTP_X_AMZ_TARGET", "").partition(".")
        service = _SERVICES.get(prefix)
        if service == "dynamodb" and operation in _DYNAMODB_WRITES:
            with self._writes:
                return list(self._answer(environ, start_response, service, operation))
        return self._answer(environ, start_response, service, operation)

    def _answer(
        self, environ: dict[str, Any], start_response: Callable[..., Any], service: str | None, operation: str
    ) -> Iterable[bytes]:
        schedule = self.schedule
        if schedule is None or service is None:
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        fault = schedule.take(f"{service}:{operation}", _transaction_id(service, body))
        if fault is None:
            return self.app(environ, start_response)
        if fault == "lost_response":
            # Carried out by moto; the answer is lost on the way back.
            for _ in self.app(environ, lambda *args, **kwargs: None):
                pass
            fault = "internal_error"
        status, error_type, message = _ERRORS[(service, fault)]
        payload = json.dumps({"__type": error_type, "message": message}).encode()
        start_response(
            f"{status} {'Bad Request' if status == 400 else 'Internal Server Error'}",
            [
                ("Content-Type", "application/x-amz-json-1.0"),
                ("Content-Length", str(len(payload))),
                ("x-amzn-RequestId", "injected-fault"),
            ],
        )
        return [payload]


def _transaction_id(service: str, body: bytes) -> str | None:
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return None
    if service == "dynamodb":
        item = request.get("Item", {})
        value = (item.get("OperationID") or item.get("TransactionID") or {}).get("S")
    else:
        value = (request.get("EncryptionContext") or {}).get("transaction_id")
    if not isinstance(value, str):
        return None
    # An operation's entries carry its OperationID; its audit trail is "<TransactionID>/<OperationID>".
    return value.rpartition("/")[2]
