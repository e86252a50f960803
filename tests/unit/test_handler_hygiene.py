"""Every function's entry point logs no event, starts each invocation with a clean logging state,
and lets Tracer capture no response; nothing in the functions adds X-Ray annotations or metadata.

So what reaches logs and X-Ray from a handler is only what it logs on purpose and the messages of
the exceptions it raises, which the card-data scans read in the logs and the execution history.
"""

import ast
from pathlib import Path

import pytest

from payments import topology

LAMBDAS = Path(__file__).resolve().parents[2] / "lambdas"


def entry_points():
    for spec in topology.ALL_FUNCTIONS:
        module, _, name = spec.handler.rpartition(".")
        tree = ast.parse((LAMBDAS / spec.code_dir / f"{module}.py").read_text())
        [function] = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == name]
        yield spec.step, function


def keywords(function, decorator):
    for node in function.decorator_list:
        if isinstance(node, ast.Call) and ast.unparse(node.func) == decorator:
            return {k.arg: ast.literal_eval(k.value) for k in node.keywords}
    return None


@pytest.mark.parametrize(("step", "function"), list(entry_points()), ids=lambda v: v if isinstance(v, str) else "")
def test_the_entry_point_logs_no_event_clears_its_state_and_captures_no_response(step, function):
    logging = keywords(function, "logger.inject_lambda_context")
    tracing = keywords(function, "tracer.capture_lambda_handler")

    assert logging is not None and logging["log_event"] is False and logging["clear_state"] is True, step
    assert tracing is not None and tracing["capture_response"] is False, step


def test_nothing_adds_xray_annotations_or_metadata():
    sources = "\n".join(path.read_text() for path in LAMBDAS.rglob("*.py"))

    assert "put_annotation" not in sources and "put_metadata" not in sources
    assert "capture_method" not in sources  # it would record return values
