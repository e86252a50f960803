"""The CDK app's constructs, one per concern: key, tables, step Lambdas, state machine, monitoring, upstream access."""

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# infra reads the same names as the Lambdas and the local stack: payments.topology.
if str(REPO_ROOT / "lambdas") not in sys.path:
    sys.path.append(str(REPO_ROOT / "lambdas"))
