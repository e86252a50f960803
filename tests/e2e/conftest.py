"""The end-to-end tier: `python -m local serve` as a subprocess, one per test module, used as a person would."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    ready_file = tmp_path_factory.mktemp("serve") / "ready.json"
    output = tmp_path_factory.mktemp("serve") / "output.log"
    with output.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "local", "serve", "--port", "0", "--ready-file", str(ready_file)],
            cwd=REPO,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while not ready_file.exists() or not ready_file.read_text():
            assert process.poll() is None, output.read_text()
            assert time.monotonic() < deadline, "serve did not become ready in 60 s"
            time.sleep(0.05)
        info = json.loads(ready_file.read_text())
        yield {"info": info, "process": process, "output": output}
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
