"""`python -m bench`: latency, per-step time, AWS calls, cost and cold start of the payment workflow.

Everything runs on the embedded local stack (local/), in this process; see bench/README.md.
"""

import sys
from pathlib import Path

# `payments` lives in lambdas/, as in each function's package; local/ and infra/ add it the same way.
_LAMBDAS = str(Path(__file__).resolve().parent.parent / "lambdas")
if _LAMBDAS not in sys.path:
    sys.path.append(_LAMBDAS)
