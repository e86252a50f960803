"""Loads an ASL file as CDK's definition_substitutions would, for moto to run."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9]+)\}")
# Step Functions counts retry intervals in whole seconds (at least 1). Locally every delay is
# that one second, without jitter: a retried step costs one second, not a minute, and a test
# that depends on when a retry happens sees the same timing on every run.
LOCAL_MAX_DELAY_SECONDS = 1


def load_definition(path: Path, substitutions: dict[str, str], shorten_retries: bool = True) -> str:
    text = path.read_text()
    missing = sorted(set(_PLACEHOLDER.findall(text)) - substitutions.keys())
    if missing:
        raise KeyError(f"no substitution for {', '.join(missing)}")
    definition = json.loads(_PLACEHOLDER.sub(lambda match: substitutions[match.group(1)], text))
    if shorten_retries:
        _shorten_retries(definition)
    return json.dumps(definition)


def _shorten_retries(node: Any) -> None:
    if isinstance(node, dict):
        for retrier in node.get("Retry", []):
            retrier["IntervalSeconds"] = 1
            retrier["MaxDelaySeconds"] = LOCAL_MAX_DELAY_SECONDS
            retrier.pop("JitterStrategy", None)
        for value in node.values():
            _shorten_retries(value)
    elif isinstance(node, list):
        for value in node:
            _shorten_retries(value)
