"""The laptop stack and the deployed stack agree on what the code depends on."""

from payments import topology
from tests.infra.test_stack import resources


def key_schema(table):
    return sorted((k["AttributeName"], k["KeyType"]) for k in table["KeySchema"])


def attribute_types(table):
    return sorted((a["AttributeName"], a["AttributeType"]) for a in table["AttributeDefinitions"])


def test_tables_have_the_same_names_and_key_schemas(info, prod):
    _, template, _ = prod
    deployed = {
        t["Properties"]["TableName"]: t["Properties"]
        for t in resources(template, "AWS::DynamoDB::GlobalTable").values()
    }
    dynamodb = info.client("dynamodb")
    for spec in topology.TABLES:
        local = dynamodb.describe_table(TableName=spec.name)["Table"]
        remote = deployed[f"{spec.name}-prod"]  # each environment suffixes the same base name
        assert key_schema(local) == key_schema(remote)
        assert attribute_types(local) == attribute_types(remote)


def test_each_function_gets_the_same_environment_variable_names(info, prod):
    stack, template, _ = prod
    lambda_client = info.client("lambda")
    functions = resources(template, "AWS::Lambda::Function")
    for spec in topology.FUNCTIONS:
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
    key_users = [s.step for s in topology.FUNCTIONS if topology.PAYMENT_KMS_KEY_ARN in s.env_vars]
    assert key_users == ["Tokenize", "CallProcessor"]
