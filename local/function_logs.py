"""What the functions print, kept per function as CloudWatch Logs would keep it.

Powertools writes log lines and EMF metrics to stdout; Python's logging falls back to stderr.
In Lambda both reach CloudWatch. Here sys.stdout and sys.stderr are replaced by writers that
send a line to the log of the function whose invocation is running on that thread, and
anything else to the real stream.
"""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO


@dataclass(frozen=True)
class LogLine:
    function_name: str
    text: str


class _Router(io.TextIOBase):
    def __init__(self, logs: FunctionLogs, passthrough: TextIO) -> None:
        self.logs = logs
        self.passthrough = passthrough
        self._local = threading.local()

    def write(self, text: str) -> int:
        function_name = self.logs.current_function()
        if function_name is None:
            return self.passthrough.write(text)
        pending = getattr(self._local, "pending", "") + text
        *complete, self._local.pending = pending.split("\n")
        for line in complete:
            self.logs.append(function_name, line)
        return len(text)

    def flush_pending(self, function_name: str) -> None:
        pending = getattr(self._local, "pending", "")
        if pending:
            self.logs.append(function_name, pending)
        self._local.pending = ""

    def flush(self) -> None:
        self.passthrough.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False


class FunctionLogs:
    def __init__(self, echo: bool = False) -> None:
        self._echo = echo
        self._local = threading.local()
        self._lock = threading.Lock()
        self._lines: list[LogLine] = []
        self.stdout = _Router(self, sys.stdout)
        self.stderr = _Router(self, sys.stderr)

    @property
    def lines(self) -> list[LogLine]:
        with self._lock:
            return list(self._lines)

    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)

    def current_function(self) -> str | None:
        return getattr(self._local, "function_name", None)

    def append(self, function_name: str, text: str) -> None:
        with self._lock:
            self._lines.append(LogLine(function_name, text))
        if self._echo:
            self.stdout.passthrough.write(f"[{function_name}] {text}\n")
            self.stdout.passthrough.flush()

    def _route(self) -> None:
        # Someone (pytest's capture, say) may have swapped the streams since install.
        if sys.stdout is not self.stdout:
            self.stdout.passthrough, sys.stdout = sys.stdout, self.stdout
        if sys.stderr is not self.stderr:
            self.stderr.passthrough, sys.stderr = sys.stderr, self.stderr

    @contextmanager
    def capture(self, function_name: str) -> Iterator[None]:
        with _lock:
            self._route()
        self._local.function_name = function_name
        try:
            yield
        finally:
            self.stdout.flush_pending(function_name)
            self.stderr.flush_pending(function_name)
            self._local.function_name = None


_lock = threading.Lock()
_installed: FunctionLogs | None = None


def install(echo: bool = False) -> FunctionLogs:
    """Replace sys.stdout and sys.stderr once per process; later calls return the same logs."""
    global _installed
    with _lock:
        if _installed is None:
            _installed = FunctionLogs(echo=echo)
            _installed._route()
        return _installed
