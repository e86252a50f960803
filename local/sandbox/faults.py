"""Realistic processor faults, switched on by rule (control API or Python) or per request (header).

| kind                 | what the client sees                                  | processed? |
|----------------------|-------------------------------------------------------|------------|
| latency              | the normal answer, `delay_ms` late                    | yes        |
| timeout_after_charge | the request is processed, the answer never comes      | yes        |
| charge_in_flight     | no answer; the request is processed `delay_ms` later  | yes, late  |
| drop_before_charge   | the connection closes before any answer               | no         |
| http_500             | HTTP 500 from the gateway                             | no         |
| error_3000           | errorCode 3000, gateway not responding                | no         |
| error_4017           | errorCode 4017, time-out                              | no         |
| error_4022           | errorCode 4022, system unavailable                    | no         |

A rule applies to requests that match all its `match` fields (e.g. `ssl_transaction_type`,
`ssl_merchant_txn_id`, `ssl_txn_id`), `times` times (0: until removed), each with `probability`.
Every transaction type meets a fault alike: a void withheld by timeout_after_charge has voided.
"""

from __future__ import annotations

import itertools
import random
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

FAULT_KINDS = (
    "timeout_after_charge",
    "charge_in_flight",
    "drop_before_charge",
    "http_500",
    "error_3000",
    "error_4017",
    "error_4022",
    "latency",
)
CONVERGE_ERRORS = {
    "error_3000": ("3000", "Gateway not responding", "Error, no response."),
    "error_4017": (
        "4017",
        "Time-Out",
        "The request has timed out. The allotted time to complete the request has ended. Please try again.",
    ),
    "error_4022": ("4022", "System Unavailable", "The system is unavailable. Please try again later."),
}
_ids = itertools.count(1)


@dataclass
class FaultRule:
    fault: str
    match: dict[str, str] = field(default_factory=dict)
    times: int = 1
    probability: float = 1.0
    delay_ms: int = 0
    id: int = field(default_factory=lambda: next(_ids))
    fired: int = 0

    def __post_init__(self) -> None:
        if self.fault not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.fault!r}; one of {sorted(FAULT_KINDS)}")
        if self.times < 0 or not 0 <= self.probability <= 1 or self.delay_ms < 0:
            raise ValueError("times >= 0, 0 <= probability <= 1 and delay_ms >= 0")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FaultRule:
        allowed = {"fault", "match", "times", "probability", "delay_ms"}
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown rule fields {sorted(unknown)}")
        return cls(**data)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def exhausted(self) -> bool:
        return self.times > 0 and self.fired >= self.times


@dataclass
class FiredFault:
    fault: str
    delay_ms: int = 0


class FaultPlan:
    """The active rules. `draw` decides, for one request, which fault (if any) it meets."""

    def __init__(self, seed: int | None = None) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self.fired: list[tuple[str, str]] = []  # (fault, ssl_merchant_txn_id) in firing order

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    @property
    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def draw(self, fields: dict[str, str]) -> FiredFault | None:
        with self._lock:
            for rule in self._rules:
                if rule.exhausted or any(fields.get(k, "").lower() != v.lower() for k, v in rule.match.items()):
                    continue
                if rule.probability < 1 and self._random.random() >= rule.probability:
                    continue
                rule.fired += 1
                self.fired.append((rule.fault, fields.get("ssl_merchant_txn_id", "")))
                return FiredFault(rule.fault, rule.delay_ms)
        return None
