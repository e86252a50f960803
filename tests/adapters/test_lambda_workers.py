"""The local Lambda runtime's execution environments (local.lambda_runtime.WorkerPool, local.lambda_worker):
each invocation sees its own function's environment only, its output comes back as its log, an exception
is the runtime's FunctionError, and a dead worker is a service error, then replaced."""

import json
import os
import uuid
from pathlib import Path

import pytest

from local.lambda_runtime import LambdaServiceException, WorkerPool

HANDLER = """
import logging, os, sys

log = logging.getLogger("step")
log.addHandler(logging.StreamHandler(sys.stdout))
log.setLevel(logging.INFO)
log.propagate = False  # as Powertools' Logger: its lines are its own


def handler(event, context):
    if event.get("exit"):
        os._exit(1)
    if event.get("warn"):
        logging.getLogger("some.library").warning("careful")
        return {}
    if event.get("fail"):
        raise ValueError("the step refused")
    log.info("step ran for %s", context.function_name)
    print("printed")
    seen = {name: os.environ.get(name) for name in ("ONLY_A", "ONLY_B")}
    return {"seen": seen, "left_ms": context.get_remaining_time_in_millis()}
"""


@pytest.fixture
def pool(tmp_path: Path):
    (tmp_path / "step").mkdir()
    (tmp_path / "step" / "handler.py").write_text(HANDLER)
    workers = WorkerPool({"PATH": os.environ.get("PATH", "")}, max_workers=1)
    yield workers, tmp_path
    workers.stop()


def request(code_root: Path, function: str, env: dict[str, str], event: dict[str, object]) -> dict[str, object]:
    return {
        "code_root": str(code_root),
        "code_dir": "step",
        "module": "handler",
        "attribute": "handler",
        "function_name": function,
        "env": env,
        "event": json.dumps(event),
        "context": {
            "function_name": function,
            "invoked_function_arn": f"arn:aws:lambda:us-east-1:123456789012:function:{function}",
            "memory_limit_in_mb": 128,
            "timeout_seconds": 30,
            "aws_request_id": str(uuid.uuid4()),
        },
    }


def test_one_worker_runs_two_functions_each_under_its_own_environment_and_log(pool):
    workers, root = pool

    first = workers.invoke(request(root, "StepA", {"ONLY_A": "a"}, {}))
    second = workers.invoke(request(root, "StepB", {"ONLY_B": "b"}, {}))

    assert workers.started == 1
    assert json.loads(first["payload"])["seen"] == {"ONLY_A": "a", "ONLY_B": None}
    assert json.loads(second["payload"])["seen"] == {"ONLY_A": None, "ONLY_B": "b"}
    assert 0 < json.loads(second["payload"])["left_ms"] <= 30_000
    # The logger made during the first invocation writes into the second one's log, not the first's.
    assert first["logs"] == ["step ran for StepA", "printed"]
    assert second["logs"] == ["step ran for StepB", "printed"]


def test_a_library_warning_is_logged_as_the_lambda_runtime_logs_it(pool):
    workers, root = pool
    invocation = request(root, "StepA", {}, {"warn": True})

    answer = workers.invoke(invocation)

    level, _time, request_id, message = answer["logs"][0].split("\t")
    assert (level, request_id, message) == ("[WARNING]", invocation["context"]["aws_request_id"], "careful")


def test_an_exception_is_the_runtime_function_error_and_is_logged(pool):
    workers, root = pool

    answer = workers.invoke(request(root, "StepA", {}, {"fail": True}))

    report = json.loads(answer["payload"])
    assert answer["function_error"] is True
    assert (report["errorType"], report["errorMessage"]) == ("ValueError", "the step refused")
    assert json.loads(answer["logs"][-1])["message"] == "Invoke Error"


def test_a_worker_that_dies_is_a_service_error_and_the_next_invocation_gets_a_new_one(pool):
    workers, root = pool

    with pytest.raises(LambdaServiceException):
        workers.invoke(request(root, "StepA", {}, {"exit": True}))
    answer = workers.invoke(request(root, "StepA", {}, {}))

    assert answer["function_error"] is False
    assert workers.started == 2


def test_a_function_that_fails_to_import_leaves_the_next_invocations_logs_whole_and_is_imported_again(pool):
    workers, root = pool
    (root / "broken").mkdir()
    (root / "broken" / "handler.py").write_text("raise ImportError('not today')\n")
    broken = request(root, "Broken", {}, {}) | {"code_dir": "broken"}

    workers.invoke(request(root, "StepA", {}, {}))
    first, again = workers.invoke(broken), workers.invoke(broken)
    after = workers.invoke(request(root, "StepA", {}, {}))

    assert [json.loads(a["payload"])["errorMessage"] for a in (first, again)] == ["not today", "not today"]
    assert after["logs"] == ["step ran for StepA", "printed"]


def test_a_function_that_exits_is_the_runtime_exit_error_and_its_worker_is_replaced(pool):
    workers, root = pool
    (root / "exits").mkdir()
    (root / "exits" / "handler.py").write_text("import sys\n\ndef handler(event, context):\n    sys.exit(3)\n")

    answer = workers.invoke(request(root, "Exits", {}, {}) | {"code_dir": "exits"})
    after = workers.invoke(request(root, "StepA", {}, {}))

    assert answer["function_error"] is True
    assert json.loads(answer["payload"])["errorType"] == "Runtime.ExitError"
    assert after["function_error"] is False and workers.started == 2
