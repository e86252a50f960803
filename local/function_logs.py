"""What the functions print, kept per function as CloudWatch Logs would keep it.

Powertools writes log lines and EMF metrics to stdout. sys.stdout is replaced by a writer
that sends a line to the log of the function whose invocation is running on that thread,
and anything else to the real stdout.
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


class FunctionLogs(io.TextIOBase):
    def __init__(self, passthrough: TextIO, echo: bool = False) -> None:
        self._passthrough = passthrough
        self._echo = echo
        self._local = threading.local()
        self._lock = threading.Lock()
        self._lines: list[LogLine] = []

    @property
    def lines(self) -> list[LogLine]:
        with self._lock:
            return list(self._lines)

    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)

    def write(self, text: str) -> int:
        function_name = getattr(self._local, "function_name", None)
        if function_name is None:
            return self._passthrough.write(text)
        pending = getattr(self._local, "pending", "") + text
        *complete, self._local.pending = pending.split("\n")
        for line in complete:
            self.append(function_name, line)
        return len(text)

    def append(self, function_name: str, text: str) -> None:
        with self._lock:
            self._lines.append(LogLine(function_name, text))
        if self._echo:
            self._passthrough.write(f"[{function_name}] {text}\n")
            self._passthrough.flush()

    def flush(self) -> None:
        self._passthrough.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    @contextmanager
    def capture(self, function_name: str) -> Iterator[None]:
        with _lock:
            if sys.stdout is not self:  # someone (pytest's capture, say) swapped stdout since install
                self._passthrough, sys.stdout = sys.stdout, self
        self._local.function_name = function_name
        self._local.pending = ""
        try:
            yield
        finally:
            if self._local.pending:
                self.append(function_name, self._local.pending)
            self._local.function_name = None
            self._local.pending = ""


_lock = threading.Lock()


def install(echo: bool = False) -> FunctionLogs:
    """Replace sys.stdout once per process; later calls return the same writer."""
    with _lock:
        if not isinstance(sys.stdout, FunctionLogs):
            sys.stdout = FunctionLogs(sys.stdout, echo=echo)
        return sys.stdout
