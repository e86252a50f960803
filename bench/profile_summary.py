"""`python -m bench.profile_summary PROFILE.raw [--top N]`: where the time went, from a py-spy profile.

py-spy is not a dependency of the project; install it in a scratch venv and record a bench run
(methods in bench/README.md, "Profile"):

    py-spy record --gil --subprocesses --format raw -o prof.raw -- .venv/bin/python -m bench ...

`--format raw` writes one line per distinct stack: frames from the root, `;`-separated, then the
sample count. This prints, per process role (the stack's own process, the Lambda workers), the
share of samples each function was on the stack for (cumulative) and at the top of (self).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_LINE = re.compile(r":\d+\)")  # "name (file.py:123)" -> "name (file.py)": one row per function
# Frames every sample of a thread or a request passes through, which say nothing of where time goes.
_PLUMBING = ("(threading.py)", "(socketserver.py)", "(http/server.py)", "(werkzeug/serving.py)", "(<frozen runpy>)")


@dataclass
class Role:
    samples: int = 0
    cumulative: Counter[str] = field(default_factory=Counter)
    own: Counter[str] = field(default_factory=Counter)


def summarise(lines: Iterable[str]) -> dict[str, Role]:
    roles: dict[str, Role] = {}
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_LINE.sub(")", frame) for frame in stack.split(";")]
        role = roles.setdefault(_role(frames), Role())
        role.samples += int(count)
        for frame in set(frames):
            role.cumulative[frame] += int(count)
        role.own[frames[-1]] += int(count)
    return roles


def _role(frames: Sequence[str]) -> str:
    if any("lambda_worker.py" in frame for frame in frames):
        return "Lambda workers (local.lambda_worker)"
    return "the stack's process (moto, interpreter, sandbox, bench clients)"


def render(roles: dict[str, Role], top: int) -> str:
    total = sum(role.samples for role in roles.values()) or 1
    out: list[str] = []
    for name, role in sorted(roles.items(), key=lambda item: -item[1].samples):
        out.append(f"{name}: {role.samples} samples, {100 * role.samples / total:.0f}% of all")
        out.append("  cumulative")
        rows = [(f, n) for f, n in role.cumulative.most_common() if _telling(f)]
        out += [f"    {100 * n / role.samples:5.1f}%  {f}" for f, n in rows[:top]]
        out.append("  self")
        own = [(f, n) for f, n in role.own.most_common() if _telling(f)]
        out += [f"    {100 * n / role.samples:5.1f}%  {f}" for f, n in own[: top // 2]]
    return "\n".join(out)


def _telling(frame: str) -> bool:
    return not frame.startswith("process ") and not frame.endswith(_PLUMBING) and "<module>" not in frame


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_summary", description=__doc__)
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args(argv)
    with args.profile.open() as lines:
        sys.stdout.write(render(summarise(lines), args.top) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
