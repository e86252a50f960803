"""The state machines, written as Python and emitted as the ASL files that CDK deploys and the local stack runs.

Edit `payment.py` (or the policy in `policy.py`), then `make asl`; a test fails when a committed
`*.asl.json` differs from what the builder emits.
"""

import sys
from pathlib import Path

# The workflows name their functions through `payments.topology`, which lives in lambdas/.
_LAMBDAS = str(Path(__file__).resolve().parent.parent / "lambdas")
if _LAMBDAS not in sys.path:
    sys.path.append(_LAMBDAS)
