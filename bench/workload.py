"""Approved payments through the local stack, one at a time or N at once, timed from the intake invoke."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import boto3
from botocore.config import Config

from bench.counting import BENCH_MARK
from local import operations, payment_requests
from local.lambda_runtime import LambdaRuntime
from local.sandbox.terminal import APPROVING_CARDS
from local.stack import CREDENTIALS, StackInfo

CARDS = tuple(sorted(APPROVING_CARDS))
APPROVED = "PAYMENT-SUCCESS"
# The bench's clients say who they are in their User-Agent: the endpoint counter skips their requests.
BENCH_CONFIG = Config(user_agent_extra=BENCH_MARK)


class BenchStackInfo(StackInfo):
    """The stack as the bench (the upstream service) sees it: its own clients, marked BENCH_MARK, which
    the endpoint counter does not count (the intake invoke, DescribeExecution, GetExecutionHistory).

    One boto3 Session and client per thread and service, so that workers share nothing and
    starting a payment does not pay for making a client each time.
    """

    _local: threading.local

    @classmethod
    def of(cls, info: StackInfo) -> BenchStackInfo:
        bench_info = cls(**asdict(info))
        object.__setattr__(bench_info, "_local", threading.local())
        return bench_info

    def client(self, service: str, config: Config | None = None) -> Any:
        if config is not None:  # a client of its own, marked too (ours wins over the caller's user_agent_extra)
            return self._make(service, config.merge(BENCH_CONFIG))
        clients: dict[str, Any] = self._local.__dict__.setdefault("clients", {})
        if service not in clients:
            clients[service] = self._make(service, BENCH_CONFIG)
        return clients[service]

    def _make(self, service: str, config: Config) -> Any:
        session = boto3.session.Session()
        return session.client(
            service, endpoint_url=self.endpoint_url, region_name=self.region, config=config, **CREDENTIALS
        )


def payment_request(transaction_id: str, n: int) -> dict[str, Any]:
    """An approving request; the sandbox answers at once (no latency fault is set)."""
    number = CARDS[n % len(CARDS)]
    return payment_requests.card_request(transaction_id, number=number, description="bench")


@dataclass
class PaymentResult:
    transaction_id: str
    execution_arn: str | None = None
    status: str | None = None  # the execution's
    payment_status: str | None = None  # the output's Status
    client_ms: float | None = None  # the intake invoke sent -> DescribeExecution of the finished execution
    service_ms: float | None = None  # the execution's startDate -> stopDate
    start_date: datetime | None = None  # when the service accepted StartExecution
    error: str | None = None

    @property
    def approved(self) -> bool:
        return self.status == "SUCCEEDED" and self.payment_status == APPROVED


@dataclass
class RunResult:
    concurrency: int
    payments: list[PaymentResult]
    wall_seconds: float

    @property
    def approved(self) -> list[PaymentResult]:
        return [payment for payment in self.payments if payment.approved]

    @property
    def failures(self) -> list[PaymentResult]:
        return [payment for payment in self.payments if not payment.approved]


def run_payments(info: StackInfo, transaction_ids: list[str], concurrency: int) -> RunResult:
    def pay(indexed: tuple[int, str]) -> PaymentResult:
        n, transaction_id = indexed
        return run_one(info, payment_request(transaction_id, n))

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="bench-upstream") as pool:
        results = list(pool.map(pay, enumerate(transaction_ids)))
    return RunResult(concurrency, results, time.perf_counter() - started)


def run_one(info: StackInfo, request: dict[str, Any]) -> PaymentResult:
    result = PaymentResult(request["TransactionID"])
    started = time.perf_counter()
    try:
        result.execution_arn = operations.start_payment(info, request)
        description = operations.wait_for_execution(info, result.execution_arn, timeout_seconds=120)
    except Exception as error:  # a failed payment is a result to report, not a reason to stop the run
        result.error = f"{type(error).__name__}: {error}"
        return result
    result.client_ms = (time.perf_counter() - started) * 1000
    result.status = description["status"]
    result.start_date = description["startDate"]
    result.service_ms = (description["stopDate"] - result.start_date).total_seconds() * 1000
    if description.get("output"):
        result.payment_status = json.loads(description["output"]).get("Status")
    else:
        result.error = f"{description.get('error')}: {description.get('cause')}"
    return result


@dataclass
class HandlerTimer:
    """Wall time of each Lambda invoke as the runtime makes it (the handler in its worker process, its JSON,
    its environment and the round trip to the worker), per function.

    It wraps LambdaRuntime.invoke on this runtime instance only (it runs in this process, beside moto):
    what Lambda would bill as Duration, without the interpreter's HTTP round trip to the Lambda API.
    """

    samples: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    _active: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self, runtime: LambdaRuntime) -> None:
        original: Callable[..., bytes] = runtime.invoke

        def invoke(
            backend: Any, function_name: str, qualifier: str | None, body: Any, headers: dict[str, str]
        ) -> bytes:
            started = time.perf_counter()
            try:
                return original(backend, function_name, qualifier, body, headers)
            finally:
                self._record(function_name, (time.perf_counter() - started) * 1000)

        runtime.invoke = invoke  # type: ignore[method-assign,assignment]

    def start(self) -> None:
        with self._lock:
            self.samples = defaultdict(list)
            self._active = True

    def stop(self) -> dict[str, list[float]]:
        with self._lock:
            self._active = False
            return dict(self.samples)

    def _record(self, function_name: str, ms: float) -> None:
        # The interpreter invokes by ARN: arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]
        name = function_name.split(":")[6] if function_name.startswith("arn:") else function_name
        with self._lock:
            if self._active:
                self.samples[name].append(ms)
