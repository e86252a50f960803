"""Per-thread environment variables, so that each in-process Lambda sees only its own.

In AWS every function has its own process and environment. Here all of them run in one
process, concurrently, so `os.environ` is replaced by a mapping that, inside a function's
invocation thread, shows that function's environment and nothing else.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager


class ScopedEnviron(MutableMapping[str, str]):
    def __init__(self, process_environ: MutableMapping[str, str]) -> None:
        self._process = process_environ
        self._local = threading.local()

    def _current(self) -> MutableMapping[str, str]:
        scoped = getattr(self._local, "env", None)
        return self._process if scoped is None else scoped

    def __getitem__(self, key: str) -> str:
        return self._current()[key]

    def __setitem__(self, key: str, value: str) -> None:
        self._current()[key] = value

    def __delitem__(self, key: str) -> None:
        del self._current()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._current()))

    def __len__(self) -> int:
        return len(self._current())

    def copy(self) -> dict[str, str]:
        return dict(self._current())

    @contextmanager
    def scoped(self, env: Mapping[str, str]) -> Iterator[None]:
        previous = getattr(self._local, "env", None)
        self._local.env = dict(env)
        try:
            yield
        finally:
            self._local.env = previous


_lock = threading.Lock()


def install() -> ScopedEnviron:
    """Replace os.environ once per process; later calls return the same mapping."""
    with _lock:
        if not isinstance(os.environ, ScopedEnviron):
            os.environ = ScopedEnviron(os.environ)  # type: ignore[assignment]  # noqa: B003 - replacing, not clearing, is the point
        return os.environ
