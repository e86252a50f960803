"""Each function, imported cold as Lambda imports it, loads what its step uses and none of the heavy
packages it does not: no X-Ray SDK unless Powertools would trace, no Encryption SDK (nor cryptography)
unless the function encrypts or decrypts, and then only on first use (or in its SnapStart warm-up).

Each import runs in a fresh `python -I` with the function's package as infra.packaging builds it and
the environment bench/coldstart.py gives it (Lambda's variables and the function's own names). The
Lambda runtime's `snapshot_restore_py` is not installed here: a stand-in records what the handler
registers, and its before-snapshot hooks are run as Lambda runs them before a snapshot. The
expectations come from payments.topology: a function encrypts or decrypts exactly when it is given a
KMS key (PAYMENT_KMS_KEY_ARN, AUDIT_KMS_KEY_ARN). Nothing here is timed: bench/coldstart.py times.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bench import coldstart
from payments import topology
from payments.processors import registry

XRAY = ("aws_xray_sdk",)
# Data Masking and what it brings: the Encryption SDK, cryptography, jsonpath (Data Masking's field paths).
ENCRYPTION = ("aws_encryption_sdk", "cryptography", "aws_lambda_powertools.utilities.data_masking")
# Powertools' event parser: its package loads every event model it has (payments.state does without it).
PARSER = ("aws_lambda_powertools.utilities.parser",)
KEYS = frozenset({topology.PAYMENT_KMS_KEY_ARN, topology.AUDIT_KMS_KEY_ARN})
ADAPTERS = tuple(registry.ADAPTERS.values())

_PROBE = """
import importlib, json, sys, types
hooks = types.ModuleType("snapshot_restore_py")  # a stand-in for the Lambda runtime's module
hooks.before, hooks.after = [], []
hooks.register_before_snapshot = lambda hook, *args, **kwargs: hooks.before.append(hook)
hooks.register_after_restore = lambda hook, *args, **kwargs: hooks.after.append(hook)
sys.modules["snapshot_restore_py"] = hooks
sys.path[:0] = [{package!r}]
module = importlib.import_module("handler")
assert callable(getattr(module, {entry_point!r}))
imported = sorted(sys.modules)
for hook in hooks.before:  # as Lambda runs them, once initialization is done, before it takes the snapshot
    hook()
print(json.dumps({{"imported": imported, "warmed": sorted(sys.modules), "before": len(hooks.before),
                   "after": len(hooks.after)}}))
"""


def encrypts(spec: topology.FunctionSpec) -> bool:
    return bool(KEYS & set(spec.env_vars))


def loaded(modules: list[str], packages: tuple[str, ...]) -> list[str]:
    """The packages of `packages` (or their submodules) among `modules`."""
    return sorted({p for p in packages for m in modules if m == p or m.startswith(p + ".")})


def probe(package: Path, spec: topology.FunctionSpec, *, traced: bool = False) -> dict:
    env = coldstart.lambda_env(spec, 1024, traced=package if traced else None)
    code = _PROBE.format(package=str(package), entry_point=spec.handler.rpartition(".")[2])
    completed = subprocess.run(
        [sys.executable, "-I", "-B", "-c", code], env=env, cwd=package, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    """Every function's modules, by step: imported with tracing off, and imported with tracing on."""
    functions = topology.ALL_FUNCTIONS
    with coldstart.packages(tmp_path_factory.mktemp("packages")) as built, ThreadPoolExecutor(2) as pool:
        untraced = pool.map(lambda spec: probe(built[spec.code_dir], spec), functions)
        traced = pool.map(lambda spec: probe(built[spec.code_dir], spec, traced=True), functions)
        return {
            spec.step: {"untraced": graph, "traced": traced_graph}
            for spec, graph, traced_graph in zip(functions, untraced, traced, strict=True)
        }


STEPS = [spec.step for spec in topology.ALL_FUNCTIONS]


@pytest.mark.parametrize("step", STEPS)
def test_no_function_imports_the_xray_sdk_when_tracing_is_off_nor_data_masking_nor_the_parser(graphs, step):
    graph = graphs[step]["untraced"]

    assert loaded(graph["imported"], XRAY + ENCRYPTION + PARSER) == []
    assert loaded(graph["warmed"], XRAY) == []


@pytest.mark.parametrize("step", STEPS)
def test_every_function_traces_with_the_xray_sdk_in_lambda(graphs, step):
    # LAMBDA_TASK_ROOT set, POWERTOOLS_TRACE_DISABLED not: Powertools' Tracer traces, as deployed (Tracing ACTIVE).
    assert loaded(graphs[step]["traced"]["imported"], XRAY) == list(XRAY)


@pytest.mark.parametrize("step", STEPS)
def test_only_the_functions_given_a_kms_key_load_the_encryption_sdk_and_only_on_first_use(graphs, step):
    spec = topology.function_by_step(step)
    graph = graphs[step]["untraced"]

    assert loaded(graph["imported"], ENCRYPTION) == []
    # The warm-up (before a SnapStart snapshot) loads what the first encrypt or decrypt would, and only there.
    assert loaded(graph["warmed"], ENCRYPTION) == (sorted(ENCRYPTION) if encrypts(spec) else [])


def test_the_functions_that_encrypt_are_the_ones_the_topology_gives_a_key():
    # The expectation above, spelt out: the intake seals the card; Tokenize opens it and seals the SecureToken;
    # CallProcessor opens both and seals audit payloads, as do CallOperationProcessor and ResolveUnresolved.
    assert {spec.step for spec in topology.ALL_FUNCTIONS if encrypts(spec)} == {
        "Intake",
        "Tokenize",
        "CallProcessor",
        "CallOperationProcessor",
        "ResolveUnresolved",
    }


@pytest.mark.parametrize("step", [spec.step for spec in topology.ALL_FUNCTIONS if spec.uses_processor])
def test_the_functions_that_call_the_processor_load_its_adapter_before_the_snapshot(graphs, step):
    graph = graphs[step]["untraced"]

    assert set(ADAPTERS) <= set(graph["warmed"])


@pytest.mark.parametrize("step", STEPS)
def test_every_function_registers_one_before_snapshot_and_one_after_restore_hook(graphs, step):
    graph = graphs[step]["untraced"]

    assert (graph["before"], graph["after"]) == (1, 1)


def test_the_encryption_sdk_is_imported_by_the_first_use_of_a_key_not_by_payments_crypto():
    code = """
import json, sys
from payments import crypto
imported = sorted(sys.modules)
crypto._masker("arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab")
print(json.dumps({"imported": imported, "used": sorted(sys.modules)}))
"""
    env = coldstart.lambda_env(topology.function_by_step("Tokenize"), 1024)
    lambdas = str(Path(topology.__file__).resolve().parents[1])
    completed = subprocess.run(
        [sys.executable, "-I", "-B", "-c", f"import sys; sys.path.insert(0, {lambdas!r})\n{code}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    graph = json.loads(completed.stdout.strip().splitlines()[-1])

    assert loaded(graph["imported"], ENCRYPTION) == []
    assert loaded(graph["used"], ENCRYPTION) == sorted(ENCRYPTION)


# The steps that read a payment request, validated by payments.models at the API's boundary. Every other step
# reads only the workflow state (payments.state: models of our own), and pydantic is a third of a cold import.
READS_A_REQUEST = {"Intake", "Tokenize"}


@pytest.mark.parametrize("step", STEPS)
def test_only_the_functions_that_read_a_payment_request_import_pydantic(graphs, step):
    graph = graphs[step]["untraced"]

    assert loaded(graph["warmed"], ("pydantic",)) == (["pydantic"] if step in READS_A_REQUEST else [])
