"""`python -m statemachine.build [--check]`: write every workflow's ASL file, or check the committed ones."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from statemachine import operation, payment, reconciliation, status_sync

STATEMACHINE_DIR = Path(__file__).resolve().parent
WORKFLOWS: dict[str, Callable[[], dict[str, Any]]] = {
    "payment.asl.json": payment.definition,
    "operation.asl.json": operation.definition,
    "status_sync.asl.json": status_sync.definition,
    "reconciliation.asl.json": reconciliation.definition,
}


def render(definition: dict[str, Any]) -> str:
    return json.dumps(definition, indent=2, ensure_ascii=False) + "\n"


def stale_files(directory: Path = STATEMACHINE_DIR) -> list[str]:
    """The ASL files whose committed text differs from what the builder emits."""
    return [
        name
        for name, build in WORKFLOWS.items()
        if not (directory / name).exists() or (directory / name).read_text() != render(build())
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m statemachine.build", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed ASL file is out of date")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        for name in stale:
            print(f"statemachine/{name} differs from the builder's output; run `make asl`", file=sys.stderr)
        return 1 if stale else 0
    for name, build in WORKFLOWS.items():
        (STATEMACHINE_DIR / name).write_text(render(build()))
        print(f"wrote statemachine/{name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
