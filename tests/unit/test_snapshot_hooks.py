"""The SnapStart runtime hooks (payments.snapshot): registered with the Lambda runtime's module when it is
there, and only once; before the snapshot, the warm-ups of the function's own entry point; after a
restore, every cached client, key cache and secret forgotten and `random` re-seeded.

`snapshot_restore_py` ships with Lambda's Python runtimes and is not installed here: a stand-in module,
put in sys.modules, records what is registered with it.
"""

from __future__ import annotations

import ast
import random
import sys
import types
from pathlib import Path

import pytest

from payments import aws, crypto, event_publishing, snapshot
from payments.processors.converge import adapter

LAMBDAS = Path(__file__).resolve().parents[2] / "lambdas"
CACHING_DECORATORS = frozenset({"functools.cache", "functools.lru_cache", "cache", "lru_cache"})


class RuntimeHooks(types.ModuleType):
    """What Lambda's snapshot_restore_py offers: register_before_snapshot and register_after_restore."""

    def __init__(self):
        super().__init__(snapshot.RUNTIME_HOOKS_MODULE)
        self.before: list = []
        self.after: list = []

    def register_before_snapshot(self, hook, *args, **kwargs):
        self.before.append(hook)

    def register_after_restore(self, hook, *args, **kwargs):
        self.after.append(hook)


@pytest.fixture
def fresh(monkeypatch):
    """payments.snapshot as a new process has it: nothing registered, no warm-up."""
    monkeypatch.setattr(snapshot, "_registered", False)
    monkeypatch.setattr(snapshot, "_warm_ups", [])


@pytest.fixture
def runtime(monkeypatch, fresh):
    hooks = RuntimeHooks()
    monkeypatch.setitem(sys.modules, snapshot.RUNTIME_HOOKS_MODULE, hooks)
    return hooks


def test_without_the_runtime_module_nothing_is_registered_and_the_warm_ups_are_kept(fresh, monkeypatch):
    monkeypatch.setitem(sys.modules, snapshot.RUNTIME_HOOKS_MODULE, None)  # as if not installed: ImportError
    warm_up = object

    assert snapshot.register(warm_up) is False
    assert snapshot.warm_ups() == (warm_up,)


def test_the_hooks_are_registered_once_however_many_handlers_register(runtime):
    assert snapshot.register() is True
    assert snapshot.register() is True

    assert runtime.before == [snapshot.before_snapshot]
    assert runtime.after == [snapshot.after_restore]


def test_before_the_snapshot_the_warm_ups_run_in_order(runtime):
    ran = []
    snapshot.register(lambda: ran.append("first"), lambda: ran.append("second"))

    for hook in runtime.before:
        hook()

    assert ran == ["first", "second"]


@pytest.mark.parametrize(("handler", "kept"), [("handler.resolve", True), ("handler.find", False), (None, False)])
def test_warm_ups_for_some_entry_points_only_are_kept_for_those_functions(runtime, monkeypatch, handler, kept):
    if handler is None:
        monkeypatch.delenv("_HANDLER", raising=False)
    else:
        monkeypatch.setenv("_HANDLER", handler)
    warm_up = object

    snapshot.register(warm_up, entry_points=("resolve",))

    assert snapshot.warm_ups() == ((warm_up,) if kept else ())
    assert runtime.after == [snapshot.after_restore]  # whatever the entry point


def test_after_a_restore_every_cached_client_key_cache_and_processor_client_is_forgotten(monkeypatch):
    caches = [aws.client, crypto._masker, adapter._processor, event_publishing._publish_once]
    for cache in caches:
        monkeypatch.setattr(cache, "cache_clear", _Recorder(cache.cache_clear))

    snapshot.after_restore()

    assert [cache.cache_clear.calls for cache in caches] == [1, 1, 1, 1]


def test_after_a_restore_the_cached_boto3_clients_are_made_anew(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    aws.client.cache_clear()
    before = aws.client("dynamodb")

    snapshot.after_restore()

    assert aws.client("dynamodb") is not before
    aws.client.cache_clear()


def test_after_a_restore_powertools_parameter_caches_and_providers_are_dropped(monkeypatch):
    from aws_lambda_powertools.utilities import parameters
    from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

    monkeypatch.setitem(DEFAULT_PROVIDERS, "secrets", object())  # what get_secret leaves: a provider with its cache
    assert sys.modules[parameters.__name__] is parameters

    snapshot.after_restore()

    assert "secrets" not in DEFAULT_PROVIDERS


def test_after_a_restore_random_is_seeded_anew():
    random.seed(42)  # as if the snapshot had been taken with this state: every restore would share it
    shared = random.getstate()

    snapshot.after_restore()

    assert random.getstate() != shared


def test_every_cache_in_the_functions_code_is_forgotten_after_a_restore():
    """A functools.cache (or lru_cache) in lambdas/ holds what a snapshot must not keep (a client, a secret, a key
    cache): each one is also marked snapshot.forget_on_restore, so a new one cannot be missed."""
    unmarked = []
    for path in sorted(LAMBDAS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            decorators = [ast.unparse(d) for d in node.decorator_list]
            cached = any(d.split("(")[0] in CACHING_DECORATORS for d in decorators)
            if cached and "snapshot.forget_on_restore" not in decorators:
                unmarked.append(f"{path.relative_to(LAMBDAS)}:{node.name}")

    assert unmarked == []
    assert len(snapshot.forgotten_on_restore()) >= 4  # aws.client, crypto._masker, the Converge client, idempotency


class _Recorder:
    def __init__(self, wrapped):
        self.wrapped = wrapped
        self.calls = 0

    def __call__(self):
        self.calls += 1
        self.wrapped()
