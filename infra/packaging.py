"""Builds each function's deployment package without Docker: its handler, the domain package,
and the pure-Python dependencies that the Powertools layer does not carry."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from infra import REPO_ROOT

BUILD_ROOT = REPO_ROOT / "build" / "lambda"
# Powertools' layer brings Powertools, Pydantic, the X-Ray SDK and the AWS Encryption SDK.
VENDORED = ("defusedxml",)
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyi", "py.typed")


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
    return target
