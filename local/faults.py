"""Faults the local stack can inject, for tests, demos and the seeded chaos run.

Two ways to ask for one:
- a queue per Lambda function (`LambdaFaults.inject`), consumed by the next invocations;
- a schedule per payment (`FaultSchedule`): "the first N calls to <target> made for TransactionID T
  fail as <kind>". Keyed by TransactionID rather than by arrival order, the same seed gives the
  same faults however the concurrent payments interleave.

Lambda fault kinds:
  service_error  the invoke fails before the handler runs (Step Functions sees Lambda.ServiceException)
  lose_response  the handler runs, its side effects stand, the caller sees Lambda.ServiceException
  crash_after    the handler runs, then the function dies (Runtime.ExitError), as when killed after its work
AWS fault kinds (DynamoDB and KMS, answered by the fault middleware in front of moto):
  throttle       ThrottlingException, nothing done
  internal_error HTTP 500, nothing done
  lost_response  the request is carried out, the caller sees HTTP 500
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any, Literal

LambdaFault = Literal["service_error", "lose_response", "crash_after"]
LAMBDA_FAULTS = ("service_error", "lose_response", "crash_after")
AWS_FAULTS = ("throttle", "internal_error", "lost_response")


@dataclass
class ScheduledFault:
    target: str  # "dynamodb:PutItem", "kms:GenerateDataKey", "kms:Decrypt", "lambda:PaymentAudit", ...
    kind: str
    count: int = 1  # how many consecutive matching calls it hits
    label: str = ""  # how reports name it; target service and kind by default
    skip: int = 0  # matching calls to let through before the fault starts


class FaultSchedule:
    """Faults planned per TransactionID; `take` consumes them as matching calls arrive."""

    def __init__(self) -> None:
        self._planned: dict[str, list[ScheduledFault]] = defaultdict(list)
        self._lock = threading.Lock()
        self.injected: Counter[str] = Counter()

    def add(self, transaction_id: str, fault: ScheduledFault) -> None:
        with self._lock:
            self._planned[transaction_id].append(fault)

    def take(self, target: str, transaction_id: str | None) -> str | None:
        if not transaction_id:
            return None
        with self._lock:
            for fault in self._planned.get(transaction_id, ()):
                if fault.target == target and fault.count > 0:
                    if fault.skip > 0:
                        fault.skip -= 1
                        return None
                    fault.count -= 1
                    self.injected[fault.label or f"{target.split(':')[0]}:{fault.kind}"] += 1
                    return fault.kind
        return None


class LambdaFaults:
    """Per-function queues of faults, plus an optional per-payment schedule."""

    def __init__(self) -> None:
        self._queued: dict[str, list[LambdaFault]] = defaultdict(list)
        self._lock = threading.Lock()
        self.schedule: FaultSchedule | None = None

    def inject(self, function_name: str, fault: LambdaFault, times: int = 1) -> None:
        with self._lock:
            self._queued[function_name].extend([fault] * times)

    def take(self, function_name: str, event: Any = None) -> str | None:
        with self._lock:
            queue = self._queued.get(function_name)
            if queue:
                return queue.pop(0)
        if self.schedule is not None:
            return self.schedule.take(f"lambda:{function_name}", transaction_id_of(event))
        return None

    def clear(self) -> None:
        with self._lock:
            self._queued.clear()
        self.schedule = None


def transaction_id_of(event: Any) -> str | None:
    """The TransactionID a step's input is about (an operation's step: its OperationID), wherever the
    step's input keeps it: a schedule plans an operation's faults under its OperationID."""
    if not isinstance(event, dict):
        return None
    for path in (("Operation",), ("State", "Operation"), ("Payment",), ("State", "Payment"), ("Request",)):
        node: Any = event
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue
        for name in ("OperationID", "TransactionID"):
            if isinstance(node.get(name), str):
                return str(node[name])
    trail = event.get("TransactionID")  # the Audit step's: a payment's trail, or "<TransactionID>/<OperationID>"
    return trail.rpartition("/")[2] if isinstance(trail, str) else None
