"""The local stack keeps each state machine's syntax tree, not its program: every execution still evaluates
a program of its own, as moto would build it."""

import re

import pytest
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser, ASLParserException

import local.stack  # noqa: F401 - installs the kept-tree parse
from payments import topology
from statemachine import build


def definition(workflow):
    text = (build.STATEMACHINE_DIR.parent / workflow.asl_path).read_text()
    return re.sub(r"\$\{[A-Za-z0-9]+\}", "arn:aws:lambda:us-east-1:123456789012:function:Step", text)


@pytest.mark.parametrize("workflow", topology.WORKFLOWS, ids=lambda w: w.name)
def test_each_execution_gets_a_program_of_its_own_from_one_kept_syntax_tree(workflow):
    text = definition(workflow)

    first, first_tree = AmazonStateLanguageParser.parse(text)
    second, second_tree = AmazonStateLanguageParser.parse(text)

    assert first_tree is second_tree
    assert first is not second
    assert first.start_at.start_at_name == second.start_at.start_at_name


def test_a_definition_that_does_not_parse_is_still_refused_every_time():
    for _ in range(2):
        with pytest.raises(ASLParserException):
            AmazonStateLanguageParser.parse('{"StartAt": ')
