"""Cold import of each handler in a fresh Python process, laid out as Lambda lays out the function.

Lambda puts the function's package (/var/task) first on sys.path and the layer after it; here
the package is infra.packaging's own build of the function, as deployed (with the bytecode it
ships: compiled by package_function when this virtualenv's Python is the functions' runtime), and
the layer is this virtualenv's site-packages (Powertools, Pydantic, the X-Ray SDK, the Encryption
SDK, boto3). `-B` writes no .pyc, as on Lambda, where /var/task is read-only: the package's own .pyc
are read, and a module without one would be compiled at every import, as on every cold start there.

Three numbers per function, each the median of its rounds:
- import_ms: `import handler`, tracing off (no LAMBDA_TASK_ROOT: Powertools does not trace outside
  Lambda, so payments.observability never imports the X-Ray SDK);
- warm_import_ms: the same process, once the handler's SnapStart warm-ups have run as well
  (payments.snapshot.before_snapshot: the Encryption SDK for the functions that encrypt, the processor
  adapters): what its first encryption or processor call would import besides, on a cold start;
- traced_import_ms: `import handler` with LAMBDA_TASK_ROOT set, as on Lambda with active tracing:
  Powertools' Tracer, and so the X-Ray SDK, is imported and patches botocore.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import infra.packaging
from bench.stats import median
from payments import topology

REGION = "us-east-1"
_TIMED_IMPORT = """\
import sys, time
sys.path[:0] = {path}
started = time.perf_counter()
import {module}
print(time.perf_counter() - started)
"""
# The handler's import, then its SnapStart warm-ups (payments.snapshot), timed from the same start.
_TIMED_HANDLER = """\
import sys, time
sys.path[:0] = {path}
started = time.perf_counter()
import handler
imported = time.perf_counter()
from payments import snapshot
snapshot.before_snapshot()
print(imported - started, time.perf_counter() - started)
"""


# One function per package (LedgerInitiated and LedgerPending share theirs), in topology's order.
_MEASURED = tuple({spec.code_dir: spec for spec in topology.ALL_FUNCTIONS}.values())


@contextmanager
def packages(scratch: Path) -> Iterator[dict[str, Path]]:
    """Every function's deployment package, built by infra.packaging into `scratch` (not into build/)."""
    original = infra.packaging.BUILD_ROOT
    infra.packaging.BUILD_ROOT = scratch / "lambda"
    try:
        yield {spec.code_dir: infra.packaging.package_function(spec.code_dir) for spec in _MEASURED}
    finally:
        infra.packaging.BUILD_ROOT = original


def measure(scratch: Path, repeats: int, memory_mb: int) -> dict[str, Any]:
    with packages(scratch) as built:
        samples: dict[str, list[float]] = defaultdict(list)
        # One untimed import first, so that no timed one pays for reading the libraries from disk.
        first = _MEASURED[0]
        _handler_ms(built[first.code_dir], lambda_env(first, memory_mb))
        _handler_ms(built[first.code_dir], lambda_env(first, memory_mb, traced=built[first.code_dir]))
        # Round robin, so that a slower moment of the machine touches every module alike.
        for _ in range(repeats):
            samples["boto3"].append(_import_ms("boto3", None, lambda_env(None, memory_mb)))
            for spec in _MEASURED:
                package = built[spec.code_dir]
                imported, warmed = _handler_ms(package, lambda_env(spec, memory_mb))
                samples[spec.code_dir].append(imported)
                samples[f"{spec.code_dir} warm"].append(warmed)
                traced, _ = _handler_ms(package, lambda_env(spec, memory_mb, traced=package))
                samples[f"{spec.code_dir} traced"].append(traced)
        boto3_ms = median(samples["boto3"])
        functions = []
        for spec in _MEASURED:
            package = built[spec.code_dir]
            import_ms = median(samples[spec.code_dir])
            warm_ms = median(samples[f"{spec.code_dir} warm"])
            traced_ms = median(samples[f"{spec.code_dir} traced"])
            functions.append(
                {
                    "function": spec.function_name,
                    "module": f"lambdas/{spec.code_dir}/handler.py",
                    "import_ms": round(import_ms, 1),
                    "ratio_to_boto3": round(import_ms / boto3_ms, 2),
                    "warm_import_ms": round(warm_ms, 1),
                    "warm_ratio_to_boto3": round(warm_ms / boto3_ms, 2),
                    "traced_import_ms": round(traced_ms, 1),
                    "traced_ratio_to_boto3": round(traced_ms / boto3_ms, 2),
                    "package_files": sum(1 for _ in _files(package)),
                    "package_bytes": sum(path.stat().st_size for path in _files(package)),
                    "package_zip_bytes": _zipped_size(package),
                }
            )
        heaviest = _heaviest_imports(
            built["call_processor"], lambda_env(topology.function_by_step("CallProcessor"), memory_mb)
        )
    return {
        "repeats": repeats,
        "precompiled": infra.packaging.runtime_python(),
        "boto3_import_ms": round(boto3_ms, 1),
        "functions": functions,
        "heaviest_imports_call_processor": heaviest,
    }


def lambda_env(spec: topology.FunctionSpec | None, memory_mb: int, traced: Path | None = None) -> dict[str, str]:
    """Lambda's variables and the function's own names. `traced`: the package, as LAMBDA_TASK_ROOT, which is
    how Powertools' Tracer knows it runs in Lambda (and traces); without it, it does not."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{topology.LAMBDA_RUNTIME}",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
    }
    if spec is not None:
        env["AWS_LAMBDA_FUNCTION_NAME"] = spec.function_name
        env["_HANDLER"] = spec.handler
        # Names are what the modules may read at import; the values are stand-ins.
        env.update({name: f"bench-{name.lower()}" for name in spec.environment("aws")})
        env[topology.POWERTOOLS_SERVICE_NAME] = topology.SERVICE_NAME
        env[topology.POWERTOOLS_METRICS_NAMESPACE] = topology.METRICS_NAMESPACE
    if traced is not None:
        env["LAMBDA_TASK_ROOT"] = str(traced)
    return env


def _import_ms(module: str, path: Path | None, env: dict[str, str]) -> float:
    return _timed(_TIMED_IMPORT.format(path=[str(path)] if path else [], module=module), path, env)[0]


def _handler_ms(package: Path, env: dict[str, str]) -> tuple[float, float]:
    """(import handler, import handler and run its SnapStart warm-ups), in ms, from one process."""
    imported, warmed = _timed(_TIMED_HANDLER.format(path=[str(package)]), package, env)
    return imported, warmed


def _timed(code: str, path: Path | None, env: dict[str, str]) -> list[float]:
    # -I: no PYTHONPATH, no user site, no current directory on sys.path. -B: write no .pyc.
    completed = subprocess.run(  # noqa: S603 - our own interpreter, with code we wrote
        [sys.executable, "-I", "-B", "-c", code],
        env=env,
        cwd=path or None,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"timed import from {path} failed:\n{completed.stderr}")
    return [float(seconds) * 1000 for seconds in completed.stdout.strip().splitlines()[-1].split()]


def _heaviest_imports(package: Path, env: dict[str, str], top: int = 8) -> list[dict[str, Any]]:
    """One `-X importtime` run: the top-level packages whose own import time is largest."""
    code = _TIMED_IMPORT.format(path=[str(package)], module="handler")
    completed = subprocess.run(  # noqa: S603 - our own interpreter, with code we wrote
        [sys.executable, "-I", "-B", "-X", "importtime", "-c", code],
        env=env,
        cwd=package,
        capture_output=True,
        text=True,
        check=True,
    )
    self_us: dict[str, int] = defaultdict(int)
    for line in completed.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, _cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        self_us[name.split(".")[0]] += int(own)
    ranked = sorted(self_us.items(), key=lambda item: item[1], reverse=True)[:top]
    return [{"package": name, "self_ms": round(us / 1000, 1)} for name, us in ranked]


def _files(root: Path) -> Iterator[Path]:
    return (path for path in sorted(root.rglob("*")) if path.is_file())


def _zipped_size(root: Path) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in _files(root):
            archive.write(path, path.relative_to(root))
    return len(buffer.getvalue())
