"""`python -m bench` runs end to end, tiny, and writes well-formed results. No timing is asserted.

It runs as a subprocess: the bench starts its own local stack, and moto's state is per process.
"""

import json
import subprocess
import sys
from numbers import Real
from pathlib import Path

from payments import topology

REPO = Path(__file__).resolve().parents[2]
SECTIONS = {"machine", "latency", "steps", "aws_calls", "cost", "cold_start", "chaos", "targets"}
TINY = ["--payments", "4", "--concurrency", "2", "--warmup", "1", "--import-repeats", "1", "--counted-payments", "2"]
TINY += ["--chaos-payments", "3"]
# One row per target of the performance issue, in this order (bench/sections.py).
TARGETS = ("p50", "p99", "payments/s", "sequential rate", "cold import", "KMS requests", "decrypted twice", "chaos run")


def reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def is_number(value):
    return isinstance(value, Real) and not isinstance(value, bool)


def test_a_tiny_run_writes_every_section_and_prints_them(tmp_path):
    # Given a tiny run: 4 payments per level, 2 concurrent, one import per module, a 3-payment chaos run
    output = tmp_path / "results.json"
    completed = subprocess.run(
        [sys.executable, "-m", "bench", *TINY, "--output", str(output)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )

    # Then it succeeds and writes strict JSON (no NaN) with every section
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads(output.read_text(), parse_constant=reject_constant)
    assert results.keys() >= SECTIONS
    assert isinstance(results["machine"]["cpu"], str) and results["machine"]["cores"] >= 1
    assert isinstance(results["machine"]["python"], str)

    # And latency at each concurrency: every payment approved, percentiles and throughput as numbers
    runs = results["latency"]["runs"]
    assert [run["concurrency"] for run in runs] == [1, 2]
    for run in runs:
        assert run["payments"] == run["approved"] == 4
        assert all(is_number(run["client_ms"][key]) for key in ("p50", "p95", "p99"))
        assert is_number(run["throughput_per_second"])

    # And a median per state from the histories, for the Task states at least
    for run in results["steps"]["runs"]:
        states = {state["state"]: state for state in run["states"]}
        assert {"Tokenize", "CallProcessor", "Audit"} <= states.keys()
        assert all(is_number(state["median_ms"]) for state in states.values())

    # And counted AWS calls per payment, by service and operation, as the stack's endpoint saw them: the
    # handlers' (in their worker processes) and the interpreter's, not the bench's own
    calls = results["aws_calls"]
    assert {(c["service"], c["operation"]) for c in calls["calls"]} >= {
        ("kms", "GenerateDataKey"),
        ("kms", "Decrypt"),
        ("dynamodb", "PutItem"),
        ("lambda", "Invoke"),
        ("sfn", "StartExecution"),
    }
    assert ("sfn", "GetExecutionHistory") not in {(c["service"], c["operation"]) for c in calls["calls"]}
    assert calls["excluded_bench_requests"] > 0
    assert all(is_number(c["per_payment"]) for c in calls["calls"])
    assert is_number(calls["kms_requests_per_payment"]) and is_number(calls["state_transitions_per_payment"])
    assert calls["kms_floor_per_payment"] == 6
    for purpose in calls["kms_by_purpose"]:
        assert is_number(purpose["per_payment"]) and isinstance(purpose["most_in_one_payment"], int)
    assert calls["lambda_invocations_per_payment"]
    assert calls["http_requests_per_payment"].keys() >= {"dynamodb", "kms", "lambda"}

    # And a cost per million for both workflow types, with the line that dominates
    cost = results["cost"]
    for workflow in ("standard", "express"):
        assert is_number(cost[workflow]["usd_per_million"]) and cost[workflow]["usd_per_million"] > 0
        assert cost[workflow]["dominant_line"] in {line["line"] for line in cost["lines"]}

    # And cold start per handler beside bare boto3, with package sizes
    cold = results["cold_start"]
    assert is_number(cold["boto3_import_ms"])
    assert len(cold["functions"]) == len({spec.code_dir for spec in topology.ALL_FUNCTIONS})  # one per package
    for function in cold["functions"]:
        assert is_number(function["import_ms"]) and is_number(function["ratio_to_boto3"])
        assert function["package_bytes"] > 0 and function["package_zip_bytes"] > 0

    # And the chaos run, timed whole, with its seed and whether every invariant held
    chaos = results["chaos"]
    assert chaos["ran"] is True and chaos["payments"] == 3 and isinstance(chaos["seed"], int)
    assert is_number(chaos["wall_seconds"]) and is_number(chaos["run_seconds"]), chaos["output_tail"]
    assert isinstance(chaos["invariants_hold"], bool) and chaos["exit_code"] in (0, 1)

    # And every target of the issue, measured against its limit, met or not
    targets = results["targets"]
    assert len(targets) == len(TARGETS)
    for target, about in zip(targets, TARGETS, strict=True):
        assert about in target["target"]
        assert isinstance(target["met"], bool) and isinstance(target["measured"], str)
        assert is_number(target["limit"]) and target["comparison"] in ("<=", ">=", "<")
        assert target["value"] is None or is_number(target["value"])
    assert targets[-1]["met"] is False  # 3 payments are not the target's 1,000

    # And the tables are printed
    headings = ("1. End-to-end latency", "2. Median time per state", "3. AWS calls", "4. Cost", "5. Cold start")
    for heading in (*headings, "6. Chaos run", "Targets"):
        assert heading in completed.stdout
