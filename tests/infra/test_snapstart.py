"""SnapStart: in staging and prod the step functions run from a snapshot of a published version, which the
state machines invoke through an alias; dev runs $LATEST, without SnapStart (infra.functions)."""

import json

import pytest

from infra import config as environments
from infra.functions import LIVE_ALIAS
from payments import topology
from tests.infra.conftest import synthesized
from tests.infra.test_stack import logical_id, resources

SNAP_START = {"ApplyOn": "PublishedVersions"}
UNSNAPPED = (topology.INTAKE_FUNCTION, topology.EVENTS_FUNCTION)  # invoked by name, not by a state machine


@pytest.fixture(scope="module")
def staging(tmp_path_factory):
    return synthesized("staging", tmp_path_factory.mktemp("staging"))


@pytest.fixture
def deployed(request, dev, staging, prod):
    return {"dev": dev, "staging": staging, "prod": prod}[request.param]


def function_properties(stack, template, spec):
    return resources(template, "AWS::Lambda::Function")[logical_id(stack, stack.steps.functions[spec.step])][
        "Properties"
    ]


def test_snapstart_is_on_in_staging_and_prod_and_off_in_dev():
    assert {name: environments.load(name).snap_start for name in ("dev", "staging", "prod")} == {
        "dev": False,
        "staging": True,
        "prod": True,
    }


def test_snap_start_must_be_a_boolean():
    settings = json.loads((environments.REPO_ROOT / "cdk.json").read_text())["context"][environments.CONTEXT_KEY]
    settings["staging"]["snap_start"] = "yes"

    with pytest.raises(SystemExit, match="snap_start must be true or false"):
        environments.load("staging", settings)


@pytest.mark.parametrize("deployed", ["staging", "prod"], indirect=True)
def test_every_step_function_applies_snapstart_to_published_versions_on_arm64_python_3_12(deployed):
    stack, template, _ = deployed
    for spec in topology.FUNCTIONS:
        properties = function_properties(stack, template, spec)
        assert properties["SnapStart"] == SNAP_START, spec.step
        assert properties["Architectures"] == ["arm64"] and properties["Runtime"] == "python3.12", spec.step
        assert "EphemeralStorage" not in properties and "FileSystemConfigs" not in properties, spec.step
    # The intake and LedgerEvents are invoked by name ($LATEST): no snapshot would ever be used.
    for spec in UNSNAPPED:
        assert "SnapStart" not in function_properties(stack, template, spec), spec.step


@pytest.mark.parametrize("deployed", ["staging", "prod"], indirect=True)
def test_each_step_has_one_published_version_and_the_live_alias_on_it(deployed):
    stack, template, _ = deployed
    versions = resources(template, "AWS::Lambda::Version")
    aliases = resources(template, "AWS::Lambda::Alias")
    assert len(versions) == len(aliases) == len(topology.FUNCTIONS)
    for spec in topology.FUNCTIONS:
        function = {"Ref": logical_id(stack, stack.steps.functions[spec.step])}
        alias = aliases[logical_id(stack, stack.steps.aliases[spec.step])]["Properties"]
        [version_id] = [i for i, v in versions.items() if v["Properties"]["FunctionName"] == function]
        assert alias["Name"] == LIVE_ALIAS
        assert alias["FunctionName"] == function
        assert alias["FunctionVersion"] == {"Fn::GetAtt": [version_id, "Version"]}
        assert "ProvisionedConcurrencyConfig" not in alias  # SnapStart does not go with provisioned concurrency
        # The version the next deployment supersedes is deleted: a version keeps its snapshot, billed, while it lives.
        assert versions[version_id]["DeletionPolicy"] == "Delete"
        assert "ProvisionedConcurrencyConfig" not in versions[version_id]["Properties"]


@pytest.mark.parametrize("deployed", ["staging", "prod"], indirect=True)
def test_the_state_machines_invoke_each_step_by_its_alias_never_latest(deployed):
    stack, template, _ = deployed
    for workflow in topology.WORKFLOWS:
        machine = stack.workflows[workflow.name].state_machine
        properties = resources(template, "AWS::StepFunctions::StateMachine")[logical_id(stack, machine)]["Properties"]
        substitutions = properties["DefinitionSubstitutions"]
        for spec in workflow.functions:
            assert substitutions[spec.placeholder] == {"Ref": logical_id(stack, stack.steps.aliases[spec.step])}
        # Its role may invoke the aliases, and no function unqualified ($LATEST) nor ":*" (any version).
        policies = [
            p["Properties"]["PolicyDocument"]["Statement"]
            for p in resources(template, "AWS::IAM::Policy").values()
            if {"Ref": logical_id(stack, machine.role)} in p["Properties"]["Roles"]
        ]
        [invoke] = [s for statements in policies for s in statements if s.get("Sid") == "InvokeSteps"]
        assert sorted(map(json.dumps, invoke["Resource"])) == sorted(
            json.dumps({"Ref": logical_id(stack, stack.steps.aliases[spec.step])}) for spec in workflow.functions
        )


def test_dev_runs_latest_without_snapstart_versions_or_aliases(dev):
    stack, template, _ = dev
    for spec in topology.ALL_FUNCTIONS:
        assert "SnapStart" not in function_properties(stack, template, spec), spec.step
    assert resources(template, "AWS::Lambda::Version") == {} and resources(template, "AWS::Lambda::Alias") == {}
    assert stack.steps.aliases == {}
    for workflow in topology.WORKFLOWS:
        machine = stack.workflows[workflow.name].state_machine
        properties = resources(template, "AWS::StepFunctions::StateMachine")[logical_id(stack, machine)]["Properties"]
        for spec in workflow.functions:
            function_id = logical_id(stack, stack.steps.functions[spec.step])
            assert properties["DefinitionSubstitutions"][spec.placeholder] == {"Fn::GetAtt": [function_id, "Arn"]}
