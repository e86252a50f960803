"""Lambda SnapStart runtime hooks: what to load before the snapshot, what to forget after a restore.

With SnapStart (staging and prod: infra.functions), Lambda runs a function's initialization once, when
a version is published, snapshots the execution environment, and resumes every new environment of
that version from the snapshot. Whatever the process held at the snapshot is then shared by all of
them, for as long as the version lives: a connection (long closed by the time of a restore), a
secret read from Secrets Manager, the Encryption SDK's cached data keys, a random seed.

- Before the snapshot, `before_snapshot` runs the warm-ups the handler registered (imports only, such
  as the Encryption SDK for the functions that encrypt: payments.crypto.load), so that a restored
  environment does not pay them on its first invocation. Nothing here calls AWS before the snapshot.
- After a restore, `after_restore` empties every cache marked `forget_on_restore` (the boto3 clients,
  the Data Masking provider with its data-key cache and KMS client, the Converge client with its
  connection pool and credentials, the idempotency layer), Powertools' parameter caches (the Converge
  secret, cached 300 s, and its Secrets Manager client), and re-seeds `random` from the OS.

The hooks are registered with `snapshot_restore_py`, which Lambda's Python runtimes provide (3.12 and
later; it is also published on PyPI as snapshot-restore-py, but this project does not install it:
nothing outside Lambda would call the hooks). Where it cannot be imported (the local stack, the tests,
the bench), `register` registers nothing and the warm-ups stay lazy. Lambda runs the hooks only in a
SnapStart function's published version; in dev, or on $LATEST, they are registered and never called.
(AWS Lambda Developer Guide, "Lambda SnapStart runtime hooks for Python": before-snapshot hooks count
against the initialization's time limit; after-restore hooks must finish within the 10 s restore limit.)

This module imports nothing but the standard library, so every module may use `forget_on_restore`.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Collection
from typing import Protocol, TypeVar


class _Cache(Protocol):
    def cache_clear(self) -> None: ...


CacheT = TypeVar("CacheT", bound=_Cache)
WarmUpT = TypeVar("WarmUpT", bound=Callable[[], object])

RUNTIME_HOOKS_MODULE = "snapshot_restore_py"
# Powertools' parameters (payments.processors.converge reads the Converge secret through it): its
# providers hold the cached values and their boto3 clients; clear_caches() drops both.
_PARAMETERS_MODULE = "aws_lambda_powertools.utilities.parameters"

_forgotten: list[_Cache] = []
_warm_ups: list[Callable[[], object]] = []
_registered = False


def forget_on_restore(cache: CacheT) -> CacheT:
    """Mark a functools.cache'd function whose values must not outlive a restore (a client, a secret,
    a key cache): `after_restore` calls its cache_clear(). Returns it unchanged."""
    _forgotten.append(cache)
    return cache


def forgotten_on_restore() -> tuple[_Cache, ...]:
    return tuple(_forgotten)


def register(*warm_ups: Callable[[], object], entry_points: Collection[str] | None = None) -> bool:
    """Called by a handler module at import: run `warm_ups` before the snapshot, forget after a restore.

    `entry_points`: the functions of the handler module the warm-ups are for, where functions share a
    package (status sync's `find` never encrypts; its `resolve` does): they are kept only when the
    function being initialized is one of them (Lambda's _HANDLER, "handler.<entry point>"). None: all.

    True when the runtime's hooks module is there and the hooks are registered with it (once per process,
    however many handlers register); False elsewhere, where the warm-ups are only remembered."""
    global _registered
    if entry_points is None or entry_point() in entry_points:
        _warm_ups.extend(warm_ups)
    if _registered:
        return True
    try:
        hooks = importlib.import_module(RUNTIME_HOOKS_MODULE)
    except ImportError:
        return False
    hooks.register_before_snapshot(before_snapshot)
    hooks.register_after_restore(after_restore)
    _registered = True
    return True


def warm_up(function: WarmUpT) -> WarmUpT:
    """Mark a function of a module every step imports as a warm-up of every step (payments.state's models).
    Returns it unchanged."""
    _warm_ups.append(function)
    return function


def entry_point() -> str:
    """The function's entry point in its handler module, from Lambda's _HANDLER ("" where it is not set)."""
    return os.environ.get("_HANDLER", "").rpartition(".")[2]


def warm_ups() -> tuple[Callable[[], object], ...]:
    return tuple(_warm_ups)


def before_snapshot() -> None:
    """Load now what the first invocation would otherwise load (imports: no client, no AWS call)."""
    for warm_up in _warm_ups:
        warm_up()


def after_restore() -> None:
    """Drop everything made before the snapshot that holds a connection, a credential or a secret, and
    the shared random state: each restored environment makes its own on first use."""
    for cache in _forgotten:
        cache.cache_clear()
    parameters = sys.modules.get(_PARAMETERS_MODULE)
    if parameters is not None:
        parameters.clear_caches()
    import random

    random.seed()  # from os.urandom: restored environments must not share one sequence
