"""Every IAM statement names the exact resource it is for; only X-Ray (and CDK's log delivery, for the
state machine) is granted on Resource "*".

cdk-nag's AwsSolutions-IAM5[Resource::*] finding does not say which actions are on "*", and test_stack
checks actions, not resources: these tests are what fails when a statement is widened.
"""

import json

import pytest

from infra import names
from infra.network import NETWORK_DESCRIBE_ACTIONS
from payments import topology
from tests.infra.test_stack import invoked_arn, logical_id, resources

XRAY_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
# What CDK adds to a traced, logging state machine's role; none of these supports resource-level permissions.
STATE_MACHINE_ACTIONS_ON_ANY_RESOURCE = XRAY_ACTIONS | {
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}
# Each statement of each function's role, by Sid: the one resource it names (its actions: test_stack).
# Card data is under the card-data key, audit payloads under the audit key; "<Table>TableKey" is what
# DynamoDB needs of the storage key, for that table only.
STATEMENT_RESOURCES = {
    "Intake": {
        "CardSealing": "card_data_key",
        "VaultDeposit": "vault",
        "VaultTableKey": "storage_key",
        "StartPayment": "state_machine",
        "ReadPayment": "executions",
        "WorkflowEncryption": "storage_key",
    },
    "Tokenize": {
        "VaultDecryption": "card_data_key",
        "TokenEncryption": "card_data_key",
        "VaultCardRead": "vault",
        "VaultTableKey": "storage_key",
    },
    "LedgerInitiated": {"LedgerAppend": "ledger", "LedgerTableKey": "storage_key"},
    "LedgerPending": {"LedgerAppend": "ledger", "LedgerLinkRead": "ledger", "LedgerTableKey": "storage_key"},
    "CallProcessor": {
        "TokenDecryption": "card_data_key",
        "VaultDecryption": "card_data_key",
        "AuditEncryption": "audit_key",
        "ConvergeCredentials": "secret",
        "ConvergeCredentialsKey": "storage_key",
        "AuditAppend": "audit",
        "AuditTrailRead": "audit",
        "AuditTableKey": "storage_key",
        "VaultCvvRead": "vault",
        "VaultCvvRemoval": "vault",
        "VaultTableKey": "storage_key",
        "LedgerRead": "ledger",
        "LedgerTableKey": "storage_key",
    },
    "Normalize": {},
    "LedgerSuccess": {
        "LedgerAppend": "ledger",
        "LedgerLinkRead": "ledger",
        "LedgerTableKey": "storage_key",
        "VaultRemoval": "vault",
        "VaultTableKey": "storage_key",
    },
    "LedgerFailed": {
        "LedgerAppend": "ledger",
        "LedgerLinkRead": "ledger",
        "LedgerTableKey": "storage_key",
        "VaultRemoval": "vault",
        "VaultTableKey": "storage_key",
    },
    "Audit": {"AuditAppend": "audit", "AuditTrailRead": "audit", "AuditTableKey": "storage_key"},
    # An operation's steps (capture, void, refund): the ledger, the audit trail, the audit and storage keys.
    # Never the card-data key, never the vault.
    "AdmitOperation": {
        "LedgerRead": "ledger",
        "LedgerLinkRead": "ledger",
        "LedgerAppend": "ledger",
        "LedgerTableKey": "storage_key",
    },
    "OperationPending": {
        "LedgerRead": "ledger",
        "LedgerLinkRead": "ledger",
        "LedgerAppend": "ledger",
        "LedgerTableKey": "storage_key",
    },
    "CallOperationProcessor": {
        "AuditEncryption": "audit_key",
        "ConvergeCredentials": "secret",
        "ConvergeCredentialsKey": "storage_key",
        "AuditAppend": "audit",
        "AuditTableKey": "storage_key",
        "AuditTrailRead": "audit",
        "LedgerRead": "ledger",
        "LedgerTableKey": "storage_key",
    },
    "OperationSuccess": {
        "LedgerRead": "ledger",
        "LedgerLinkRead": "ledger",
        "LedgerAppend": "ledger",
        "LedgerTableKey": "storage_key",
    },
    "OperationFailed": {
        "LedgerRead": "ledger",
        "LedgerLinkRead": "ledger",
        "LedgerAppend": "ledger",
        "LedgerTableKey": "storage_key",
        "OperationAttemptsRead": "audit",
        "AuditTableKey": "storage_key",
    },
    # Status sync: the ledger's index; the resolver what CallOperationProcessor holds, on any trail, the ledger's
    # link and append, and the payment and operation executions (test_status_sync_stack).
    "FindUnresolved": {
        "LedgerIndexRead": "ledger_index",
        "LedgerTableKey": "storage_key",
        "StatusSyncRunsList": "status_sync_machine",
    },
    "ResolveUnresolved": {
        "AuditEncryption": "audit_key",
        "ConvergeCredentials": "secret",
        "ConvergeCredentialsKey": "storage_key",
        "AuditAppend": "audit",
        "AuditTableKey": "storage_key",
        "AuditTrailRead": "audit",
        "LedgerRead": "ledger",
        "LedgerLinkRead": "ledger",
        "LedgerAppend": "ledger",
        "LedgerTableKey": "storage_key",
        "ExecutionStatusRead": "payment_and_operation_executions",
    },
    # Reconciliation: the report bucket's prefixes, the ledger's index and history (test_reconciliation_stack).
    "PlanReconciliation": {},
    "ListProcessorWindow": {
        "ConvergeCredentials": "secret",
        "ConvergeCredentialsKey": "storage_key",
        "WindowListingWrite": "window_listings",
        "ReportBucketKey": "storage_key",
    },
    "MatchLedger": {
        "LedgerIndexRead": "ledger_index",
        "LedgerRead": "ledger",
        "LedgerLinkRead": "ledger",
        "LedgerAppend": "ledger",
        "LedgerTableKey": "storage_key",
        "WindowListingRead": "window_listings",
        "ReportWrite": "reports",
        "ReportBucketList": "report_bucket",
        "ReportBucketKey": "storage_key",
    },
    # The ledger's stream (never its items), the payments bus, its idempotency records, its failure queue.
    "LedgerEvents": {
        "LedgerStreamRead": "ledger_stream",
        "LedgerStreamList": "any",  # dynamodb:ListStreams takes no resource
        "LedgerStreamKey": "storage_key",
        "EventPublishing": "bus",
        "IdempotencyRecords": "idempotency",
        "IdempotencyTableKey": "storage_key",
        "FailureDelivery": "failures",
        "FailureDeliveryKey": "storage_key",
    },
}
assert set(STATEMENT_RESOURCES) == {spec.step for spec in topology.ALL_FUNCTIONS}
# What Lambda needs of each role to attach its function to the VPC: this account's network interfaces,
# and the two Describe actions, which take no resource.
NETWORK_INTERFACES = {
    "Fn::Join": [
        "",
        ["arn:", {"Ref": "AWS::Partition"}, ":ec2:", {"Ref": "AWS::Region"}, ":", {"Ref": "AWS::AccountId"}, ":*/*"],
    ]
}
VPC_ATTACHMENT = {"NetworkInterfaces": NETWORK_INTERFACES, "NetworkInterfacesDescribe": "*"}
TABLE_OF_KEY_STATEMENT = {
    "LedgerTableKey": "ledger",
    "AuditTableKey": "audit",
    "VaultTableKey": "vault",
    "LedgerStreamKey": "ledger",  # the stream's records, under the ledger's name
    "IdempotencyTableKey": "idempotency",
}
# Each state machine role's own statements, by Sid (CDK's unnamed ones: its encryption and log delivery).
# Only the payment state machine deletes a vault item (DiscardCard, when Tokenize fails for good); only
# reconciliation's runs child executions (its Distributed Map: test_reconciliation_stack).
STATE_MACHINE_STATEMENTS = {
    topology.PAYMENT_WORKFLOW.name: {"InvokeSteps", "VaultDiscard", "VaultTableKey"},
    topology.OPERATION_WORKFLOW.name: {"InvokeSteps"},
    topology.STATUS_SYNC_WORKFLOW.name: {"InvokeSteps"},
    topology.RECONCILIATION_WORKFLOW.name: {"InvokeSteps", "StartChildExecutions", "ChildExecutions"},
}
TABLE_KEY_ACTIONS = {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"}


def as_list(value):
    return value if isinstance(value, list) else [value]


def get_arn(logical):
    return {"Fn::GetAtt": [logical, "Arn"]}


def ref(logical):
    return {"Ref": logical}


def identity_policies(template):
    """(name, logical IDs of the roles it is attached to, statements) for every identity policy in the template:
    AWS::IAM::Policy, AWS::IAM::ManagedPolicy and the inline Policies of AWS::IAM::Role."""
    found = []
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for name, policy in resources(template, kind).items():
            properties = policy["Properties"]
            roles = {role["Ref"] for role in properties.get("Roles", [])}
            found.append((name, roles, properties["PolicyDocument"]["Statement"]))
    for role_id, role in resources(template, "AWS::IAM::Role").items():
        for inline in role["Properties"].get("Policies", []):
            found.append((f"{role_id}/{inline['PolicyName']}", {role_id}, inline["PolicyDocument"]["Statement"]))
    return found


def statements_of_role(template, role_id):
    return [s for _, roles, statements in identity_policies(template) if role_id in roles for s in statements]


def services_of(statement):
    return {action.split(":", 1)[0] for action in as_list(statement["Action"])}


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_only_roles_are_the_step_roles_and_the_state_machine_role_with_no_managed_policies(env, dev, prod):
    stack, template, _ = {"dev": dev, "prod": prod}[env]
    roles = resources(template, "AWS::IAM::Role")
    expected = {logical_id(stack, role) for role in stack.steps.roles.values()}
    assert len(stack.steps.roles) == len(topology.ALL_FUNCTIONS) == 20  # one role per function
    expected |= {logical_id(stack, w.state_machine.role) for w in stack.workflows.values()}  # one per state machine
    # One per schedule: EventBridge Scheduler starts status sync and reconciliation with it (test_status_sync_stack).
    expected |= {logical_id(stack, role) for role in stack.schedules.roles.values()}
    if stack.network is not None:  # the VPC flow logs' delivery role (test_network)
        expected |= {logical_id(stack, role) for role in stack.network.roles}
    # The AuditReader, and in prod the archive's pipe and Firehose roles (test_evidence).
    expected.add(logical_id(stack, stack.audit_reader.role))
    if stack.archive is not None:
        expected |= {
            logical_id(stack, role) for role in [*stack.archive.readers.values(), *stack.archive.writers.values()]
        }
    assert set(roles) == expected  # a new role needs its own expectations here
    for role_id, role in roles.items():
        # An attached AWS managed policy would grant what this template cannot show.
        assert "ManagedPolicyArns" not in role["Properties"], role_id


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_only_xray_and_the_state_machines_log_delivery_are_granted_on_any_resource(env, dev, prod):
    stack, template, _ = {"dev": dev, "prod": prod}[env]
    # In the VPC, Lambda also describes network interfaces and subnets with each function's role.
    step_actions = XRAY_ACTIONS | (NETWORK_DESCRIBE_ACTIONS if stack.network is not None else set())
    on_any_resource = {logical_id(stack, role): step_actions for role in stack.steps.roles.values()}
    # LedgerEvents' event source mapping lists the DynamoDB streams (no resource-level permission).
    on_any_resource[logical_id(stack, stack.steps.roles[topology.EVENTS_FUNCTION.step])] = step_actions | {
        "dynamodb:ListStreams"
    }
    for workflow in stack.workflows.values():
        on_any_resource[logical_id(stack, workflow.state_machine.role)] = STATE_MACHINE_ACTIONS_ON_ANY_RESOURCE
    for role in stack.network.roles if stack.network is not None else []:
        on_any_resource[logical_id(stack, role)] = set()
    for role in stack.schedules.roles.values():  # a schedule's role: nothing on "*"
        on_any_resource[logical_id(stack, role)] = set()
    # The AuditReader: what `aws cloudtrail validate-logs` calls; a pipe: DynamoDB's ListStreams; Firehose: nothing.
    on_any_resource[logical_id(stack, stack.audit_reader.role)] = {
        "cloudtrail:DescribeTrails",
        "cloudtrail:ListPublicKeys",
    }
    if stack.archive is not None:
        for reader in stack.archive.readers.values():
            on_any_resource[logical_id(stack, reader)] = {"dynamodb:ListStreams"}
        for writer in stack.archive.writers.values():
            on_any_resource[logical_id(stack, writer)] = set()
    policies = identity_policies(template)
    assert len(policies) == len(on_any_resource) + 1  # one default policy per role, and the upstream policy
    for name, roles, statements in policies:
        # A policy attached to no known role (the upstream managed policy) may grant nothing on "*".
        allowed = set.intersection(*(set(on_any_resource.get(r, ())) for r in roles)) if roles else set()
        for statement in statements:
            assert statement["Effect"] == "Allow", (name, statement)
            assert "NotAction" not in statement and "NotResource" not in statement, (name, statement)
            if "*" in as_list(statement["Resource"]):
                assert set(as_list(statement["Action"])) <= allowed, (name, statement)


def rendered(value):
    """A string or an Fn::Join of strings and intrinsics, as text ({"Ref": "X"} -> <{"Ref": "X"}>)."""
    if not isinstance(value, dict) or "Fn::Join" not in value:
        return value
    return "".join(p if isinstance(p, str) else "<" + json.dumps(p) + ">" for p in value["Fn::Join"][1])


def named_resources(stack):
    machine_id = logical_id(stack, stack.workflow.state_machine)
    operation_id = logical_id(stack, stack.operation_workflow.state_machine)
    bucket = logical_id(stack, stack.reports.bucket)

    def objects(pattern):
        return {"Fn::Join": ["", [get_arn(bucket), f"/{pattern}"]]}

    return {
        "card_data_key": get_arn(logical_id(stack, stack.keys.card_data_key)),
        "audit_key": get_arn(logical_id(stack, stack.keys.audit_key)),
        "storage_key": get_arn(logical_id(stack, stack.keys.storage_key)),
        "ledger": get_arn(logical_id(stack, stack.tables.ledger)),
        "audit": get_arn(logical_id(stack, stack.tables.audit)),
        "vault": get_arn(logical_id(stack, stack.tables.vault)),
        "ledger_stream": {"Fn::GetAtt": [logical_id(stack, stack.tables.ledger), "StreamArn"]},
        "idempotency": get_arn(logical_id(stack, stack.tables.idempotency)),
        "bus": get_arn(logical_id(stack, stack.events.bus)),
        "failures": get_arn(logical_id(stack, stack.events.failures)),
        "any": "*",
        "secret": ref(logical_id(stack, stack.converge_secret)),
        "state_machine": ref(machine_id),
        # arn:<partition>:states:<region>:<account>:execution:<state machine name>:*
        "executions": ":execution:<" + json.dumps({"Fn::GetAtt": [machine_id, "Name"]}) + ">:*",
        "payment_and_operation_executions": [
            ":execution:<" + json.dumps({"Fn::GetAtt": [machine, "Name"]}) + ">:*"
            for machine in (machine_id, operation_id)
        ],
        "ledger_index": {"Fn::Join": ["", [get_arn(logical_id(stack, stack.tables.ledger)), "/index/EntriesByStatus"]]},
        "report_bucket": get_arn(bucket),
        # By the ARNs status sync's fixed name makes (the state machine refers to FindUnresolved).
        "status_sync_machine": stack.resolve(
            names.state_machine_arn(stack, stack.config, topology.STATUS_SYNC_WORKFLOW)
        ),
        "status_sync_executions": stack.resolve(
            names.executions_arn(stack, stack.config, topology.STATUS_SYNC_WORKFLOW)
        ),
        "window_listings": objects("reconciliation/*/runs/*/windows/*"),
        "reports": objects("reconciliation/*/report.json"),
    }


@pytest.mark.parametrize("step", [spec.step for spec in topology.ALL_FUNCTIONS])
def test_each_function_role_names_exactly_its_keys_tables_secret_state_machine_and_log_group(prod, step):
    stack, template, _ = prod
    function_id = logical_id(stack, stack.steps.functions[step])
    function = resources(template, "AWS::Lambda::Function")[function_id]["Properties"]
    named = named_resources(stack)
    expected = {sid: named[name] for sid, name in STATEMENT_RESOURCES[step].items()}
    expected["OwnLogs"] = get_arn(function["LoggingConfig"]["LogGroup"]["Ref"])  # its own log group
    expected.update(VPC_ATTACHMENT)  # prod runs every function in the VPC (test_network)
    statements = statements_of_role(template, logical_id(stack, stack.steps.roles[step]))
    # Every statement but CDK's X-Ray one has a Sid, and the Sids are exactly the expected ones.
    unnamed = [s for s in statements if "Sid" not in s]
    assert [(set(as_list(s["Action"])), s["Resource"]) for s in unnamed] == [(XRAY_ACTIONS, "*")], step
    by_sid = {s["Sid"]: s for s in statements if "Sid" in s}
    assert len(by_sid) == len(statements) - 1, step  # no Sid twice
    assert set(by_sid) == set(expected), step
    for sid, statement in by_sid.items():
        assert len(services_of(statement)) == 1  # one service per statement, so one resource fits all its actions
        if sid == "ExecutionStatusRead":  # the payment state machine's executions, and the operation one's
            found = [rendered(r) for r in as_list(statement["Resource"])]
            assert len(found) == 2 and all(f.endswith(e) for f, e in zip(found, expected[sid], strict=True)), statement
            continue
        [resource] = as_list(statement["Resource"])
        if sid == "ReadPayment":
            assert rendered(resource).endswith(expected[sid]), (step, statement)
        else:
            assert resource == expected[sid], (step, statement)
        # The table key is used through DynamoDB for that statement's table only.
        table_context = statement.get("Condition", {}).get("StringEquals", {})
        if "kms:EncryptionContext:aws:dynamodb:tableName" in table_context or sid in TABLE_OF_KEY_STATEMENT:
            table = getattr(stack.tables, TABLE_OF_KEY_STATEMENT[sid])
            assert table_context["kms:EncryptionContext:aws:dynamodb:tableName"] == ref(logical_id(stack, table))
        secret_context = statement.get("Condition", {}).get("StringLike", {})
        if "kms:EncryptionContext:SecretARN" in secret_context:
            assert secret_context["kms:EncryptionContext:SecretARN"] == named["secret"], (step, statement)


def test_the_intake_role_names_its_two_keys_the_vault_the_state_machine_and_its_log_group_only(prod):
    # The request fingerprint is a plain SHA-256 now (payments.fingerprints): no other key, and no role
    # (the intake's or any other) makes or verifies a MAC. The card-data key seals the card; the storage key
    # is the vault's (through DynamoDB) and the state machine's (its encryption context only). Never the audit key.
    stack, template, _ = prod
    named = named_resources(stack)
    statements = statements_of_role(template, logical_id(stack, stack.steps.roles[topology.INTAKE_FUNCTION.step]))
    function = resources(template, "AWS::Lambda::Function")[logical_id(stack, stack.steps.intake)]["Properties"]
    log_group = get_arn(function["LoggingConfig"]["LogGroup"]["Ref"])
    # "*": X-Ray, and describing network interfaces (VPC_ATTACHMENT)
    expected = [
        named["card_data_key"],
        named["storage_key"],
        named["vault"],
        named["state_machine"],
        "executions",
        log_group,
        "*",
        NETWORK_INTERFACES,
    ]

    def label(resource):
        text = rendered(resource)
        return "executions" if isinstance(text, str) and text.endswith(named["executions"]) else resource

    named_by_intake = {json.dumps(label(r), sort_keys=True) for s in statements for r in as_list(s["Resource"])}
    assert named_by_intake == {json.dumps(r, sort_keys=True) for r in expected}
    for _, _, policy_statements in identity_policies(template):
        for statement in policy_statements:
            assert not {"kms:GenerateMac", "kms:VerifyMac"} & set(as_list(statement["Action"])), statement


@pytest.mark.parametrize(
    ("workflow", "steps"),
    [
        (topology.PAYMENT_WORKFLOW, 8),  # Tokenize to Audit
        (topology.OPERATION_WORKFLOW, 7),  # AdmitOperation to Audit
        (topology.STATUS_SYNC_WORKFLOW, 3),  # FindUnresolved, ResolveUnresolved, Audit
        (topology.RECONCILIATION_WORKFLOW, 3),  # PlanReconciliation, ListProcessorWindow, MatchLedger
    ],
    ids=lambda value: value.name if isinstance(value, topology.WorkflowSpec) else str(value),
)
def test_each_state_machine_role_invokes_exactly_its_steps_and_only_the_payments_deletes_vault_items(
    prod, workflow, steps
):
    stack, template, _ = prod
    functions = [invoked_arn(stack, spec.step) for spec in workflow.functions]
    assert len(functions) == len(set(map(json.dumps, functions))) == steps
    assert get_arn(logical_id(stack, stack.steps.intake)) not in functions  # upstream services invoke the intake
    named = named_resources(stack)
    machine = stack.workflows[workflow.name].state_machine
    statements = statements_of_role(template, logical_id(stack, machine.role))
    by_sid = {s["Sid"]: s for s in statements if "Sid" in s}
    assert len(by_sid) == len([s for s in statements if "Sid" in s])  # no Sid twice
    assert set(by_sid) == STATE_MACHINE_STATEMENTS[workflow.name]
    # The ARNs its definition names for its own steps (in prod each step's alias: SnapStart), each once: no "*",
    # no ":*" (any version or alias), and no function of the other workflow.
    invoke = by_sid["InvokeSteps"]
    assert as_list(invoke["Action"]) == ["lambda:InvokeFunction"] and "Condition" not in invoke
    assert sorted(map(str, as_list(invoke["Resource"]))) == sorted(map(str, functions))
    # What CDK adds: X-Ray and log delivery on "*" (test_only_xray_and_the_state_machines_log_delivery_...),
    # and the storage key for the state machine's own encryption and for its log delivery, under those
    # encryption contexts only: its own state machine's, never the other's.
    contexts = {
        "kms:EncryptionContext:aws:states:stateMachineArn": f":stateMachine:{workflow.name}-prod",
        "kms:EncryptionContext:SourceArn": ":logs:eu-west-1:111111111111:*",
    }
    for statement in (s for s in statements if "Sid" not in s):
        if as_list(statement["Resource"]) == ["*"]:
            assert set(as_list(statement["Action"])) <= STATE_MACHINE_ACTIONS_ON_ANY_RESOURCE, statement
            continue
        assert set(as_list(statement["Action"])) <= {"kms:Decrypt", "kms:GenerateDataKey"}, statement
        assert as_list(statement["Resource"]) == [named["storage_key"]], statement
        [(context, value)] = statement["Condition"]["StringEquals"].items()
        assert rendered(value).endswith(contexts[context]), statement
    if workflow != topology.PAYMENT_WORKFLOW:
        # No table at all: their steps write the ledger and the audit trail, not the state machine.
        assert [s for s in statements if "dynamodb" in services_of(s)] == []
        assert [s for s in statements if named["storage_key"] in as_list(s["Resource"]) and "Sid" in s] == []
        return
    # DiscardCard (Tokenize failed for good): DeleteItem on the CardVault, never on the ledger or the audit
    # trail, and the vault's key through DynamoDB for the vault's table only.
    discard = by_sid["VaultDiscard"]
    assert as_list(discard["Action"]) == ["dynamodb:DeleteItem"] and "Condition" not in discard
    assert as_list(discard["Resource"]) == [named["vault"]]
    vault_key = by_sid["VaultTableKey"]
    assert set(as_list(vault_key["Action"])) == TABLE_KEY_ACTIONS
    assert as_list(vault_key["Resource"]) == [named["storage_key"]]
    assert vault_key["Condition"] == {
        "StringEquals": {
            "kms:ViaService": {"Fn::Join": ["", ["dynamodb.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]},
            "kms:EncryptionContext:aws:dynamodb:tableName": ref(logical_id(stack, stack.tables.vault)),
        }
    }
    # Its only DynamoDB grant is that one DeleteItem.
    assert [s for s in statements if "dynamodb" in services_of(s)] == [discard]


def test_the_upstream_policy_names_the_intake_the_two_state_machines_their_executions_and_the_storage_key(prod):
    stack, template, _ = prod
    [policy] = resources(template, "AWS::IAM::ManagedPolicy").values()
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert set(statements) == {
        "StartCardPayment",
        *("StartPayment", "ReadPayment", "WorkflowEncryption"),
        *("StartOperation", "ReadOperation", "OperationWorkflowEncryption"),
    }
    # The unqualified function ARN: no version or alias, no ":*".
    assert as_list(statements["StartCardPayment"]["Resource"]) == [get_arn(logical_id(stack, stack.steps.intake))]
    for machine, (start, read, encryption) in (
        (stack.workflow.state_machine, ("StartPayment", "ReadPayment", "WorkflowEncryption")),
        (stack.operation_workflow.state_machine, ("StartOperation", "ReadOperation", "OperationWorkflowEncryption")),
    ):
        machine_id = logical_id(stack, machine)
        assert as_list(statements[start]["Action"]) == ["states:StartExecution"]
        assert as_list(statements[start]["Resource"]) == [ref(machine_id)]
        assert as_list(statements[read]["Action"]) == ["states:DescribeExecution"]
        [executions] = as_list(statements[read]["Resource"])
        assert executions["Fn::Join"][1][-2:] == [{"Fn::GetAtt": [machine_id, "Name"]}, ":*"]
        assert as_list(statements[encryption]["Resource"]) == [get_arn(logical_id(stack, stack.keys.storage_key))]
        context = statements[encryption]["Condition"]["StringEquals"]
        assert context == {"kms:EncryptionContext:aws:states:stateMachineArn": ref(machine_id)}


@pytest.mark.parametrize("step", [spec.step for spec in topology.FUNCTIONS])
def test_only_the_state_machines_that_name_a_step_may_invoke_it(prod, step):
    # CallProcessor's and CallOperationProcessor's own checks stop a replay by an account administrator;
    # within the stack, no identity but the role of a state machine whose definition names the step is
    # granted invoke on it (Normalize and Audit: both; every other step: its own state machine's), and no
    # resource policy (lambda:AddPermission) lets anyone else in.
    stack, template, _ = prod
    # The function, by its own ARN (with or without a qualifier) or by its alias's (prod: SnapStart).
    names = {json.dumps(get_arn(logical_id(stack, stack.steps.functions[step]))), json.dumps(invoked_arn(stack, step))}

    def invokes_the_step(statement):
        actions = as_list(statement["Action"])
        may_invoke = any(a in ("lambda:InvokeFunction", "lambda:*", "*") for a in actions)
        targets = {json.dumps(r) for r in as_list(statement.get("Resource", []))}
        named = any(name in target for name in names for target in targets)
        return statement["Effect"] == "Allow" and may_invoke and (named or '"*"' in targets)

    grantees = set()
    for name, roles, statements in identity_policies(template):
        if any(invokes_the_step(statement) for statement in statements):
            grantees |= roles or {name}
    callers = [w for w in topology.WORKFLOWS if step in w.steps]
    assert callers
    assert grantees == {logical_id(stack, stack.workflows[w.name].state_machine.role) for w in callers}
    assert resources(template, "AWS::Lambda::Permission") == {}


def test_nobody_may_redrive(prod):
    _, template, _ = prod
    # Redrive is an operator's decision: no identity policy of the stack grants it
    assert not [
        statement
        for _, _, statements in identity_policies(template)
        for statement in statements
        if any(a.startswith("states:Redrive") or a in ("states:*", "*") for a in as_list(statement["Action"]))
    ]
