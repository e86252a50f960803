"""The laptop stack and the deployed stack agree on what the code depends on."""

import json

from payments import topology
from tests.infra.test_stack import logical_id, resources


def key_schema(table):
    return sorted((k["AttributeName"], k["KeyType"]) for k in table["KeySchema"])


def attribute_types(table):
    return sorted((a["AttributeName"], a["AttributeType"]) for a in table["AttributeDefinitions"])


def deployed_tables(template):
    return {
        t["Properties"]["TableName"]: t["Properties"]
        for t in resources(template, "AWS::DynamoDB::GlobalTable").values()
    }


def test_tables_have_the_same_names_and_key_schemas(info, prod):
    _, template, _ = prod
    deployed = deployed_tables(template)
    dynamodb = info.client("dynamodb")
    for spec in (*topology.TABLES, topology.CARD_VAULT_TABLE):
        local = dynamodb.describe_table(TableName=spec.name)["Table"]
        remote = deployed[f"{spec.name}-prod"]  # each environment suffixes the same base name
        assert key_schema(local) == key_schema(remote), spec.name
        assert attribute_types(local) == attribute_types(remote), spec.name
    assert len(deployed) == len(topology.TABLES) + 1


def test_the_card_vault_expires_on_the_same_attribute_and_has_no_stream_in_either_stack(info, prod):
    _, template, _ = prod
    remote = deployed_tables(template)[f"{topology.CARD_VAULT_TABLE.name}-prod"]
    dynamodb = info.client("dynamodb")
    local_ttl = dynamodb.describe_time_to_live(TableName=topology.CARD_VAULT_TABLE.name)["TimeToLiveDescription"]
    assert local_ttl["TimeToLiveStatus"] == "ENABLED"
    assert local_ttl["AttributeName"] == remote["TimeToLiveSpecification"]["AttributeName"] == "ExpiresAt"
    local = dynamodb.describe_table(TableName=topology.CARD_VAULT_TABLE.name)["Table"]
    assert not local.get("StreamSpecification", {}).get("StreamEnabled", False)
    assert "StreamSpecification" not in remote


def test_both_state_machines_discard_a_failed_payments_card_from_their_own_vault(info, prod):
    stack, template, _ = prod
    described = info.client("stepfunctions").describe_state_machine(stateMachineArn=info.state_machine_arn)
    local = json.loads(described["definition"])["States"]["DiscardCard"]
    assert local["Resource"] == "arn:aws:states:::dynamodb:deleteItem"
    assert local["Parameters"]["TableName"] == info.card_vault_table == topology.CARD_VAULT_TABLE.name
    [machine] = resources(template, "AWS::StepFunctions::StateMachine").values()
    deployed = machine["Properties"]["DefinitionSubstitutions"][topology.CARD_VAULT_TABLE_PLACEHOLDER]
    assert deployed == {"Ref": logical_id(stack, stack.tables.vault)}


def test_each_function_gets_the_same_environment_variable_names(info, prod):
    stack, template, _ = prod
    lambda_client = info.client("lambda")
    functions = resources(template, "AWS::Lambda::Function")
    for spec in topology.ALL_FUNCTIONS:
        local = set(
            lambda_client.get_function_configuration(FunctionName=spec.function_name)["Environment"]["Variables"]
        )
        deployed_id = stack.get_logical_id(stack.steps.functions[spec.step].node.default_child)
        deployed = set(functions[deployed_id]["Properties"]["Environment"]["Variables"])
        # The one intended difference: Converge credentials come from a secret in AWS.
        if spec.uses_processor:
            local -= set(topology.CONVERGE_CREDENTIALS_ENV["local"])
            deployed -= set(topology.CONVERGE_CREDENTIALS_ENV["aws"])
        assert local == deployed, spec.step
    key_users = [s.step for s in topology.ALL_FUNCTIONS if topology.PAYMENT_KMS_KEY_ARN in s.env_vars]
    assert key_users == ["Intake", "Tokenize", "CallProcessor"]
