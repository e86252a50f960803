"""The local stack's changes to moto (local.moto_patches): work moto repeated is done once, and nothing an
execution changes is shared with another."""

import re
import threading

import jsonpath_ng.ext
import pytest
from moto.stepfunctions.parser.asl.component.component import Component
from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser, ASLParserException
from moto.stepfunctions.parser.asl.utils import json_path

from local import moto_patches
from payments import topology
from statemachine import build


def definition(workflow):
    text = (build.STATEMACHINE_DIR.parent / workflow.asl_path).read_text()
    return re.sub(r"\$\{[A-Za-z0-9]+\}", "arn:aws:lambda:us-east-1:123456789012:function:Step", text)


def components(value, seen=None):
    seen = set() if seen is None else seen
    if id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, Component):
        yield value
        for attribute in vars(value).values():
            yield from components(attribute, seen)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from components(item, seen)
    elif isinstance(value, dict):
        for item in value.values():
            yield from components(item, seen)


@pytest.mark.parametrize("workflow", topology.WORKFLOWS, ids=lambda w: w.name)
def test_a_definition_is_compiled_once_with_every_heap_key_drawn_before_it_is_shared(workflow):
    text = definition(workflow)

    first, _ = AmazonStateLanguageParser.parse(text)
    second, _ = AmazonStateLanguageParser.parse(text)

    assert first is second
    evaluated = [c for c in components(first) if isinstance(c, EvalComponent)]
    retriers = [c for c in evaluated if type(c).__name__ == "MaxAttemptsDecl"]
    assert retriers, "every workflow retries some step"
    # Drawn already: reading the key does not draw a new one (it would race between executions).
    assert all(c._EvalComponent__heap_key is not None for c in evaluated)
    assert len({c.heap_key for c in evaluated}) == len(evaluated)


def test_a_definition_that_does_not_parse_is_still_refused_every_time():
    for _ in range(2):
        with pytest.raises(ASLParserException):
            AmazonStateLanguageParser.parse('{"StartAt": ')


def test_a_jsonpath_is_compiled_once_and_finds_the_same_as_a_fresh_parser():
    data = {"Payment": {"TransactionID": "t-1", "Amounts": [{"Value": "1.00"}, {"Value": "2.00"}]}}
    path = "$.Payment.Amounts[*].Value"

    assert json_path.parse(path) is json_path.parse(path)
    assert jsonpath_ng.ext.parse(path) is json_path.parse(path)
    fresh = jsonpath_ng.ext.parser.ExtendedJsonPathParser().parse(path)
    assert [m.value for m in json_path.parse(path).find(data)] == [m.value for m in fresh.find(data)]
    assert json_path.extract_json("$.Payment.TransactionID", data) == "t-1"


def test_a_wait_for_an_execution_end_returns_when_it_is_announced_or_at_once_if_it_was():
    ends = moto_patches.ExecutionEnds()
    waited: list[bool] = []
    waiter = threading.Thread(target=lambda: waited.append(ends.wait("arn:1", timeout=30)))
    waiter.start()
    ends.announce("arn:1")
    waiter.join(timeout=30)

    assert waited == [True]
    assert ends.wait("arn:1", timeout=0) is True
    assert ends.wait("arn:2", timeout=0) is False
