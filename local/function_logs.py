"""What the functions print, kept per function as CloudWatch Logs would keep it.

Each function runs in a worker process (local.lambda_worker), which sends what the invocation printed
(Powertools' log lines, EMF metrics, the runtime's own lines) back with its answer; the runtime keeps
it here, under the function's name, and echoes it when asked (`serve`).
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class LogLine:
    function_name: str
    text: str


class FunctionLogs:
    def __init__(self, echo: bool = False) -> None:
        self._echo = echo
        self._lock = threading.Lock()
        self._lines: list[LogLine] = []

    @property
    def lines(self) -> list[LogLine]:
        with self._lock:
            return list(self._lines)

    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)

    def append(self, function_name: str, text: str) -> None:
        with self._lock:
            self._lines.append(LogLine(function_name, text))
            if self._echo:
                sys.stdout.write(f"[{function_name}] {text}\n")
                sys.stdout.flush()


_lock = threading.Lock()
_installed: FunctionLogs | None = None


def install(echo: bool = False) -> FunctionLogs:
    """One log store per process; later calls return the same logs."""
    global _installed
    with _lock:
        if _installed is None:
            _installed = FunctionLogs(echo=echo)
        return _installed
