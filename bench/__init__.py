"""`python -m bench`: latency, per-step time, AWS calls, cost, cold start and a timed chaos run of the payment workflow.

Everything runs on the embedded local stack (local/: moto in this process, the handlers in worker
processes), the chaos run in a subprocess of its own; see bench/README.md.
"""

import sys
from pathlib import Path

# `payments` lives in lambdas/, as in each function's package; local/ and infra/ add it the same way.
_LAMBDAS = str(Path(__file__).resolve().parent.parent / "lambdas")
if _LAMBDAS not in sys.path:
    sys.path.append(_LAMBDAS)
