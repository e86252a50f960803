"""Builds each function's deployment package without Docker: its handler, the domain package,
and the pure-Python dependencies that the Powertools layer does not carry, compiled to bytecode.

Lambda's /var/task is read-only: a package without .pyc files is compiled at every cold start,
and never cached (for this package, tens of milliseconds of each handler's import). So the package
ships its __pycache__, compiled here by the interpreter that builds it, and only when that is the
Python the functions run (topology.LAMBDA_RUNTIME): a .pyc of any other version would be ignored.
The .pyc files are hash-based (PEP 552, checked): CDK zips the asset with fixed timestamps, so a
timestamp-based .pyc would never match its source on Lambda and would be recompiled every time; a
checked hash-based one is used as long as its source is unchanged, whatever the timestamps, and
the package's bytes, and so the asset's hash, depend on the sources alone.
"""

from __future__ import annotations

import compileall
import importlib.util
import py_compile
import shutil
import sys
from pathlib import Path

from infra import REPO_ROOT
from payments import topology

BUILD_ROOT = REPO_ROOT / "build" / "lambda"
# Where Lambda unpacks the package (LAMBDA_TASK_ROOT): the path the bytecode records for its sources, so that
# the .pyc files are the same bytes wherever the package was built (Python corrects the path when loading).
TASK_ROOT = "/var/task"
# Powertools' layer brings Powertools, Pydantic, the X-Ray SDK and the AWS Encryption SDK.
VENDORED = ("defusedxml",)
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyi", "py.typed")


def runtime_python() -> bool:
    """Whether this interpreter is the functions' Python (python3.12: 3.12), whose bytecode Lambda can use."""
    return f"python{sys.version_info.major}.{sys.version_info.minor}" == topology.LAMBDA_RUNTIME


def package_function(code_dir: str) -> Path:
    """build/lambda/<code_dir>/ with handler.py at its root, so the handler is `handler.lambda_handler`."""
    target = BUILD_ROOT / code_dir
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copy2(REPO_ROOT / "lambdas" / code_dir / "handler.py", target / "handler.py")
    shutil.copytree(REPO_ROOT / "lambdas" / "payments", target / "payments", ignore=_IGNORE)
    for name in VENDORED:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError(f"{name} is not installed: run make synth, which installs requirements.txt")
        shutil.copytree(next(iter(spec.submodule_search_locations)), target / name, ignore=_IGNORE)
    if runtime_python():
        compile_package(target)
    return target


def compile_package(target: Path) -> None:
    """Every .py under `target` to __pycache__/<name>.cpython-3XX.pyc (optimization level 0, as Lambda runs
    Python), checked hash-based. Raises on a file that does not compile."""
    compiled = compileall.compile_dir(
        target,
        ddir=TASK_ROOT,
        quiet=1,
        workers=1,
        invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
    )
    if not compiled:
        raise RuntimeError(f"compiling {target} failed")
