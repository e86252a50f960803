"""The chaos section: `python -m local.chaos --seed S --payments N` in a subprocess, timed whole.

The chaos run starts a local stack of its own, so the bench runs it after its own stack has stopped.
Its exit status says whether every invariant held (0) or not (1); anything else, or no report, is a
crash. The report's first line gives its own seconds (the payments, their operations, status sync
and reconciliation, without the stack's start and the checks); the target is judged on the wall
time of the whole command, as `make chaos` takes it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SEED = 1
DEFAULT_PAYMENTS = 1000
TIMEOUT_SECONDS = 1800.0  # six times the target: a hung run is reported, not waited for forever
_FIRST_LINE = re.compile(r"Chaos run: seed (-?\d+), (\d+) payments, ([\d.]+) s")
_VERDICT = re.compile(r"^  (PASS|FAIL|SKIP)  (.+?): ")


def measure(seed: int, payments: int, timeout: float = TIMEOUT_SECONDS) -> dict[str, Any]:
    command = [sys.executable, "-m", "local.chaos", "--seed", str(seed), "--payments", str(payments)]
    env = {name: value for name, value in os.environ.items() if name != "MOTO_PORT"}  # the bench's stack's, gone
    started = time.perf_counter()
    try:
        completed = subprocess.run(  # noqa: S603 - our own interpreter running our own module
            command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as expired:
        return _section(
            seed, payments, time.perf_counter() - started, None, _text(expired.stdout), _text(expired.stderr)
        )
    wall = time.perf_counter() - started
    return _section(seed, payments, wall, completed.returncode, completed.stdout, completed.stderr)


def skipped(seed: int) -> dict[str, Any]:
    return {"ran": False, "seed": seed, "payments": 0, "command": None}


def _section(seed: int, payments: int, wall: float, returncode: int | None, stdout: str, stderr: str) -> dict[str, Any]:
    first = _FIRST_LINE.search(stdout)
    verdicts = [m.groups() for m in (_VERDICT.match(line) for line in stdout.splitlines()) if m]
    hold = returncode == 0 and "All invariants hold." in stdout
    crashed = returncode not in (0, 1) or first is None
    return {
        "ran": True,
        "command": f"python -m local.chaos --seed {seed} --payments {payments}",
        "seed": seed,
        "payments": payments,
        "wall_seconds": round(wall, 1),
        "run_seconds": float(first.group(3)) if first else None,  # the chaos report's own
        "exit_code": returncode,
        "timed_out": returncode is None,
        "crashed": crashed,
        "invariants_hold": hold and not crashed,
        "invariants": {
            "passed": sum(1 for status, _ in verdicts if status == "PASS"),
            "failed": [name for status, name in verdicts if status == "FAIL"],
            "skipped": [name for status, name in verdicts if status == "SKIP"],
        },
        # What a crash or a failed invariant left to read; nothing when every invariant held.
        "output_tail": "" if hold and not crashed else (stdout[-2000:] + "\n" + stderr[-3000:]).strip(),
    }


def _text(output: str | bytes | None) -> str:
    if output is None:
        return ""
    return output.decode(errors="replace") if isinstance(output, bytes) else output
