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
    for spec in (*topology.TABLES, topology.CARD_VAULT_TABLE, topology.IDEMPOTENCY_TABLE):
        local = dynamodb.describe_table(TableName=spec.name)["Table"]
        remote = deployed[f"{spec.name}-prod"]  # each environment suffixes the same base name
        assert key_schema(local) == key_schema(remote), spec.name
        assert attribute_types(local) == attribute_types(remote), spec.name
    assert len(deployed) == len(topology.TABLES) + 2  # and the vault, and LedgerEvents' idempotency records


def test_the_idempotency_records_expire_on_the_same_attribute_in_both_stacks(info, prod):
    # Powertools writes its records with "expiration" (payments.event_publishing): the TTL must name it.
    _, template, _ = prod
    remote = deployed_tables(template)[f"{topology.IDEMPOTENCY_TABLE.name}-prod"]
    local_ttl = info.client("dynamodb").describe_time_to_live(TableName=topology.IDEMPOTENCY_TABLE.name)[
        "TimeToLiveDescription"
    ]
    assert local_ttl["TimeToLiveStatus"] == "ENABLED"
    assert local_ttl["AttributeName"] == remote["TimeToLiveSpecification"]["AttributeName"] == "expiration"
    assert topology.IDEMPOTENCY_TABLE.ttl_attribute == "expiration"


def test_the_ledger_streams_new_images_in_both_stacks(info, prod):
    # LedgerEvents reads each new entry's NewImage from the ledger's stream, locally as deployed.
    _, template, _ = prod
    remote = deployed_tables(template)[f"{topology.LEDGER_TABLE.name}-prod"]
    local = info.client("dynamodb").describe_table(TableName=topology.LEDGER_TABLE.name)["Table"]
    assert local["StreamSpecification"]["StreamEnabled"] is True
    images = {"NEW_IMAGE", "NEW_AND_OLD_IMAGES"}
    assert local["StreamSpecification"]["StreamViewType"] in images
    assert remote["StreamSpecification"]["StreamViewType"] in images


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
    machine = resources(template, "AWS::StepFunctions::StateMachine")[logical_id(stack, stack.workflow.state_machine)]
    deployed = machine["Properties"]["DefinitionSubstitutions"][topology.CARD_VAULT_TABLE_PLACEHOLDER]
    assert deployed == {"Ref": logical_id(stack, stack.tables.vault)}


def invoked_functions(definition):
    """The function names (the last part of each ARN) a definition's Lambda tasks invoke, a Map's included."""
    found = set()
    for state in definition["States"].values():
        function = state.get("Parameters", {}).get("FunctionName")
        if function is not None:
            found.add(function.rsplit(":", 1)[-1])
        if "ItemProcessor" in state:
            found |= invoked_functions(state["ItemProcessor"])
    return found


def test_both_stacks_run_the_same_state_machines_invoking_the_same_functions(info, prod):
    # The laptop runs each workflow of the topology under its base name, the deployed stack under <name>-prod;
    # each invokes the same functions (by name, a Map's iterations' too), and the operation machine serves
    # capture, void and refund.
    stack, template, _ = prod
    client = info.client("stepfunctions")
    local = {m["name"]: m["stateMachineArn"] for m in client.list_state_machines()["stateMachines"]}
    assert set(local) == {workflow.name for workflow in topology.WORKFLOWS}
    assert local[topology.PAYMENT_WORKFLOW.name] == info.state_machine_arn
    operations = local[topology.OPERATION_WORKFLOW.name]
    assert info.capture_state_machine_arn == info.void_state_machine_arn == info.refund_state_machine_arn == operations
    functions = resources(template, "AWS::Lambda::Function")
    aliases = resources(template, "AWS::Lambda::Alias")

    def function_name(value):
        """The function a substitution names: by its ARN, or (prod: SnapStart) by its alias's."""
        if "Ref" in value:  # an alias: {"Ref": alias} is its ARN, and it names its function by {"Ref": function}
            value = {"Fn::GetAtt": [aliases[value["Ref"]]["Properties"]["FunctionName"]["Ref"], "Arn"]}
        return functions[value["Fn::GetAtt"][0]]["Properties"]["FunctionName"]

    for workflow in topology.WORKFLOWS:
        definition = json.loads(client.describe_state_machine(stateMachineArn=local[workflow.name])["definition"])
        machine = resources(template, "AWS::StepFunctions::StateMachine")[
            logical_id(stack, stack.workflows[workflow.name].state_machine)
        ]
        assert machine["Properties"]["StateMachineName"] == f"{workflow.name}-prod"
        deployed = {
            function_name(value)
            for value in machine["Properties"]["DefinitionSubstitutions"].values()
            if isinstance(value, dict) and ("Fn::GetAtt" in value or value.get("Ref") in aliases)
        }
        assert {f"{name}-prod" for name in invoked_functions(definition)} == deployed, workflow.name
        assert invoked_functions(definition) == {spec.function_name for spec in workflow.functions}, workflow.name


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
