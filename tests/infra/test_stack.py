"""The synthesized template is the workflow that runs locally, deployed as a security reviewer wants it."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from infra.functions import POWERTOOLS_VERSION, PYTHON_RUNTIME
from payments import topology
from tests.infra.conftest import synthesize

REPO = Path(__file__).resolve().parents[2]
OBSERVABILITY_ACTIONS = {
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
}


def resources(template, kind):
    return template.find_resources(kind)


def logical_id(stack, construct):
    return stack.get_logical_id(construct.node.default_child)


def role_statements(stack, template, step):
    """Every statement of the policies attached to a step's role, with logs and X-Ray set aside."""
    role_id = logical_id(stack, stack.steps.roles[step])
    statements = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return [s for s in statements if not actions_of([s]) <= OBSERVABILITY_ACTIONS]


def actions_of(statements):
    found = set()
    for statement in statements:
        action = statement["Action"]
        found |= {action} if isinstance(action, str) else set(action)
    return found


def test_the_definition_is_the_asl_file_with_only_the_placeholders_substituted(prod):
    stack, template, outdir = prod
    [machine] = resources(template, "AWS::StepFunctions::StateMachine").values()
    properties = machine["Properties"]
    # The definition ships as the file itself (an asset), byte for byte...
    asset = outdir / f"asset.{properties['DefinitionS3Location']['Key']}"
    asl = (REPO / topology.ASL_PATH).read_text()
    assert asset.read_text() == asl
    # ...and CloudFormation substitutes exactly its placeholders, each with its own function.
    placeholders = set(re.findall(r"\$\{([A-Za-z0-9]+)\}", asl))
    substitutions = properties["DefinitionSubstitutions"]
    assert set(substitutions) == placeholders
    for spec in topology.FUNCTIONS:
        function_id = logical_id(stack, stack.steps.functions[spec.step])
        assert substitutions[spec.placeholder] == {"Fn::GetAtt": [function_id, "Arn"]}


def test_execution_logging_is_all_levels_without_execution_data_and_traced(prod):
    _, template, _ = prod
    [machine] = resources(template, "AWS::StepFunctions::StateMachine").values()
    properties = machine["Properties"]
    assert properties["StateMachineType"] == "STANDARD"
    assert properties["LoggingConfiguration"]["Level"] == "ALL"
    assert properties["LoggingConfiguration"]["IncludeExecutionData"] is False
    assert properties["TracingConfiguration"] == {"Enabled": True}
    assert properties["EncryptionConfiguration"]["Type"] == "CUSTOMER_MANAGED_KMS_KEY"


EXPECTED_ACTIONS = {
    "Tokenize": {"kms:GenerateDataKey"},
    "LedgerInitiated": {"dynamodb:PutItem", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"},
    "LedgerPending": {"dynamodb:PutItem", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"},
    "LedgerSuccess": {"dynamodb:PutItem", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"},
    "LedgerFailed": {"dynamodb:PutItem", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"},
    "CallProcessor": {
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "secretsmanager:GetSecretValue",
        "dynamodb:PutItem",
        "kms:Encrypt",
        "kms:DescribeKey",
    },
    "Normalize": set(),
    "Audit": {"dynamodb:PutItem", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"},
}


@pytest.mark.parametrize("step", [spec.step for spec in topology.FUNCTIONS])
def test_each_role_grants_exactly_its_steps_actions(prod, step):
    stack, template, _ = prod
    assert actions_of(role_statements(stack, template, step)) == EXPECTED_ACTIONS[step]


def test_direct_kms_use_is_bound_to_its_purpose_and_table_keys_only_through_dynamodb(prod):
    stack, template, _ = prod
    for spec in topology.FUNCTIONS:
        for statement in role_statements(stack, template, spec.step):
            if not any(a.startswith("kms:") for a in actions_of([statement])):
                continue
            conditions = json.dumps(statement.get("Condition", {}))
            assert "kms:EncryptionContext:purpose" in conditions or "kms:ViaService" in conditions, statement
            if "purpose" in conditions:
                purpose = statement["Condition"]["StringEquals"]["kms:EncryptionContext:purpose"]
                expected = {"Tokenize": {"secure-token"}, "CallProcessor": {"secure-token", "audit"}}[spec.step]
                assert purpose in expected
                # Only CallProcessor decrypts, and only tokens: no workflow role can open an audit payload.
                if "kms:Decrypt" in actions_of([statement]):
                    assert (spec.step, purpose) == ("CallProcessor", "secure-token")


def test_no_role_can_change_or_delete_a_ledger_or_audit_item(prod):
    _, template, _ = prod
    text = json.dumps(resources(template, "AWS::IAM::Policy"))
    for forbidden in ("dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem", "dynamodb:*"):
        assert forbidden not in text


def test_only_call_processor_reads_the_converge_secret(prod):
    stack, template, _ = prod
    readers = [
        s.step
        for s in topology.FUNCTIONS
        if "secretsmanager:GetSecretValue" in actions_of(role_statements(stack, template, s.step))
    ]
    assert readers == ["CallProcessor"]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_tables_have_pitr_the_payment_key_and_prod_deletion_protection(env, dev, prod):
    stack, template, _ = {"dev": dev, "prod": prod}[env]
    key_id = logical_id(stack, stack.key)
    tables = resources(template, "AWS::DynamoDB::GlobalTable")
    assert len(tables) == 2
    for table in tables.values():
        replica = table["Properties"]["Replicas"][0]
        assert replica["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert replica["SSESpecification"]["KMSMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
        assert replica.get("DeletionProtectionEnabled", False) is (env == "prod")
        assert table["Properties"]["BillingMode"] == "PAY_PER_REQUEST"
        assert table["DeletionPolicy"] == ("Retain" if env == "prod" else "Delete")


def test_the_key_rotates_and_lets_cloudwatch_alarms_reach_the_encrypted_topic(prod):
    _, template, _ = prod
    [key] = resources(template, "AWS::KMS::Key").values()
    assert key["Properties"]["EnableKeyRotation"] is True
    statements = {s.get("Sid"): s for s in key["Properties"]["KeyPolicy"]["Statement"]}
    assert statements["CloudWatchAlarmsOfThisAccount"]["Principal"] == {"Service": "cloudwatch.amazonaws.com"}


def test_functions_are_arm64_and_traced(prod):
    _, template, _ = prod
    functions = resources(template, "AWS::Lambda::Function")
    assert len(functions) == len(topology.FUNCTIONS)
    for function in functions.values():
        properties = function["Properties"]
        assert properties["Architectures"] == ["arm64"]
        assert properties["TracingConfig"] == {"Mode": "Active"}


def test_the_project_runtime_is_python_3_12():
    # One Python everywhere: Lambda, the Powertools layer build, the tests (SnapStart for Python needs >= 3.12).
    assert PYTHON_RUNTIME == "python3.12"


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_every_function_runs_python_3_12_with_the_python_3_12_powertools_layer(env, dev, prod):
    _, template, _ = {"dev": dev, "prod": prod}[env]
    parameters = template.to_json()["Parameters"]
    functions = resources(template, "AWS::Lambda::Function")
    assert functions
    for function_id, function in functions.items():
        properties = function["Properties"]
        assert properties["Runtime"] == "python3.12", function_id
        [layer] = properties["Layers"]
        # The layer ARN is the public Powertools SSM parameter, resolved by CloudFormation at deploy time.
        parameter = parameters[layer["Ref"]]
        assert parameter["Type"] == "AWS::SSM::Parameter::Value<String>"
        assert parameter["Default"] == f"/aws/service/powertools/python/arm64/python3.12/{POWERTOOLS_VERSION}"


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_each_function_gets_exactly_its_variables_with_the_key_tables_and_secret_resolved(env, dev, prod):
    stack, template, _ = {"dev": dev, "prod": prod}[env]
    functions = resources(template, "AWS::Lambda::Function")
    # What each variable must resolve to: the payment key, the two tables, the Converge secret.
    expected = {
        topology.PAYMENT_KMS_KEY_ARN: {"Fn::GetAtt": [logical_id(stack, stack.key), "Arn"]},
        topology.DYNAMODB_TABLE_NAME: {"Ref": logical_id(stack, stack.tables.ledger)},
        topology.DYNAMODB_AUDIT_TABLE_NAME: {"Ref": logical_id(stack, stack.tables.audit)},
        topology.CONVERGE_SECRET_ARN: {"Ref": logical_id(stack, stack.converge_secret)},
    }
    assert logical_id(stack, stack.tables.ledger) != logical_id(stack, stack.tables.audit)
    for spec in topology.FUNCTIONS:
        properties = functions[logical_id(stack, stack.steps.functions[spec.step])]["Properties"]
        variables = properties["Environment"]["Variables"]
        assert sorted(variables) == sorted(spec.environment("aws")), spec.step
        for name, value in variables.items():
            if name in expected:
                assert value == expected[name], (spec.step, name)
    # The key and table variables are not dead letters: each reaches at least one function.
    given = {name for spec in topology.FUNCTIONS for name in spec.environment("aws")}
    assert {
        topology.PAYMENT_KMS_KEY_ARN,
        topology.DYNAMODB_TABLE_NAME,
        topology.DYNAMODB_AUDIT_TABLE_NAME,
    } <= given


def test_upstream_policy_starts_and_describes_this_workflow_only(prod):
    stack, template, _ = prod
    [policy] = resources(template, "AWS::IAM::ManagedPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert actions_of(statements) == {
        "states:StartExecution",
        "states:DescribeExecution",
        "kms:GenerateDataKey",
        "kms:Decrypt",
    }
    read = next(s for s in statements if s["Sid"] == "ReadPayment")
    machine_id = stack.get_logical_id(stack.workflow.state_machine.node.default_child)
    parts = read["Resource"]["Fn::Join"][1]
    rendered = "".join(p if isinstance(p, str) else "<" + json.dumps(p) + ">" for p in parts)
    assert rendered.endswith(f":execution:<{json.dumps({'Fn::GetAtt': [machine_id, 'Name']})}>:*")
    kms_statement = next(s for s in statements if s["Sid"] == "WorkflowEncryption")
    assert "kms:EncryptionContext:aws:states:stateMachineArn" in kms_statement["Condition"]["StringEquals"]


def test_cdk_nag_aws_solutions_has_no_unacknowledged_finding(tmp_path):
    from aws_cdk import Validations  # noqa: F401 - imported for the side effect of loading the jsii module

    from infra.nag import check_with_cdk_nag

    app, stack = synthesize("prod", tmp_path)
    check_with_cdk_nag(app, stack)
    app.synth()  # raises if AwsSolutions reports an error that is not acknowledged
    report = json.loads((tmp_path / "validation-report.json").read_text())
    assert "AwsSolutions" in json.dumps(report)
    text = json.dumps(report)
    for acknowledged in re.findall(r'"reason": "([^"]*)"', text):
        assert len(acknowledged) > 40  # every acknowledgement says why, specifically


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_cfn_lint_reports_no_error(env, tmp_path):
    app, _ = synthesize(env, tmp_path)
    app.synth()
    template = tmp_path / f"PaymentWorkflow-{env}.template.json"
    result = subprocess.run(
        [sys.executable, "-m", "cfnlint", str(template)], capture_output=True, text=True, check=False
    )
    assert result.returncode & 2 == 0, result.stdout  # cfn-lint: bit 2 = errors, 4 = warnings, 8 = informational
