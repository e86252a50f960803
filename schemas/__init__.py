"""The JSON Schemas of what the system publishes: `make schemas` writes them to schemas/events/; a test
fails when a committed schema differs from what the builder emits."""

import sys
from pathlib import Path

# The events are defined by `payments.events`, which lives in lambdas/.
_LAMBDAS = str(Path(__file__).resolve().parent.parent / "lambdas")
if _LAMBDAS not in sys.path:
    sys.path.append(_LAMBDAS)
