"""Faults the local stack can inject at the Lambda service boundary, for tests and demos."""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Literal

LambdaFault = Literal["service_error", "lose_response"]


class LambdaFaults:
    """A queue of faults per function name, each consumed by one invocation.

    service_error: the invoke fails before the handler runs (Lambda.ServiceException).
    lose_response: the handler runs and its side effects stand, but the caller sees
                   Lambda.ServiceException, as when a response is lost on the way back.
    """

    def __init__(self) -> None:
        self._queued: dict[str, list[LambdaFault]] = defaultdict(list)
        self._lock = threading.Lock()

    def inject(self, function_name: str, fault: LambdaFault, times: int = 1) -> None:
        with self._lock:
            self._queued[function_name].extend([fault] * times)

    def take(self, function_name: str) -> LambdaFault | None:
        with self._lock:
            queue = self._queued.get(function_name)
            return queue.pop(0) if queue else None

    def clear(self) -> None:
        with self._lock:
            self._queued.clear()
