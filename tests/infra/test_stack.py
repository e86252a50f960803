"""The synthesized template is the workflow that runs locally, deployed as a security reviewer wants it."""

import fnmatch
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from infra import functions as infra_functions
from infra.access import UPSTREAM_WORKFLOWS
from infra.functions import POWERTOOLS_VERSION, PYTHON_RUNTIME
from infra.log_groups import CARD_DATA_IDENTIFIERS
from infra.network import NETWORK_DESCRIBE_ACTIONS, NETWORK_INTERFACE_ACTIONS
from payments import crypto, topology, vault
from tests.infra.conftest import synthesize

REPO = Path(__file__).resolve().parents[2]
OBSERVABILITY_ACTIONS = {
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
}
# What Lambda needs of a role to attach a function to its VPC subnets (staging, prod): test_network checks them.
VPC_ATTACHMENT_ACTIONS = NETWORK_INTERFACE_ACTIONS | NETWORK_DESCRIBE_ACTIONS


def resources(template, kind):
    return template.find_resources(kind)


def logical_id(stack, construct):
    return stack.get_logical_id(construct.node.default_child)


def role_statements(stack, template, step):
    """Every statement of the policies attached to a step's role, with logs, X-Ray and VPC attachment set aside."""
    role_id = logical_id(stack, stack.steps.roles[step])
    statements = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return [s for s in statements if not actions_of([s]) <= OBSERVABILITY_ACTIONS | VPC_ATTACHMENT_ACTIONS]


def all_statements(template):
    """Every statement of every identity policy: the roles' policies and the upstream managed policy."""
    found = []
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for policy in resources(template, kind).values():
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def as_list(value):
    return value if isinstance(value, list) else [value]


def purpose_of(statement):
    return statement.get("Condition", {}).get("StringEquals", {}).get("kms:EncryptionContext:purpose")


def vault_arn(stack):
    return {"Fn::GetAtt": [logical_id(stack, stack.tables.vault), "Arn"]}


def key_arn(stack, key):
    """The ARN of one of the three keys: "card_data", "audit" or "storage"."""
    return {"Fn::GetAtt": [logical_id(stack, stack.keys.keys[key]), "Arn"]}


def invoked_arn(stack, step):
    """What the state machines name for a step: its alias where the step runs with SnapStart (staging, prod:
    a published version, infra.functions), else the function's own unqualified ARN ($LATEST)."""
    alias = stack.steps.aliases.get(step)
    if alias is not None:
        return {"Ref": logical_id(stack, alias)}
    return {"Fn::GetAtt": [logical_id(stack, stack.steps.functions[step]), "Arn"]}


def actions_of(statements):
    found = set()
    for statement in statements:
        action = statement["Action"]
        found |= {action} if isinstance(action, str) else set(action)
    return found


def state_machine_of(stack, template, workflow):
    """The template's state machine of one workflow (topology.WORKFLOWS)."""
    machine_id = logical_id(stack, stack.workflows[workflow.name].state_machine)
    return resources(template, "AWS::StepFunctions::StateMachine")[machine_id]["Properties"]


def test_the_stack_deploys_exactly_the_workflows_of_the_topology_each_with_its_own_role(prod):
    # Payments, their operations, status sync and the daily reconciliation.
    stack, template, _ = prod
    machines = resources(template, "AWS::StepFunctions::StateMachine")
    assert len(machines) == len(topology.WORKFLOWS) == 4
    assert sorted(m["Properties"]["StateMachineName"] for m in machines.values()) == sorted(
        f"{workflow.name}-prod" for workflow in topology.WORKFLOWS
    )
    assert len({json.dumps(m["Properties"]["RoleArn"]) for m in machines.values()}) == len(machines)
    assert stack.workflow is stack.workflows[topology.PAYMENT_WORKFLOW.name]
    assert stack.operation_workflow is stack.workflows[topology.OPERATION_WORKFLOW.name]
    assert stack.status_sync is stack.workflows[topology.STATUS_SYNC_WORKFLOW.name]
    assert stack.reconciliation is stack.workflows[topology.RECONCILIATION_WORKFLOW.name]


@pytest.mark.parametrize("workflow", topology.WORKFLOWS, ids=lambda w: w.name)
def test_the_definition_is_the_asl_file_with_only_the_placeholders_substituted(prod, workflow):
    stack, template, outdir = prod
    properties = state_machine_of(stack, template, workflow)
    # The definition ships as the file itself (an asset), byte for byte...
    asset = outdir / f"asset.{properties['DefinitionS3Location']['Key']}"
    asl = (REPO / workflow.asl_path).read_text()
    assert asset.read_text() == asl
    # ...and CloudFormation substitutes exactly its placeholders: each step's with its own function (its alias:
    # prod runs the steps with SnapStart), and (the payment workflow's DiscardCard) the vault's with the
    # CardVault's table name.
    placeholders = set(re.findall(r"\$\{([A-Za-z0-9]+)\}", asl))
    vault_placeholder = {topology.CARD_VAULT_TABLE_PLACEHOLDER} if workflow == topology.PAYMENT_WORKFLOW else set()
    assert placeholders == {spec.placeholder for spec in workflow.functions} | vault_placeholder
    substitutions = properties["DefinitionSubstitutions"]
    assert set(substitutions) == placeholders
    for spec in workflow.functions:
        assert substitutions[spec.placeholder] == invoked_arn(stack, spec.step)
    if vault_placeholder:
        assert substitutions[topology.CARD_VAULT_TABLE_PLACEHOLDER] == {"Ref": logical_id(stack, stack.tables.vault)}
    # The intake starts payments; no state machine invokes it, and none names a function of another workflow.
    assert logical_id(stack, stack.steps.intake) not in json.dumps(properties)
    others = {spec.step for spec in topology.FUNCTIONS} - set(workflow.steps)
    for step in others:
        assert logical_id(stack, stack.steps.functions[step]) not in json.dumps(properties), step
        assert logical_id(stack, stack.steps.aliases[step]) not in json.dumps(properties), step


def test_the_workflows_share_exactly_normalize_and_audit():
    payment, operation = set(topology.PAYMENT_WORKFLOW.steps), set(topology.OPERATION_WORKFLOW.steps)
    sync, reconciliation = set(topology.STATUS_SYNC_WORKFLOW.steps), set(topology.RECONCILIATION_WORKFLOW.steps)
    assert payment & operation == {"Normalize", "Audit"}
    assert sync & (payment | operation) == {"Audit"}  # status sync audits its processor calls as they do
    assert reconciliation & (payment | operation | sync) == set()
    # Every step function has a caller.
    assert payment | operation | sync | reconciliation == {spec.step for spec in topology.FUNCTIONS}
    assert (len(payment), len(operation), len(sync), len(reconciliation)) == (8, 7, 3, 3)


@pytest.mark.parametrize("workflow", topology.WORKFLOWS, ids=lambda w: w.name)
def test_execution_logging_is_all_levels_without_execution_data_and_traced(prod, workflow):
    stack, template, _ = prod
    properties = state_machine_of(stack, template, workflow)
    assert properties["StateMachineType"] == "STANDARD"
    assert properties["LoggingConfiguration"]["Level"] == "ALL"
    assert properties["LoggingConfiguration"]["IncludeExecutionData"] is False
    assert properties["TracingConfiguration"] == {"Enabled": True}
    assert properties["EncryptionConfiguration"] == {
        "Type": "CUSTOMER_MANAGED_KMS_KEY",
        "KmsKeyId": key_arn(stack, "storage"),
        "KmsDataKeyReusePeriodSeconds": properties["EncryptionConfiguration"]["KmsDataKeyReusePeriodSeconds"],
    }
    # Its own log group, named after the state machine, encrypted with the storage key.
    [destination] = properties["LoggingConfiguration"]["Destinations"]
    log_group_id = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    log_group = resources(template, "AWS::Logs::LogGroup")[log_group_id]["Properties"]
    assert log_group["LogGroupName"] == f"/aws/vendedlogs/states/{workflow.name}-prod"
    assert log_group["KmsKeyId"] == key_arn(stack, "storage")


TABLE_KEY = {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"}  # via DynamoDB only
EXPECTED_ACTIONS = {
    "Intake": {
        "kms:GenerateDataKey",  # seal the card (card-intake), and StartExecution on the encrypted state machine
        "dynamodb:PutItem",
        "states:StartExecution",
        "states:DescribeExecution",
        *TABLE_KEY,  # the vault's key via DynamoDB; kms:Decrypt also for DescribeExecution's input
    },
    "Tokenize": {"kms:GenerateDataKey", "dynamodb:GetItem", *TABLE_KEY},
    "LedgerInitiated": {"dynamodb:PutItem", *TABLE_KEY},  # entry 1 links to GENESIS: no read
    "LedgerPending": {"dynamodb:PutItem", "dynamodb:GetItem", *TABLE_KEY},  # GetItem: entry n-1 (payments.chain)
    "LedgerSuccess": {"dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:DeleteItem", *TABLE_KEY},
    "LedgerFailed": {"dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:DeleteItem", *TABLE_KEY},
    "CallProcessor": {
        "secretsmanager:GetSecretValue",
        "dynamodb:PutItem",
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        # The ledger: charge only a payment pending for this request; the audit trail: the chain's last
        # record and the sale-attempt claims (payments.chain, payments.sale_attempts).
        "dynamodb:Query",
        *TABLE_KEY,
    },
    "Normalize": set(),
    "Audit": {"dynamodb:PutItem", "dynamodb:Query", *TABLE_KEY},  # Query: the chain's last record
    # An operation's ledger steps: the payment's history (Query), entry n-1's link (GetItem), the append.
    "AdmitOperation": {"dynamodb:Query", "dynamodb:GetItem", "dynamodb:PutItem", *TABLE_KEY},
    "OperationPending": {"dynamodb:Query", "dynamodb:GetItem", "dynamodb:PutItem", *TABLE_KEY},
    "OperationSuccess": {"dynamodb:Query", "dynamodb:GetItem", "dynamodb:PutItem", *TABLE_KEY},
    "OperationFailed": {"dynamodb:Query", "dynamodb:GetItem", "dynamodb:PutItem", *TABLE_KEY},  # + the attempts
    # Seals audit payloads (kms:GenerateDataKey, purpose audit), the Converge secret, the audit trail, the ledger.
    "CallOperationProcessor": {"secretsmanager:GetSecretValue", "dynamodb:PutItem", "dynamodb:Query", *TABLE_KEY},
    # Status sync: the ledger's EntriesByStatus index only; then what CallOperationProcessor does, the ledger's
    # link read and append, and DescribeExecution of payment and operation executions (test_status_sync_stack).
    # FindUnresolved also lets one run at a time work: it lists status sync's running executions.
    "FindUnresolved": {"dynamodb:Query", *TABLE_KEY, "states:ListExecutions"},
    "ResolveUnresolved": {
        "secretsmanager:GetSecretValue",
        "dynamodb:PutItem",
        "dynamodb:Query",
        "dynamodb:GetItem",
        "states:DescribeExecution",
        *TABLE_KEY,
    },
    # Reconciliation (test_reconciliation_stack): plan (nothing), list (Converge, the report bucket's listings),
    # match (the ledger's index, history, link and append; the listings read, the reports written).
    "PlanReconciliation": set(),
    "ListProcessorWindow": {"secretsmanager:GetSecretValue", "s3:PutObject", "kms:GenerateDataKey", "kms:Decrypt"},
    "MatchLedger": {
        "dynamodb:Query",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        *TABLE_KEY,
        "s3:GetObject",
        "s3:PutObject",
        "s3:ListBucket",
    },
    # The ledger's stream (and its key, under the ledger's name), the payments bus, its idempotency records
    # (and their key through DynamoDB), its failure queue (and its key through SQS). test_events: which resource.
    "LedgerEvents": {
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
        "dynamodb:ListStreams",
        "events:PutEvents",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        *TABLE_KEY,
        "sqs:SendMessage",
    },
}
assert set(EXPECTED_ACTIONS) == {spec.step for spec in topology.ALL_FUNCTIONS}

# What each role may do with a key directly, by key and encryption-context purpose (payments.crypto): card
# data under the card-data key, audit payloads under the audit key, which no workflow role may decrypt.
DIRECT_KEY_USE = {
    "Intake": {("card_data", "kms:GenerateDataKey", crypto.PURPOSE_CARD_INTAKE)},
    "Tokenize": {
        ("card_data", "kms:Decrypt", crypto.PURPOSE_CARD_INTAKE),
        ("card_data", "kms:GenerateDataKey", crypto.PURPOSE_SECURE_TOKEN),
    },
    "CallProcessor": {
        ("card_data", "kms:Decrypt", crypto.PURPOSE_SECURE_TOKEN),
        ("card_data", "kms:Decrypt", crypto.PURPOSE_CARD_INTAKE),
        ("audit", "kms:GenerateDataKey", crypto.PURPOSE_AUDIT),
    },
    "CallOperationProcessor": {("audit", "kms:GenerateDataKey", crypto.PURPOSE_AUDIT)},
    "ResolveUnresolved": {("audit", "kms:GenerateDataKey", crypto.PURPOSE_AUDIT)},
}
# The functions that only the operation workflow invokes: no card, no card-data key, no vault.
OPERATION_STEPS = [step for step in topology.OPERATION_WORKFLOW.steps if step not in topology.PAYMENT_WORKFLOW.steps]
STATE_MACHINE_CONTEXT = "kms:EncryptionContext:aws:states:stateMachineArn"


@pytest.mark.parametrize("step", [spec.step for spec in topology.ALL_FUNCTIONS])
def test_each_role_grants_exactly_its_steps_actions(prod, step):
    stack, template, _ = prod
    assert actions_of(role_statements(stack, template, step)) == EXPECTED_ACTIONS[step]


def test_direct_kms_use_is_bound_to_its_key_and_purpose_and_storage_only_through_services(prod):
    stack, template, _ = prod
    machine = {"Ref": logical_id(stack, stack.workflow.state_machine)}
    # LedgerEvents reads the ledger's stream, encrypted with the table's key under its name (no documented
    # kms:ViaService for a stream: the archive's pipes are bound the same way).
    ledger_stream = {"kms:EncryptionContext:aws:dynamodb:tableName": {"Ref": logical_id(stack, stack.tables.ledger)}}
    keys = {json.dumps(key_arn(stack, name)): name for name in ("card_data", "audit", "storage")}
    for spec in topology.ALL_FUNCTIONS:
        purposes = set()
        for statement in role_statements(stack, template, spec.step):
            actions = actions_of([statement])
            if not any(a.startswith("kms:") for a in actions):
                continue
            [resource] = as_list(statement["Resource"])
            key = keys[json.dumps(resource)]
            equals = statement.get("Condition", {}).get("StringEquals", {})
            if purpose_of(statement) is not None:
                assert len(equals) == 1, statement
                purposes |= {(key, action, purpose_of(statement)) for action in actions}
                continue
            # Everything else is the storage key: the state machine's context, the ledger's stream, or through a
            # service.
            assert key == "storage", statement
            if STATE_MACHINE_CONTEXT in equals:  # StartExecution/DescribeExecution on the encrypted state machines
                # The intake alone: status sync reads executions' metadata only, which needs no key.
                assert (spec.step, equals) == (topology.INTAKE_FUNCTION.step, {STATE_MACHINE_CONTEXT: machine})
            elif "kms:ViaService" not in equals:  # LedgerEvents' stream, and nothing else, Decrypt only
                assert (spec.step, actions, equals) == (topology.EVENTS_FUNCTION.step, {"kms:Decrypt"}, ledger_stream)
        # No workflow role can open an audit payload; only Tokenize and CallProcessor open a vaulted card.
        assert purposes == DIRECT_KEY_USE.get(spec.step, set()), spec.step


def test_only_tokenize_and_call_processor_can_decrypt_a_vaulted_card(prod):
    stack, template, _ = prod
    assert infra_functions.PURPOSE_CARD_INTAKE == crypto.PURPOSE_CARD_INTAKE  # what payments.vault seals under
    decrypting = {
        step
        for step in stack.steps.roles
        for statement in role_statements(stack, template, step)
        if "kms:Decrypt" in actions_of([statement]) and purpose_of(statement) == crypto.PURPOSE_CARD_INTAKE
    }
    assert decrypting == {"Tokenize", "CallProcessor"}
    # Nor may any other policy of the stack (the upstream policy, the state machine's role).
    everywhere = [s for s in all_statements(template) if purpose_of(s) == crypto.PURPOSE_CARD_INTAKE]
    assert len(everywhere) == 3  # Tokenize's and CallProcessor's Decrypt, the intake's GenerateDataKey


@pytest.mark.parametrize("step", OPERATION_STEPS)
def test_no_operation_function_can_decrypt_card_data_or_touch_the_card_vault(prod, step):
    # An operation names the payment's transaction at the processor: nothing of the card is needed.
    stack, template, _ = prod
    spec = topology.function_by_step(step)
    assert topology.PAYMENT_KMS_KEY_ARN not in spec.environment("aws")
    assert topology.CARD_VAULT_TABLE_NAME not in spec.environment("aws")
    function = resources(template, "AWS::Lambda::Function")[logical_id(stack, stack.steps.functions[step])]
    variables = json.dumps(function["Properties"]["Environment"]["Variables"])
    assert logical_id(stack, stack.keys.card_data_key) not in variables
    assert logical_id(stack, stack.tables.vault) not in variables
    named = json.dumps(role_statements(stack, template, step))
    assert logical_id(stack, stack.keys.card_data_key) not in named
    assert logical_id(stack, stack.tables.vault) not in named
    purposes = {purpose_of(s) for s in role_statements(stack, template, step)} - {None}
    assert purposes <= {crypto.PURPOSE_AUDIT}  # CallOperationProcessor seals audit payloads; nothing else


def test_the_operation_steps_touch_the_audit_trail_of_operations_only(prod):
    # An operation's audit trail is the partition <TransactionID>/<OperationID> (payments.operation_state); a
    # payment's TransactionID holds no "/" (payments.models): CallOperationProcessor and OperationFailed may
    # read or append records of operations' trails, never of a payment's.
    from payments.models import _TRANSACTION_ID
    from payments.operation_state import OperationFacts

    stack, template, _ = prod
    facts = OperationFacts(
        Operation="refund",
        OperationID="refund-1",
        TransactionID="order-8812-1",
        Amount="10.00",
        Currency="USD",
        ProcessorID="elavon",
        ProcessorTransactionID="txn-1",
    )
    assert fnmatch.fnmatchcase(facts.audit_partition, infra_functions.OPERATION_TRAILS)
    assert not fnmatch.fnmatchcase("order-8812-1", infra_functions.OPERATION_TRAILS)
    assert "/" not in _TRANSACTION_ID.pattern  # no payment's TransactionID can match
    audit_arn = {"Fn::GetAtt": [logical_id(stack, stack.tables.audit), "Arn"]}
    for step in ("CallOperationProcessor", "OperationFailed"):
        on_audit = [s for s in role_statements(stack, template, step) if audit_arn in as_list(s["Resource"])]
        assert on_audit, step
        for statement in on_audit:
            assert statement["Condition"]["ForAllValues:StringLike"] == {
                "dynamodb:LeadingKeys": [infra_functions.OPERATION_TRAILS]
            }, (step, statement)


def test_no_role_can_change_or_delete_a_ledger_or_audit_item(prod):
    stack, template, _ = prod
    text = json.dumps(all_statements(template))
    for forbidden in ("dynamodb:BatchWriteItem", "dynamodb:*", "dynamodb:Update*", "dynamodb:Delete*"):
        assert forbidden not in text
    idempotency = {"Fn::GetAtt": [logical_id(stack, stack.tables.idempotency), "Arn"]}
    for statement in all_statements(template):
        if actions_of([statement]) & {"dynamodb:UpdateItem", "dynamodb:DeleteItem"}:
            # Only vault items change or go (the CVV, then the card), and LedgerEvents' idempotency records
            # (completed, or removed when a publication fails): never an entry of the ledger or audit trail.
            assert as_list(statement["Resource"]) in ([vault_arn(stack)], [idempotency]), statement


# Who does what with the CardVault (payments.vault): deposit, read, remove the CVV, remove the card.
VAULT_ACTIONS = {
    "Intake": {"dynamodb:PutItem"},
    "Tokenize": {"dynamodb:GetItem"},
    "CallProcessor": {"dynamodb:GetItem", "dynamodb:UpdateItem"},
    "LedgerSuccess": {"dynamodb:DeleteItem"},
    "LedgerFailed": {"dynamodb:DeleteItem"},
}


@pytest.mark.parametrize("step", [spec.step for spec in topology.ALL_FUNCTIONS])
def test_each_function_does_with_the_card_vault_exactly_what_its_code_does(prod, step):
    stack, template, _ = prod
    on_vault = [s for s in role_statements(stack, template, step) if vault_arn(stack) in as_list(s["Resource"])]
    assert actions_of(on_vault) == VAULT_ACTIONS.get(step, set())
    for statement in on_vault:
        assert as_list(statement["Resource"]) == [vault_arn(stack)], statement
    # Whoever touches the vault gets its env var; the table key only through DynamoDB, for the vault only.
    spec = topology.function_by_step(step)
    assert (topology.CARD_VAULT_TABLE_NAME in spec.environment("aws")) == (step in VAULT_ACTIONS)
    vault_name = {"Ref": logical_id(stack, stack.tables.vault)}
    vault_keys = [
        s
        for s in role_statements(stack, template, step)
        if s.get("Condition", {}).get("StringEquals", {}).get("kms:EncryptionContext:aws:dynamodb:tableName")
        == vault_name
    ]
    assert len(vault_keys) == (1 if step in VAULT_ACTIONS else 0)


class RecordingDynamoDB:
    """A DynamoDB client that records what payments.vault asks of it and finds nothing."""

    def __init__(self):
        self.calls = {}

    def get_item(self, **request):
        self.calls.setdefault("GetItem", []).append(request)
        return {}

    def update_item(self, **request):
        self.calls.setdefault("UpdateItem", []).append(request)
        return {}


def vault_requests():
    """The GetItem of Tokenize's read (the card), CallProcessor's (the CVV), and its UpdateItem (the CVV goes)."""
    client = RecordingDynamoDB()
    card_vault = vault.CardVault("CardVault", "arn:aws:kms:eu-west-1:111111111111:key/k", 900, client=client)
    with pytest.raises(vault.CardNotInVault):
        card_vault.card("T-1")
    assert card_vault.cvv("T-1") is None
    card_vault.remove_cvv("T-1")
    [card_read, cvv_read] = client.calls["GetItem"]
    [cvv_removal] = client.calls["UpdateItem"]
    return card_read, cvv_read, cvv_removal


def projected(request):
    return [name.strip() for name in request["ProjectionExpression"].split(",")]


def test_the_vault_is_read_by_exactly_what_each_step_projects_and_only_the_cvv_may_be_updated(prod):
    stack, template, _ = prod
    assert (infra_functions.VAULT_CARD, infra_functions.VAULT_CVV) == (vault.CARD, vault.CVV)
    assert (infra_functions.VAULT_FINGERPRINT, infra_functions.VAULT_EXPIRES_AT) == (
        vault.FINGERPRINT,
        vault.EXPIRES_AT,
    )
    assert topology.CARD_VAULT_TABLE.ttl_attribute == vault.EXPIRES_AT  # what an item expires by
    key = topology.CARD_VAULT_TABLE.partition_key.name

    def on_vault(step, action):
        [statement] = [
            s
            for s in role_statements(stack, template, step)
            if action in actions_of([s]) and vault_arn(stack) in as_list(s["Resource"])
        ]
        assert actions_of([statement]) == {action}
        return statement["Condition"]

    # What payments.vault asks: Tokenize the card, the request's fingerprint and the expiry; CallProcessor
    # the CVV and the expiry (its card is in the SecureToken); each consistent, by key, projected.
    card_read, cvv_read, cvv_removal = vault_requests()
    assert projected(card_read) == [vault.CARD, vault.FINGERPRINT, vault.EXPIRES_AT]
    assert projected(cvv_read) == [vault.CVV, vault.EXPIRES_AT]
    # IAM allows exactly those attributes and the key (DynamoDB requires the key attributes in
    # dynamodb:Attributes), and no read without a projection. Tokenize never reads the CVV.
    for step, request in (("Tokenize", card_read), ("CallProcessor", cvv_read)):
        assert list(request["Key"]) == [key]
        assert on_vault(step, "dynamodb:GetItem") == {
            "ForAllValues:StringEquals": {"dynamodb:Attributes": [key, *projected(request)]},
            "StringEqualsIfExists": {"dynamodb:Select": "SPECIFIC_ATTRIBUTES"},
        }, step
    assert vault.CVV not in on_vault("Tokenize", "dynamodb:GetItem")["ForAllValues:StringEquals"]["dynamodb:Attributes"]
    # UpdateItem may name the key and the CVV only (REMOVE EncryptedCvv, if the item exists), and must ask
    # for nothing back: ReturnValues NONE, which the code sends explicitly. StringEquals, as the DynamoDB
    # Developer Guide writes it for a statement that allows UpdateItem alone.
    assert (cvv_removal["UpdateExpression"], cvv_removal["ConditionExpression"]) == (
        f"REMOVE {vault.CVV}",
        f"attribute_exists({key})",
    )
    assert cvv_removal["ReturnValues"] == "NONE"
    assert on_vault("CallProcessor", "dynamodb:UpdateItem") == {
        "ForAllValues:StringEquals": {"dynamodb:Attributes": [key, vault.CVV]},
        "StringEquals": {"dynamodb:ReturnValues": cvv_removal["ReturnValues"]},
    }


class RecordingChainTables:
    """A DynamoDB client that records the reads the hash chains make before a write, and finds nothing."""

    def __init__(self):
        self.reads = []

    def get_item(self, **request):
        self.reads.append(("dynamodb:GetItem", request))
        return {}

    def put_item(self, **request):
        return {}

    def get_paginator(self, operation):
        reads = self.reads

        class Pages:
            def paginate(self, **request):
                reads.append((f"dynamodb:{operation.title()}", request))
                return [{"Items": []}]

        return Pages()


def chain_reads():
    """What the ledger steps read before entry 2, the audit writers before a record, CallProcessor of its claims."""
    from payments import audit, ledger, sale_attempts

    client = RecordingChainTables()
    entry = ledger.LedgerEntry(
        "T-1", 2, ledger.PENDING, "token", "25.00", "USD", "elavon", "arn:exec", "2026-01-01T00:00:00Z"
    )
    ledger.LedgerRepository("PaymentLedger", client=client).append_entry(entry)
    call = audit.ProcessorCallRecord("2026#ccsale#1", "ccsale", 1, "APPROVED", "0", 5, "sealed", None, "actor", "2026")
    repository = audit.AuditRepository("PaymentAuditTrail", client=client)
    repository.append_record(audit.AuditRecord("T-1", "arn:exec", call))
    attempts = sale_attempts.AuditedSaleAttempts(repository, client, "T-1", "arn:exec", 1, "actor", lambda: "sealed")
    attempts.on_record()
    return client.reads


def operation_reads():
    """What an operation's steps read: the ledger's history of a payment, and the operation's attempt claims."""
    from payments import audit, ledger, sale_attempts

    client = RecordingChainTables()
    ledger.LedgerRepository("PaymentLedger", client=client).entries("T-1")
    repository = audit.AuditRepository("PaymentAuditTrail", client=client)
    sale_attempts.AuditedSaleAttempts(
        repository, client, "T-1/op-1", "arn:exec", 1, "actor", lambda: "sealed", kind=sale_attempts.OPERATION_ATTEMPT
    ).on_record()
    return client.reads


def test_the_chain_reads_are_exactly_what_the_code_projects(prod):
    # Before a write, the ledger steps read entry n-1 and the audit writers the payment's records
    # (payments.chain), and CallProcessor its sale-attempt claims: each role may read those attributes only.
    stack, template, _ = prod
    [link, chain_query, claims_query] = chain_reads()

    def keyed(request):
        key_names = list(request.get("Key", {})) or [request["KeyConditionExpression"].split(" ", 1)[0]]
        return sorted({*key_names, *projected(request)})

    def pinned(step, sid):
        [statement] = [s for s in role_statements(stack, template, step) if s.get("Sid") == sid]
        assert statement["Condition"]["StringEqualsIfExists"] == {"dynamodb:Select": "SPECIFIC_ATTRIBUTES"}
        return as_list(statement["Action"]), sorted(
            statement["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"]
        )

    assert link[0] == "dynamodb:GetItem" and link[1]["ConsistentRead"] is True
    for step in ("LedgerPending", "LedgerSuccess", "LedgerFailed"):
        assert pinned(step, "LedgerLinkRead") == (["dynamodb:GetItem"], keyed(link[1])), step
    assert chain_query[0] == claims_query[0] == "dynamodb:Query"
    assert pinned("Audit", "AuditTrailRead") == (["dynamodb:Query"], keyed(chain_query[1]))
    assert pinned("CallProcessor", "AuditTrailRead") == (
        ["dynamodb:Query"],
        sorted({*keyed(chain_query[1]), *keyed(claims_query[1])}),
    )
    # The operations' steps: the same link read before each ledger entry, and CallOperationProcessor the same
    # chain and claims reads as CallProcessor (in the operation's own trail: the test above).
    for step in ("AdmitOperation", "OperationPending", "OperationSuccess", "OperationFailed"):
        assert pinned(step, "LedgerLinkRead") == (["dynamodb:GetItem"], keyed(link[1])), step
    assert pinned("CallOperationProcessor", "AuditTrailRead") == pinned("CallProcessor", "AuditTrailRead")
    # An operation's history is read whole (every entry: payments.operations judges it), its attempt claims
    # projected: OperationFailed may read the claims' AuditID and CreatedAt only.
    [history, operation_claims] = operation_reads()
    assert history[0] == "dynamodb:Query" and "ProjectionExpression" not in history[1]
    assert operation_claims[0] == "dynamodb:Query"
    assert operation_claims[1]["ExpressionAttributeValues"][":prefix"] == {"S": "operation-attempt#"}
    assert pinned("OperationFailed", "OperationAttemptsRead") == (["dynamodb:Query"], keyed(operation_claims[1]))
    ledger_arn = {"Fn::GetAtt": [logical_id(stack, stack.tables.ledger), "Arn"]}
    for step in ("AdmitOperation", "OperationPending", "OperationSuccess", "OperationFailed", "CallOperationProcessor"):
        [read] = [s for s in role_statements(stack, template, step) if s.get("Sid") == "LedgerRead"]
        assert (as_list(read["Action"]), as_list(read["Resource"])) == (["dynamodb:Query"], [ledger_arn]), step


def test_only_the_functions_that_call_converge_read_the_converge_secret(prod):
    stack, template, _ = prod
    readers = [
        s.step
        for s in topology.FUNCTIONS
        if "secretsmanager:GetSecretValue" in actions_of(role_statements(stack, template, s.step))
    ]
    assert readers == ["CallProcessor", "CallOperationProcessor", "ResolveUnresolved", "ListProcessorWindow"]
    assert readers == [s.step for s in topology.FUNCTIONS if s.uses_processor]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_tables_have_the_storage_key_prod_deletion_protection_and_pitr_except_the_vault(env, dev, prod):
    stack, template, _ = {"dev": dev, "prod": prod}[env]
    key_id = logical_id(stack, stack.keys.storage_key)
    tables = resources(template, "AWS::DynamoDB::GlobalTable")
    vault_id = logical_id(stack, stack.tables.vault)
    # The ledger, the audit trail, the vault, and LedgerEvents' idempotency records (test_events).
    assert set(tables) == {
        logical_id(stack, t)
        for t in (stack.tables.ledger, stack.tables.audit, stack.tables.vault, stack.tables.idempotency)
    }
    for table_id, table in tables.items():
        replica = table["Properties"]["Replicas"][0]
        pitr = replica.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled", False)
        assert pitr is (table_id != vault_id), table_id  # the vault: no backups of CVV ciphertext
        assert replica["SSESpecification"]["KMSMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
        assert replica.get("DeletionProtectionEnabled", False) is (env == "prod")
        assert table["Properties"]["BillingMode"] == "PAY_PER_REQUEST"
        assert table["DeletionPolicy"] == ("RetainExceptOnCreate" if env == "prod" else "Delete")


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_card_vault_expires_items_on_expires_at_and_has_no_backups_and_no_stream(env, dev, prod):
    stack, template, _ = {"dev": dev, "prod": prod}[env]
    table = resources(template, "AWS::DynamoDB::GlobalTable")[logical_id(stack, stack.tables.vault)]
    properties = table["Properties"]
    assert properties["TableName"] == f"{topology.CARD_VAULT_TABLE.name}-{env}"
    assert properties["KeySchema"] == [{"AttributeName": "TransactionID", "KeyType": "HASH"}]
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "ExpiresAt", "Enabled": True}
    assert topology.CARD_VAULT_TABLE.ttl_attribute == "ExpiresAt"
    assert "StreamSpecification" not in properties
    [replica] = properties["Replicas"]
    assert replica.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled", False) is False
    assert "GlobalSecondaryIndexes" not in properties  # no other copy of an item


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_every_key_statement_of_every_policy_names_one_of_the_three_keys(env, dev, prod):
    # The request fingerprint is a plain SHA-256 (payments.fingerprints): no HMAC key, no KMS call. Whatever a
    # policy grants of KMS, it grants on one of the three keys (test_keys: which, to whom, for what).
    stack, template, _ = {"dev": dev, "prod": prod}[env]
    assert set(resources(template, "AWS::KMS::Key")) == {logical_id(stack, k) for k in stack.keys.keys.values()}
    arns = [key_arn(stack, name) for name in ("card_data", "audit", "storage")]
    for statement in all_statements(template):
        if any(action.startswith("kms:") for action in actions_of([statement])):
            [resource] = as_list(statement["Resource"])
            assert resource in arns, statement


def test_functions_are_arm64_and_traced(prod):
    _, template, _ = prod
    functions = resources(template, "AWS::Lambda::Function")
    assert len(functions) == len(topology.ALL_FUNCTIONS)
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
        topology.PAYMENT_KMS_KEY_ARN: key_arn(stack, "card_data"),
        topology.AUDIT_KMS_KEY_ARN: key_arn(stack, "audit"),
        topology.DYNAMODB_TABLE_NAME: {"Ref": logical_id(stack, stack.tables.ledger)},
        topology.DYNAMODB_AUDIT_TABLE_NAME: {"Ref": logical_id(stack, stack.tables.audit)},
        topology.CONVERGE_SECRET_ARN: {"Ref": logical_id(stack, stack.converge_secret)},
        topology.CARD_VAULT_TABLE_NAME: {"Ref": logical_id(stack, stack.tables.vault)},
        topology.STATE_MACHINE_ARN: {"Ref": logical_id(stack, stack.workflow.state_machine)},
        topology.EVENT_BUS_NAME: {"Ref": logical_id(stack, stack.events.bus)},
        topology.IDEMPOTENCY_TABLE_NAME: {"Ref": logical_id(stack, stack.tables.idempotency)},
        topology.REPORT_BUCKET_NAME: {"Ref": logical_id(stack, stack.reports.bucket)},
    }
    assert logical_id(stack, stack.tables.ledger) != logical_id(stack, stack.tables.audit)
    for spec in topology.ALL_FUNCTIONS:
        properties = functions[logical_id(stack, stack.steps.functions[spec.step])]["Properties"]
        variables = properties["Environment"]["Variables"]
        assert sorted(variables) == sorted(spec.environment("aws")), spec.step
        for name, value in variables.items():
            if name in expected:
                assert value == expected[name], (spec.step, name)
    # The key and table variables are not dead letters: each reaches at least one function.
    given = {name for spec in topology.ALL_FUNCTIONS for name in spec.environment("aws")}
    assert set(expected) <= given


def task_states(states):
    """Every state of a definition, those inside a Map's ItemProcessor included."""
    for state in states.values():
        yield state
        yield from task_states(state.get("ItemProcessor", {}).get("States", {}))


@pytest.mark.parametrize("workflow", topology.WORKFLOWS, ids=lambda w: w.name)
def test_the_processor_steps_run_on_the_one_time_budget(prod, workflow):
    # CallProcessor, CallOperationProcessor, ResolveUnresolved (status sync) and ListProcessorWindow
    # (reconciliation): the client's timeouts, the Lambda's, and the state's in the ASL.
    stack, template, _ = prod
    budget = topology.PROCESSOR_TIME_BUDGET
    [spec] = [spec for spec in workflow.functions if spec.uses_processor]
    function = resources(template, "AWS::Lambda::Function")[logical_id(stack, stack.steps.functions[spec.step])][
        "Properties"
    ]

    assert function["Timeout"] == budget.lambda_timeout_seconds
    variables = function["Environment"]["Variables"]
    assert float(variables[topology.CONVERGE_READ_TIMEOUT_SECONDS]) == budget.read_seconds
    assert float(variables[topology.CONVERGE_CONNECT_TIMEOUT_SECONDS]) == budget.connect_seconds
    # The state outlives the Lambda and its init: Step Functions never gives up on an attempt still at work.
    states = json.loads((REPO / workflow.asl_path).read_text())["States"]
    [state] = [
        state
        for state in task_states(states)
        if state.get("Parameters", {}).get("FunctionName") == "${" + spec.placeholder + "}"
    ]
    assert state["TimeoutSeconds"] == budget.state_timeout_seconds
    assert function["Timeout"] + budget.lambda_init_seconds <= state["TimeoutSeconds"]


@pytest.mark.parametrize(
    ("workflow", "sids"),
    [
        (topology.PAYMENT_WORKFLOW, ("StartPayment", "ReadPayment", "WorkflowEncryption")),
        (topology.OPERATION_WORKFLOW, ("StartOperation", "ReadOperation", "OperationWorkflowEncryption")),
    ],
    ids=lambda value: value.name if isinstance(value, topology.WorkflowSpec) else "",
)
def test_upstream_policy_starts_and_describes_each_workflow(prod, workflow, sids):
    stack, template, _ = prod
    [policy] = resources(template, "AWS::IAM::ManagedPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert actions_of(statements) == {
        "lambda:InvokeFunction",
        "states:StartExecution",
        "states:DescribeExecution",
        "kms:GenerateDataKey",
        "kms:Decrypt",
    }
    start, read, encryption = (next(s for s in statements if s["Sid"] == sid) for sid in sids)
    machine_id = logical_id(stack, stack.workflows[workflow.name].state_machine)
    assert (as_list(start["Action"]), as_list(start["Resource"])) == (["states:StartExecution"], [{"Ref": machine_id}])
    assert as_list(read["Action"]) == ["states:DescribeExecution"]
    parts = read["Resource"]["Fn::Join"][1]
    rendered = "".join(p if isinstance(p, str) else "<" + json.dumps(p) + ">" for p in parts)
    assert rendered.endswith(f":execution:<{json.dumps({'Fn::GetAtt': [machine_id, 'Name']})}>:*")
    assert encryption["Condition"] == {"StringEquals": {STATE_MACHINE_CONTEXT: {"Ref": machine_id}}}


def test_upstream_policy_invokes_the_intake_and_can_decrypt_nothing_but_this_workflows_executions(prod):
    stack, template, _ = prod
    [policy] = resources(template, "AWS::IAM::ManagedPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    invoke = [s for s in statements if "lambda:InvokeFunction" in actions_of([s])]
    assert [as_list(s["Resource"]) for s in invoke] == [
        [{"Fn::GetAtt": [logical_id(stack, stack.steps.intake), "Arn"]}]
    ]
    assert [actions_of([s]) for s in invoke] == [{"lambda:InvokeFunction"}]
    # Its one use of a key: StartExecution and DescribeExecution on the encrypted state machines, each
    # under its own context. That context seals execution data only, and no card is in an execution: no
    # card, SecureToken or audit payload can be decrypted with it, and no other key is named. Payments and
    # operations only: status sync and reconciliation are started by their schedules.
    machines = [{"Ref": logical_id(stack, stack.workflows[w.name].state_machine)} for w in UPSTREAM_WORKFLOWS]
    contexts = []
    for statement in statements:
        if any(action.startswith("kms:") for action in actions_of([statement])):
            assert actions_of([statement]) == {"kms:GenerateDataKey", "kms:Decrypt"}, statement
            assert as_list(statement["Resource"]) == [key_arn(stack, "storage")]
            [(condition, context)] = statement["Condition"]["StringEquals"].items()
            assert condition == STATE_MACHINE_CONTEXT and set(statement["Condition"]) == {"StringEquals"}
            contexts.append(context)
    assert sorted(map(json.dumps, contexts)) == sorted(map(json.dumps, machines))
    assert len([s for s in statements if "kms:Decrypt" in actions_of([s])]) == len(UPSTREAM_WORKFLOWS) == 2


def test_every_log_group_masks_card_numbers_security_codes_and_expiry_dates(prod):
    stack, template, _ = prod
    log_groups = resources(template, "AWS::Logs::LogGroup")
    # Each function's, each state machine's, the network's (VPC flow logs, firewall alerts), and the
    # archive's (each delivery stream's errors, prod).
    archive_logs = len(stack.archive.delivery_streams)
    machines = len(topology.WORKFLOWS)
    assert len(log_groups) == len(topology.ALL_FUNCTIONS) + machines + len(stack.network.log_groups) + archive_logs
    identifiers = {f"arn:<AWS::Partition>:dataprotection::aws:data-identifier/{i.name}" for i in CARD_DATA_IDENTIFIERS}
    assert {i.name for i in CARD_DATA_IDENTIFIERS} == {
        "CreditCardNumber",
        "CreditCardSecurityCode",
        "CreditCardExpiration",
    }
    for log_group_id, log_group in log_groups.items():
        policy = log_group["Properties"].get("DataProtectionPolicy")
        assert policy is not None, log_group_id
        operations = {}
        for statement in policy["Statement"]:
            named = {_rendered(i) for i in statement["DataIdentifier"]}
            operations.update({operation: named for operation in statement["Operation"]})
        # Audited (findings in the log group's metrics) and masked for anyone without logs:Unmask.
        assert operations == {"Audit": identifiers, "Deidentify": identifiers}, log_group_id
        assert log_group["Properties"]["KmsKeyId"] == key_arn(stack, "storage")


def _rendered(value):
    """A string or an Fn::Join of strings and Refs, as text ({"Ref": "X"} -> <X>)."""
    if isinstance(value, str):
        return value
    parts = value["Fn::Join"][1]
    return "".join(p if isinstance(p, str) else "<" + p["Ref"] + ">" for p in parts)


def test_the_intake_starts_the_state_machine_which_never_refers_to_the_intake(prod):
    stack, template, _ = prod
    intake_id = logical_id(stack, stack.steps.intake)
    machine_id = logical_id(stack, stack.workflow.state_machine)
    function = resources(template, "AWS::Lambda::Function")[intake_id]
    assert function["Properties"]["Environment"]["Variables"][topology.STATE_MACHINE_ARN] == {"Ref": machine_id}
    # Nothing a state machine needs refers to the intake or its role: no cycle for CloudFormation.
    role_id = logical_id(stack, stack.steps.roles[topology.INTAKE_FUNCTION.step])
    for workflow in stack.workflows.values():
        machine = resources(template, "AWS::StepFunctions::StateMachine")[logical_id(stack, workflow.state_machine)]
        machine_role_id = logical_id(stack, workflow.state_machine.role)
        machine_policies = [
            p
            for p in resources(template, "AWS::IAM::Policy").values()
            if {"Ref": machine_role_id} in p["Properties"]["Roles"]
        ]
        for text in (json.dumps(machine), *map(json.dumps, machine_policies)):
            assert intake_id not in text and role_id not in text


def test_the_intakes_throttles_page_and_its_refusals_do_not(prod):
    stack, template, _ = prod
    intake_name = {"Ref": logical_id(stack, stack.steps.intake)}
    alarms = [
        a["Properties"]
        for a in resources(template, "AWS::CloudWatch::Alarm").values()
        if {"Name": "FunctionName", "Value": intake_name} in a["Properties"].get("Dimensions", [])
    ]
    assert [a["MetricName"] for a in alarms] == ["Throttles"]


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


def test_each_state_machine_pages_on_a_failed_or_timed_out_execution_and_each_step_on_errors_and_throttles(prod):
    stack, template, _ = prod
    alarms = [a["Properties"] for a in resources(template, "AWS::CloudWatch::Alarm").values()]

    def alarmed(dimension):
        found = [a for a in alarms if dimension in a.get("Dimensions", [])]
        assert all(a["Threshold"] == 1 and a["EvaluationPeriods"] == 1 for a in found), found
        return sorted(a["MetricName"] for a in found)

    assert len(stack.workflows) == len(topology.WORKFLOWS)
    for workflow in stack.workflows.values():
        machine = {"Name": "StateMachineArn", "Value": {"Ref": logical_id(stack, workflow.state_machine)}}
        # The scheduled ones also page when no run started for too long (test_status_sync_stack,
        # test_reconciliation_stack).
        scheduled = (topology.STATUS_SYNC_WORKFLOW, topology.RECONCILIATION_WORKFLOW)
        silence = ["ExecutionsStarted"] if workflow.spec in scheduled else []
        assert alarmed(machine) == sorted(["ExecutionsFailed", "ExecutionsTimedOut", *silence]), workflow.spec.name
    for step, function in stack.steps.step_functions.items():
        assert alarmed({"Name": "FunctionName", "Value": {"Ref": logical_id(stack, function)}}) == [
            "Errors",
            "Throttles",
        ], step
