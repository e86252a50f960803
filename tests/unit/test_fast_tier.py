"""The unit tier stays fast: collecting every unit test (and its conftest) loads no AWS emulator."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_PROBE = """
import sys, pytest
code = pytest.main(["tests/unit", "--collect-only", "-q", "-p", "no:cacheprovider"])
loaded = sorted({m.split(".")[0] for m in sys.modules} & {"moto", "werkzeug", "local.stack"})
print("LOADED:" + ",".join(loaded))
sys.exit(code)
"""


def test_the_unit_tier_imports_no_moto():
    completed = subprocess.run([sys.executable, "-c", _PROBE], cwd=REPO, capture_output=True, text=True, timeout=120)

    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    assert "LOADED:\n" in completed.stdout, completed.stdout.splitlines()[-1]
