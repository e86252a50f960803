"""The embedded local stack: moto runs the real ASL and routes Lambda to our real handlers.

See docs/architecture.md#the-local-stack.
"""

import sys
from pathlib import Path

# The domain package `payments` lives beside the handlers in lambdas/, as it does in each
# function's deployment package.
_LAMBDAS = str(Path(__file__).resolve().parent.parent / "lambdas")
if _LAMBDAS not in sys.path:
    sys.path.append(_LAMBDAS)
