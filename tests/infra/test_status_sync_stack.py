"""Status sync, deployed: its state machine, its two functions, its schedule and what pages (infra.schedules).

EventBridge Scheduler starts PaymentStatusSync every five minutes with `{}`, with a role that may start that
one state machine and nothing else. FindUnresolved reads the ledger's EntriesByStatus index and nothing of
the ledger's items. ResolveUnresolved holds what CallOperationProcessor holds, on any audit trail (a
reversal is audited in the payment's own), writes the ledger, and may describe only the executions of the
payment and operation state machines. A run that fails, a payment or operation left for an operator, a
schedule that stops starting runs: each pages.
"""

import importlib.util
import json

import pytest

from infra import REPO_ROOT
from infra.access import WORKFLOW_KEY_ACTIONS
from infra.functions import INDEX_READERS
from infra.schedules import SCHEDULED_INPUT, STATUS_SYNC_CADENCE
from payments import crypto, status_resolution, status_sync, topology
from tests.infra.policies import as_list, role_labels, statement_text
from tests.infra.test_iam_resources import identity_policies, statements_of_role
from tests.infra.test_keys import ACCOUNT, OPERATOR, REGION, policy_text
from tests.infra.test_stack import invoked_arn, key_arn, logical_id, resources

SYNC = topology.STATUS_SYNC_WORKFLOW
FIND, RESOLVE = "FindUnresolved", "ResolveUnresolved"
STATE_MACHINE_CONTEXT = "kms:EncryptionContext:aws:states:stateMachineArn"
ENVIRONMENTS = ["dev", "prod"]


@pytest.fixture(params=ENVIRONMENTS)
def env(request, dev, prod):
    """(environment name, stack, template) for dev and prod."""
    stack, template, _ = {"dev": dev, "prod": prod}[request.param]
    return request.param, stack, template


def get_arn(stack, construct, attribute="Arn"):
    return {"Fn::GetAtt": [logical_id(stack, construct), attribute]}


def ref(stack, construct):
    return {"Ref": logical_id(stack, construct)}


def by_sid(statements):
    return {s["Sid"]: s for s in statements if "Sid" in s}


def role_statements(stack, template, role):
    return statements_of_role(template, logical_id(stack, role))


def rendered(value):
    """A string or an Fn::Join of strings and intrinsics, as text (intrinsics as <json>)."""
    if not isinstance(value, dict) or "Fn::Join" not in value:
        return value if isinstance(value, str) else "<" + json.dumps(value) + ">"
    return "".join(p if isinstance(p, str) else "<" + json.dumps(p) + ">" for p in value["Fn::Join"][1])


def executions_of(stack, machine):
    """How the template writes execution:<state machine name>:* (its name by GetAtt)."""
    return f":execution:<{json.dumps(get_arn(stack, machine, 'Name'))}>:*"


def schedule_of(stack, template):
    return resources(template, "AWS::Scheduler::Schedule")[logical_id(stack, stack.schedules.schedules[SYNC.name])]


# The state machine --------------------------------------------------------------------------------------


def test_status_sync_is_deployed_from_its_asl_file_invoking_its_three_steps_only(env):
    name, stack, template = env
    machine = resources(template, "AWS::StepFunctions::StateMachine")[
        logical_id(stack, stack.status_sync.state_machine)
    ]
    properties = machine["Properties"]
    assert properties["StateMachineName"] == f"PaymentStatusSync-{name}"
    assert properties["StateMachineType"] == "STANDARD"
    assert properties["TracingConfiguration"] == {"Enabled": True}
    assert properties["LoggingConfiguration"]["IncludeExecutionData"] is False
    assert properties["EncryptionConfiguration"]["KmsKeyId"] == key_arn(stack, "storage")
    substitutions = properties["DefinitionSubstitutions"]
    assert substitutions == {spec.placeholder: invoked_arn(stack, spec.step) for spec in SYNC.functions}
    assert set(substitutions) == {"FindUnresolvedFunctionArn", "ResolveUnresolvedFunctionArn", "AuditFunctionArn"}
    # Its role invokes those three functions and starts nothing: its Map runs INLINE, no child executions.
    definition = json.loads((REPO_ROOT / SYNC.asl_path).read_text())
    assert definition["States"]["ResolveEach"]["ItemProcessor"]["ProcessorConfig"] == {"Mode": "INLINE"}
    statements = role_statements(stack, template, stack.status_sync.state_machine.role)
    [invoke] = [s for s in statements if s.get("Sid") == "InvokeSteps"]
    assert sorted(map(json.dumps, as_list(invoke["Resource"]))) == sorted(
        json.dumps(invoked_arn(stack, step)) for step in SYNC.steps
    )
    assert not [a for s in statements for a in as_list(s["Action"]) if a.startswith(("states:", "dynamodb:"))]
    assert template.to_json()["Outputs"]["StatusSyncStateMachineArn"]["Value"] == ref(
        stack, stack.status_sync.state_machine
    )


# The schedule -------------------------------------------------------------------------------------------


def test_the_schedule_starts_status_sync_every_five_minutes_with_an_empty_input(env):
    name, stack, template = env
    properties = schedule_of(stack, template)["Properties"]
    assert properties["Name"] == f"PaymentStatusSync-{name}"
    assert properties["GroupName"] == f"payment-workflow-{name}"
    assert properties["ScheduleExpression"] == "rate(5 minutes)"
    assert properties["State"] == "ENABLED"
    assert properties["FlexibleTimeWindow"] == {"Mode": "OFF"}
    target = properties["Target"]
    assert target["Arn"] == ref(stack, stack.status_sync.state_machine)
    assert target["RoleArn"] == get_arn(stack, stack.schedules.roles[SYNC.name])
    # {}: the last 48 hours, the default pending deadline (payments.status_sync.parse_sync_request).
    assert json.loads(target["Input"]) == SCHEDULED_INPUT == {}
    request = status_sync.parse_sync_request(json.loads(target["Input"]))
    assert (request.lookback, request.pending_deadline) == (
        status_sync.DEFAULT_LOOKBACK,
        status_sync.DEFAULT_PENDING_DEADLINE,
    )
    # A start that fails is retried until the next run is due, then goes to the dead-letter queue.
    assert target["DeadLetterConfig"] == {"Arn": get_arn(stack, stack.schedules.failures)}
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 240, "MaximumRetryAttempts": 3}
    assert STATUS_SYNC_CADENCE.max_event_age.to_seconds() < 5 * 60


def test_the_schedules_role_may_start_status_sync_and_nothing_else(env):
    _, stack, template = env
    role = stack.schedules.roles[SYNC.name]
    trust = resources(template, "AWS::IAM::Role")[logical_id(stack, role)]["Properties"]["AssumeRolePolicyDocument"]
    [assume] = trust["Statement"]
    assert assume["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert assume["Action"] == "sts:AssumeRole"
    # This account's schedules of the stack's own schedule group only.
    assert assume["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    group = rendered(assume["Condition"]["StringEquals"]["aws:SourceArn"])
    assert group.endswith(f":scheduler:{REGION}:{ACCOUNT}:schedule-group/payment-workflow-{stack.config.name}")
    statements = role_statements(stack, template, role)
    machine, queue = ref(stack, stack.status_sync.state_machine), get_arn(stack, stack.schedules.failures)
    assert {a for s in statements for a in as_list(s["Action"])} == {
        "states:StartExecution",
        "sqs:SendMessage",
        "kms:GenerateDataKey",
        "kms:Decrypt",
    }
    for statement in statements:
        assert statement["Effect"] == "Allow"
        actions = set(as_list(statement["Action"]))
        if actions == {"states:StartExecution"}:
            assert as_list(statement["Resource"]) == [machine]  # this state machine, no other, no "*"
        elif actions == {"sqs:SendMessage"}:
            assert as_list(statement["Resource"]) == [queue]
        else:  # the storage key: this state machine's context (StartExecution), the queue's through SQS
            assert as_list(statement["Resource"]) == [key_arn(stack, "storage")]
            equals = statement["Condition"]["StringEquals"]
            if statement["Sid"] == "StartEncryption":
                assert actions == WORKFLOW_KEY_ACTIONS["states:StartExecution"]
                assert equals == {STATE_MACHINE_CONTEXT: machine}
            else:
                assert statement["Sid"] == "FailureDeliveryKey"
                assert equals["kms:EncryptionContext:aws:sqs:arn"] == queue
    # Nobody else in the stack may start status sync: not the upstream policy, no function, no other role.
    starters = set()
    for policy, roles, policy_statements in identity_policies(template):
        for statement in policy_statements:
            if "states:StartExecution" in as_list(statement["Action"]) and machine in as_list(statement["Resource"]):
                starters |= roles or {policy}
    assert starters == {logical_id(stack, role)}


def test_the_storage_key_lets_the_schedule_and_operators_start_status_sync_under_its_context_only(prod):
    stack, template, _ = prod
    [statement] = [s for s in policy_text(stack, template, "storage") if s[0] == "StatusSyncStartAndRead"]
    _, _, principals, actions, _, conditions = statement
    assert principals == ("AWS", sorted(["role:StatusSyncStarter", OPERATOR]))
    assert actions == sorted(WORKFLOW_KEY_ACTIONS["states:StartExecution"])
    assert conditions == {
        "StringEquals": {
            STATE_MACHINE_CONTEXT: [
                f"arn:<AWS::Partition>:states:{REGION}:{ACCOUNT}:stateMachine:PaymentStatusSync-prod"
            ]
        }
    }


def test_the_schedules_dead_letter_queue_is_encrypted_ssl_only_and_kept_two_weeks(env):
    name, stack, template = env
    queue_id = logical_id(stack, stack.schedules.failures)
    queue = resources(template, "AWS::SQS::Queue")[queue_id]["Properties"]
    assert queue["QueueName"] == f"PaymentScheduleFailures-{name}"
    assert queue["KmsMasterKeyId"] == key_arn(stack, "storage")
    assert queue["MessageRetentionPeriod"] == 14 * 24 * 3600
    [policy] = [
        p["Properties"]
        for p in resources(template, "AWS::SQS::QueuePolicy").values()
        if p["Properties"]["Queues"] == [{"Ref": queue_id}]
    ]
    [statement] = policy["PolicyDocument"]["Statement"]
    assert (statement["Effect"], statement["Condition"]) == ("Deny", {"Bool": {"aws:SecureTransport": "false"}})
    assert template.to_json()["Outputs"]["ScheduleFailuresQueueUrl"]["Value"] == {"Ref": queue_id}


# FindUnresolved -----------------------------------------------------------------------------------------


def test_find_unresolved_reads_the_ledgers_index_and_nothing_of_its_items(prod):
    stack, template, _ = prod
    statements = by_sid(role_statements(stack, template, stack.steps.roles[FIND]))
    index = statements["LedgerIndexRead"]
    assert as_list(index["Action"]) == ["dynamodb:Query"]
    assert rendered(index["Resource"]) == f"<{json.dumps(get_arn(stack, stack.tables.ledger))}>/index/EntriesByStatus"
    assert topology.ENTRIES_BY_STATUS.name == "EntriesByStatus"
    # The index carries no SecureToken and nothing of a card: only what status sync decides on.
    assert "SecureToken" not in topology.ENTRIES_BY_STATUS.projected
    # No statement names the ledger table itself (its items: GetItem, Query, PutItem).
    assert all(get_arn(stack, stack.tables.ledger) not in as_list(s["Resource"]) for s in statements.values())
    dynamodb = [s for s in statements.values() if any(a.startswith("dynamodb:") for a in as_list(s["Action"]))]
    assert dynamodb == [index]
    table_key = statements["LedgerTableKey"]
    assert table_key["Condition"]["StringEquals"]["kms:EncryptionContext:aws:dynamodb:tableName"] == ref(
        stack, stack.tables.ledger
    )
    # No Converge, no audit trail; no key but the ledger's through DynamoDB; its own runs listed (next test).
    assert set(statements) == {
        "OwnLogs",
        "LedgerIndexRead",
        "LedgerTableKey",
        "StatusSyncRunsList",
        "NetworkInterfaces",
        "NetworkInterfacesDescribe",
    }
    spec = topology.function_by_step(FIND)
    assert not spec.uses_processor
    assert set(spec.environment("aws")) == {
        topology.DYNAMODB_TABLE_NAME,
        topology.POWERTOOLS_SERVICE_NAME,
        topology.POWERTOOLS_METRICS_NAMESPACE,
    }


def test_find_unresolved_may_list_status_sync_runs_only_one_run_at_a_time(env):
    # A run that finds an earlier one still at work does nothing (lambdas/status_sync/handler.py, _earlier_run):
    # ListExecutions on the status sync state machine, which returns no execution data, so no key. By the ARN
    # its fixed name makes: the state machine refers to FindUnresolved, so its policy cannot refer to the machine.
    name, stack, template = env
    statements = by_sid(role_statements(stack, template, stack.steps.roles[FIND]))
    machine = (
        f"arn:<{json.dumps({'Ref': 'AWS::Partition'})}>:states:{REGION}:{ACCOUNT}:stateMachine:PaymentStatusSync-{name}"
    )
    listing = statements["StatusSyncRunsList"]
    assert (as_list(listing["Action"]), rendered(listing["Resource"])) == (["states:ListExecutions"], machine)
    states = {a for s in statements.values() for a in as_list(s["Action"]) if a.startswith("states:")}
    assert states == {"states:ListExecutions"}
    # The storage key names it for the ledger through DynamoDB and its environment only: never execution data.
    labels = role_labels(stack)
    storage = [statement_text(s, labels) for s in _key_policy(stack, template, "storage")]
    assert sorted(s[0] for s in storage if "role:FindUnresolved" in s[2][1]) == ["FunctionEnvironments", "LedgerTable"]


def test_find_unresolved_reaches_the_step_functions_endpoint_alone_from_the_internal_subnets(prod):
    # It runs in the Internal subnets in a group of its own; the Step Functions endpoint (CardData subnets: one
    # private-DNS endpoint per service in a VPC) admits that group through a second group of its own, and no
    # other endpoint does: FindUnresolved reaches DynamoDB and Step Functions, not KMS, Secrets Manager or
    # EventBridge, and never the internet.
    stack, template, _ = prod
    by_id = template.to_json()["Resources"]
    network = stack.network
    finder = {"Fn::GetAtt": [logical_id(stack, network.finder_group), "GroupId"]}
    function = by_id[logical_id(stack, stack.steps.functions[FIND])]["Properties"]
    assert function["VpcConfig"]["SecurityGroupIds"] == [finder]
    internal = {s.subnet_id for s in network.vpc.select_subnets(subnet_group_name="Internal").subnets}
    assert {json.dumps(s) for s in function["VpcConfig"]["SubnetIds"]} == {
        json.dumps(stack.resolve(s)) for s in internal
    }
    rules = [r["Properties"] for r in by_id.values() if r["Type"] == "AWS::EC2::SecurityGroupIngress"]
    [admitted] = [r for r in rules if r.get("SourceSecurityGroupId") == finder]
    endpoint_group = {"Fn::GetAtt": [logical_id(stack, network.finder_endpoint_group), "GroupId"]}
    assert (admitted["GroupId"], admitted["FromPort"], admitted["ToPort"]) == (endpoint_group, 443, 443)
    endpoints = [r["Properties"] for r in by_id.values() if r["Type"] == "AWS::EC2::VPCEndpoint"]
    holding = [e for e in endpoints if endpoint_group in e.get("SecurityGroupIds", [])]
    assert [rendered(e["ServiceName"]) for e in holding] == [f"com.amazonaws.{REGION}.states"]


def test_find_unresolved_queries_the_index_by_status_as_the_code_does():
    # LedgerRepository.entries_with_status queries the index (IndexName), never the table: the one resource
    # FindUnresolved's role names.
    from payments.ledger import LedgerRepository

    class Recording:
        def __init__(self):
            self.requests = []

        def query(self, **request):
            self.requests.append(request)
            return {"Items": []}

    client = Recording()
    LedgerRepository("PaymentLedger", client=client).entries_with_status("PENDING", "a", "b")
    [request] = client.requests
    assert request["IndexName"] == topology.ENTRIES_BY_STATUS.name


# ResolveUnresolved --------------------------------------------------------------------------------------


def test_resolve_unresolved_may_describe_payment_and_operation_executions_only(env):
    _, stack, template = env
    statements = by_sid(role_statements(stack, template, stack.steps.roles[RESOLVE]))
    read = statements["ExecutionStatusRead"]
    assert as_list(read["Action"]) == ["states:DescribeExecution"]
    machines = [stack.workflow.state_machine, stack.operation_workflow.state_machine]
    found = [rendered(r) for r in as_list(read["Resource"])]
    assert len(found) == 2
    for text, machine in zip(found, machines, strict=True):
        assert text.endswith(executions_of(stack, machine)), text
        assert text.startswith(f"arn:<{json.dumps({'Ref': 'AWS::Partition'})}>:states:{REGION}:{ACCOUNT}")
    # Not its own executions, not reconciliation's: the last entry of a pending payment or operation is always
    # written by the payment's or the operation's execution.
    for other in (stack.status_sync.state_machine, stack.reconciliation.state_machine):
        assert logical_id(stack, other) not in json.dumps(read)
    # It asks for metadata only: no key for the executions' data (the key policy names it for none, below).
    assert not any("kms:" in json.dumps(s["Action"]) and "states" in json.dumps(s) for s in statements.values())
    # ...and no other states: action at all.
    states = {a for s in statements.values() for a in as_list(s["Action"]) if a.startswith("states:")}
    assert states == {"states:DescribeExecution"}


def test_resolve_unresolved_seals_audit_payloads_and_never_touches_card_data(env):
    _, stack, template = env
    statements = role_statements(stack, template, stack.steps.roles[RESOLVE])
    named = json.dumps(statements)
    for construct in (stack.keys.card_data_key, stack.tables.vault, stack.tables.idempotency):
        assert logical_id(stack, construct) not in named
    on_audit_key = [s for s in statements if key_arn(stack, "audit") in as_list(s["Resource"])]
    assert [(as_list(s["Action"]), s["Condition"]) for s in on_audit_key] == [
        (["kms:GenerateDataKey"], {"StringEquals": {"kms:EncryptionContext:purpose": crypto.PURPOSE_AUDIT}})
    ]
    spec = topology.function_by_step(RESOLVE)
    assert spec.uses_processor
    assert topology.PAYMENT_KMS_KEY_ARN not in spec.environment("aws")
    assert topology.CARD_VAULT_TABLE_NAME not in spec.environment("aws")
    # The key policies name it for what its own policy holds: sealing (never opening) audit payloads, the
    # Converge secret, the ledger and the audit trail through DynamoDB, payment and operation executions.
    labels = role_labels(stack)
    card_data = json.dumps([statement_text(s, labels) for s in _key_policy(stack, template, "card_data")])
    assert "role:ResolveUnresolved" not in card_data
    audit = [statement_text(s, labels) for s in _key_policy(stack, template, "audit")]
    assert [s[0] for s in audit if "role:ResolveUnresolved" in s[2][1]] == ["AuditSealing"]
    storage = [statement_text(s, labels) for s in _key_policy(stack, template, "storage")]
    assert sorted(s[0] for s in storage if "role:ResolveUnresolved" in s[2][1]) == [
        "AuditTable",
        "ConvergeCredentialsReading",
        "FunctionEnvironments",
        "LedgerTable",
    ]


def _key_policy(stack, template, key):
    return template.to_json()["Resources"][logical_id(stack, stack.keys.keys[key])]["Properties"]["KeyPolicy"][
        "Statement"
    ]


def test_resolve_unresolved_appends_to_the_ledger_and_the_audit_trail_their_policies_admit_it(env):
    # Both tables deny PutItem to every principal but their writers: the resolver is one of each, and it holds
    # PutItem alone of every write (no UpdateItem, DeleteItem, BatchWriteItem).
    name, stack, template = env
    labels = role_labels(stack)
    statements = by_sid(role_statements(stack, template, stack.steps.roles[RESOLVE]))
    for sid, table in (("LedgerAppend", stack.tables.ledger), ("AuditAppend", stack.tables.audit)):
        assert as_list(statements[sid]["Action"]) == ["dynamodb:PutItem"]
        assert as_list(statements[sid]["Resource"]) == [get_arn(stack, table)]
        found = resources(template, "AWS::DynamoDB::GlobalTable")[logical_id(stack, table)]
        [replica] = found["Properties"]["Replicas"]
        [append_only] = [
            s for s in replica["ResourcePolicy"]["PolicyDocument"]["Statement"] if s["Sid"] == "AppendByTheWorkflowOnly"
        ]
        writers = statement_text(append_only, labels)[5]["ArnNotEquals"]["aws:PrincipalArn"]
        assert "role:ResolveUnresolved" in writers, (name, sid)
    writes = {a for s in statements.values() for a in as_list(s["Action"])} & {
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem",
    }
    assert writes == set()


def test_resolve_unresolved_reads_the_chains_as_the_code_projects_them(prod):
    # The ledger's entry n-1 link (payments.chain), and the audit trail's chain and sale-attempt claims, as
    # CallProcessor reads them: a reversal is sent through the same claim-and-ask protocol.
    stack, template, _ = prod
    statements = by_sid(role_statements(stack, template, stack.steps.roles[RESOLVE]))
    processor = by_sid(role_statements(stack, template, stack.steps.roles["CallProcessor"]))
    link = by_sid(role_statements(stack, template, stack.steps.roles["LedgerPending"]))["LedgerLinkRead"]
    assert statements["LedgerLinkRead"] == link
    assert statements["AuditTrailRead"] == processor["AuditTrailRead"]
    # The payment's whole history (every entry: status sync decides on all of them), consistently.
    assert (as_list(statements["LedgerRead"]["Action"]), statements["LedgerRead"].get("Condition")) == (
        ["dynamodb:Query"],
        None,
    )


def test_resolve_unresolved_may_write_a_payments_own_audit_trail(prod):
    # Unlike CallOperationProcessor, whose records stay in an operation's trail (<TransactionID>/<OperationID>),
    # the resolver audits a payment's lookup and its reversal in the payment's own trail
    # (payments.status_resolution: recorder_for(payment.TransactionID)), so its audit access is not held to
    # operations' trails; it is still PutItem and the chain's projected Query only.
    stack, template, _ = prod
    audit = get_arn(stack, stack.tables.audit)
    on_audit = [
        s for s in role_statements(stack, template, stack.steps.roles[RESOLVE]) if audit in as_list(s["Resource"])
    ]
    assert sorted(s["Sid"] for s in on_audit) == ["AuditAppend", "AuditTrailRead"]
    for statement in on_audit:
        assert "dynamodb:LeadingKeys" not in json.dumps(statement)


# What pages ---------------------------------------------------------------------------------------------


def alarms_of(template):
    return [a["Properties"] for a in resources(template, "AWS::CloudWatch::Alarm").values()]


def _status_sync_handler():
    spec = importlib.util.spec_from_file_location(
        "status_sync_handler_under_test", REPO_ROOT / "lambdas" / "status_sync" / "handler.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_payment_or_operation_left_for_an_operator_pages(env):
    _, stack, template = env
    # The metric ResolveUnresolved emits for the outcome LEFT_FOR_AN_OPERATOR (lambdas/status_sync/handler.py),
    # through Powertools: namespace and service dimension as the function's environment sets them.
    handler = _status_sync_handler()
    metric = "StatusSync" + handler._metric_name("LEFT_FOR_AN_OPERATOR")
    assert metric == "StatusSyncLeftForAnOperator"
    assert "LEFT_FOR_AN_OPERATOR" in status_resolution.Outcome.__args__
    [alarm] = [a for a in alarms_of(template) if a.get("MetricName") == metric]
    assert alarm["Namespace"] == topology.METRICS_NAMESPACE == "Payments"
    assert alarm["Dimensions"] == [{"Name": "service", "Value": topology.SERVICE_NAME}]
    assert (alarm["Statistic"], alarm["Period"], alarm["Threshold"]) == ("Sum", 300, 1)
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"  # any at all: > 0
    assert alarm["TreatMissingData"] == "notBreaching"
    [topic] = resources(template, "AWS::SNS::Topic")
    assert alarm["AlarmActions"] == [{"Ref": topic}]
    function = resources(template, "AWS::Lambda::Function")[logical_id(stack, stack.steps.functions[RESOLVE])]
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables[topology.POWERTOOLS_METRICS_NAMESPACE] == alarm["Namespace"]
    assert variables[topology.POWERTOOLS_SERVICE_NAME] == alarm["Dimensions"][0]["Value"]


def test_a_failed_or_timed_out_run_a_schedule_given_up_on_and_a_silent_schedule_page(env):
    _, stack, template = env
    alarms = alarms_of(template)
    [topic] = resources(template, "AWS::SNS::Topic")
    machine = {"Name": "StateMachineArn", "Value": ref(stack, stack.status_sync.state_machine)}
    on_machine = {a["MetricName"]: a for a in alarms if machine in a.get("Dimensions", [])}
    assert sorted(on_machine) == ["ExecutionsFailed", "ExecutionsStarted", "ExecutionsTimedOut"]
    for metric in ("ExecutionsFailed", "ExecutionsTimedOut"):
        assert on_machine[metric]["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert on_machine[metric]["Threshold"] == 1
    # No run started in half an hour: the schedule is disabled or cannot start it. Missing data is silence.
    silent = on_machine["ExecutionsStarted"]
    assert (silent["ComparisonOperator"], silent["Threshold"], silent["Statistic"], silent["Period"]) == (
        "LessThanThreshold",
        1,
        "Sum",
        1800,
    )
    assert silent["TreatMissingData"] == "breaching"
    queue = {"Name": "QueueName", "Value": get_arn(stack, stack.schedules.failures, "QueueName")}
    [depth] = [a for a in alarms if queue in a.get("Dimensions", [])]
    assert (depth["MetricName"], depth["Statistic"], depth["Threshold"]) == (
        "ApproximateNumberOfMessagesVisible",
        "Maximum",
        1,
    )
    for alarm in [*on_machine.values(), depth]:
        assert alarm["AlarmActions"] == [{"Ref": topic}]
    # Its two functions page on errors and throttles as every step does (test_stack).
    for step in (FIND, RESOLVE):
        function = {"Name": "FunctionName", "Value": ref(stack, stack.steps.functions[step])}
        assert sorted(a["MetricName"] for a in alarms if function in a.get("Dimensions", [])) == [
            "Errors",
            "Throttles",
        ]


def test_upstream_services_can_neither_start_nor_read_the_scheduled_workflows(prod):
    stack, template, _ = prod
    [policy] = resources(template, "AWS::IAM::ManagedPolicy").values()
    text = json.dumps(policy)
    for machine in (stack.status_sync.state_machine, stack.reconciliation.state_machine):
        assert logical_id(stack, machine) not in text
    # ...nor may the key policy let them use the key under those state machines' contexts.
    for sid, _, (_, principals), _, _, conditions in policy_text(stack, template, "storage"):
        contexts = json.dumps(conditions)
        if "PaymentStatusSync-prod" in contexts or "PaymentReconciliationWorkflow-prod" in contexts:
            assert f"arn:<AWS::Partition>:iam::{ACCOUNT}:role/PaymentUpstream" not in principals, sid


def test_only_find_unresolved_and_match_ledger_read_the_ledgers_index(env):
    # The index holds every entry's Status, time and amounts: status sync's finder and reconciliation's
    # matcher read it, and no other identity policy names it (nor any "index/*" of the ledger).
    _, stack, template = env
    readers = set()
    for policy, roles, statements in identity_policies(template):
        for statement in statements:
            if "/index/" in json.dumps(statement["Resource"]):
                assert as_list(statement["Action"]) == ["dynamodb:Query"], statement
                readers |= roles or {policy}
    assert readers == {logical_id(stack, stack.steps.roles[step]) for step in INDEX_READERS}
    assert {FIND, "MatchLedger"} == INDEX_READERS
