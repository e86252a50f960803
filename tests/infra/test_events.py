"""The payments bus and LedgerEvents: the ledger's stream in, one event per terminal entry out (infra.events).

LedgerEvents' role reads the ledger's stream and nothing of the ledger's items, puts events on the payments
bus alone, keeps its own idempotency records alone, and never comes near card data. The event source mapping
reports partial batch failures and gives up on a batch into an encrypted queue that pages.
"""

import json

import pytest

from infra.events import BATCH_SIZE, MAX_RETRY_ATTEMPTS
from payments import events as payment_events
from payments import topology
from tests.infra.policies import as_list, role_labels, statement_text
from tests.infra.test_iam_resources import identity_policies, statements_of_role
from tests.infra.test_keys import ACCOUNT, DEPLOYER, REGION
from tests.infra.test_stack import actions_of, key_arn, logical_id, resources

EVENTS = topology.EVENTS_FUNCTION.step
ENVIRONMENTS = ["dev", "prod"]


def get_arn(stack, construct, attribute="Arn"):
    return {"Fn::GetAtt": [logical_id(stack, construct), attribute]}


def events_role_statements(stack, template):
    """Every statement of LedgerEvents' role, X-Ray and the VPC attachment included."""
    return statements_of_role(template, logical_id(stack, stack.steps.roles[EVENTS]))


def by_sid(statements):
    return {s.get("Sid"): s for s in statements}


@pytest.fixture(params=ENVIRONMENTS)
def env(request, dev, prod):
    """(environment name, stack, template) for dev and prod."""
    stack, template, _ = {"dev": dev, "prod": prod}[request.param]
    return request.param, stack, template


# The bus ------------------------------------------------------------------------------------------------


def test_the_payments_bus_is_named_for_its_environment_and_encrypted_with_the_storage_key(env):
    name, stack, template = env
    [bus_id] = resources(template, "AWS::Events::EventBus")
    assert bus_id == logical_id(stack, stack.events.bus)
    properties = resources(template, "AWS::Events::EventBus")[bus_id]["Properties"]
    assert properties["Name"] == f"{topology.EVENT_BUS}-{name}" == f"payments-{name}"
    assert properties["KmsKeyIdentifier"] == key_arn(stack, "storage")
    # The bus's policy is on the bus itself: no AWS::Events::EventBusPolicy resource adds to it.
    assert resources(template, "AWS::Events::EventBusPolicy") == {}
    outputs = template.to_json()["Outputs"]
    assert outputs["EventBusName"]["Value"] == {"Ref": bus_id}
    assert outputs["EventBusArn"]["Value"] == get_arn(stack, stack.events.bus)


def test_only_ledger_events_may_put_events_on_the_bus_and_only_the_deployment_role_manage_its_rules(env):
    name, stack, template = env
    bus = resources(template, "AWS::Events::EventBus")[logical_id(stack, stack.events.bus)]["Properties"]
    statements = [statement_text(s, role_labels(stack)) for s in bus["Policy"]["Statement"]]
    arn = f"arn:<AWS::Partition>:events:{REGION}:{ACCOUNT}"
    deployer = DEPLOYER
    assert json.loads(json.dumps(statements)) == [
        [
            "PublishedByLedgerEventsOnly",
            "Deny",
            ["AWS", ["*"]],
            ["events:PutEvents"],
            [f"{arn}:event-bus/payments-{name}"],
            {"ArnNotEquals": {"aws:PrincipalArn": ["role:LedgerEvents"]}},
        ],
        [
            "SubscriptionsByTheDeploymentRoleOnly",
            "Deny",
            ["AWS", ["*"]],
            sorted(
                [
                    "events:PutRule",
                    "events:PutTargets",
                    "events:DeleteRule",
                    "events:RemoveTargets",
                    "events:EnableRule",
                    "events:DisableRule",
                ]
            ),
            [f"{arn}:rule/payments-{name}/*"],
            {"ArnNotEquals": {"aws:PrincipalArn": [deployer]}},
        ],
    ]


def test_no_identity_policy_of_the_stack_but_ledger_events_may_put_events_and_it_only_on_the_bus(env):
    _, stack, template = env
    role_id = logical_id(stack, stack.steps.roles[EVENTS])
    putting = []
    for name, roles, statements in identity_policies(template):
        for statement in statements:
            if any(a in ("events:PutEvents", "events:*", "*") for a in as_list(statement["Action"])):
                putting.append((roles or {name}, statement))
    [(roles, statement)] = putting
    assert roles == {role_id}
    assert as_list(statement["Action"]) == ["events:PutEvents"]
    assert as_list(statement["Resource"]) == [get_arn(stack, stack.events.bus)]
    # Of its own source and detail types only (payments.events): it cannot pose as another service.
    assert statement["Condition"] == {
        "ForAllValues:StringEquals": {
            "events:source": [payment_events.EVENT_SOURCE],
            "events:detail-type": list(payment_events.EVENT_TYPES),
        }
    }
    # Each terminal status's event, and PaymentReconciled (an entry status sync or reconciliation wrote).
    assert set(payment_events.EVENT_TYPES) == {*payment_events.DETAIL_TYPES.values(), payment_events.RECONCILED}


# LedgerEvents' role -------------------------------------------------------------------------------------


def test_ledger_events_reads_only_the_ledgers_stream_and_nothing_of_its_items(env):
    _, stack, template = env
    statements = by_sid(events_role_statements(stack, template))
    read = statements["LedgerStreamRead"]
    assert set(as_list(read["Action"])) == {
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
    }
    assert as_list(read["Resource"]) == [get_arn(stack, stack.tables.ledger, "StreamArn")]
    assert (as_list(statements["LedgerStreamList"]["Action"]), statements["LedgerStreamList"]["Resource"]) == (
        ["dynamodb:ListStreams"],
        "*",
    )
    # No statement names the ledger table itself (its items: PutItem, GetItem, Query), the audit trail or the
    # vault; the only table it names is its own idempotency table.
    named = json.dumps(list(statements.values()))
    tables = {
        "ledger": get_arn(stack, stack.tables.ledger),
        "audit": get_arn(stack, stack.tables.audit),
        "vault": get_arn(stack, stack.tables.vault),
    }
    for table, arn in tables.items():
        assert json.dumps(arn) not in named, table
    dynamodb = [s for s in statements.values() if any(a.startswith("dynamodb:") for a in as_list(s["Action"]))]
    assert {json.dumps(r) for s in dynamodb for r in as_list(s["Resource"])} == {
        json.dumps(get_arn(stack, stack.tables.ledger, "StreamArn")),
        json.dumps("*"),
        json.dumps(get_arn(stack, stack.tables.idempotency)),
    }
    item_actions = {a for s in dynamodb for a in as_list(s["Action"])} - {
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
        "dynamodb:ListStreams",
    }
    records = statements["IdempotencyRecords"]
    assert (
        item_actions
        == set(as_list(records["Action"]))
        == {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
        }
    )
    assert as_list(records["Resource"]) == [get_arn(stack, stack.tables.idempotency)]


def test_ledger_events_uses_the_storage_key_for_its_stream_its_records_and_its_queue_only(env):
    # The stream under the ledger's table name (Decrypt only), its idempotency table through DynamoDB, its
    # failure queue through SQS. Never the card-data key or the audit key, never a purpose of payments.crypto.
    _, stack, template = env
    statements = events_role_statements(stack, template)
    on_keys = [s for s in statements if any(a.startswith("kms:") for a in as_list(s["Action"]))]
    assert {s["Sid"] for s in on_keys} == {"LedgerStreamKey", "IdempotencyTableKey", "FailureDeliveryKey"}
    for statement in on_keys:
        assert as_list(statement["Resource"]) == [key_arn(stack, "storage")], statement["Sid"]
        assert "kms:EncryptionContext:purpose" not in json.dumps(statement)
    named = json.dumps(statements)
    for key in ("card_data", "audit"):
        assert json.dumps(key_arn(stack, key)) not in named, key
    found = by_sid(on_keys)
    ledger = {"Ref": logical_id(stack, stack.tables.ledger)}
    assert (as_list(found["LedgerStreamKey"]["Action"]), found["LedgerStreamKey"]["Condition"]) == (
        ["kms:Decrypt"],
        {"StringEquals": {"kms:EncryptionContext:aws:dynamodb:tableName": ledger}},
    )
    context = found["IdempotencyTableKey"]["Condition"]["StringEquals"]
    assert context["kms:EncryptionContext:aws:dynamodb:tableName"] == {
        "Ref": logical_id(stack, stack.tables.idempotency)
    }
    delivery = found["FailureDeliveryKey"]
    assert set(as_list(delivery["Action"])) == {"kms:GenerateDataKey", "kms:Decrypt"}
    assert delivery["Condition"]["StringEquals"]["kms:EncryptionContext:aws:sqs:arn"] == get_arn(
        stack, stack.events.failures
    )
    assert delivery["Condition"]["StringEquals"]["kms:ViaService"]["Fn::Join"][1][0] == "sqs."


def test_ledger_events_cannot_decrypt_card_data_or_touch_the_vault(env):
    _, stack, template = env
    spec = topology.EVENTS_FUNCTION
    assert set(spec.environment("aws")) == {
        topology.EVENT_BUS_NAME,
        topology.IDEMPOTENCY_TABLE_NAME,
        topology.POWERTOOLS_SERVICE_NAME,
        topology.POWERTOOLS_METRICS_NAMESPACE,
    }
    function = resources(template, "AWS::Lambda::Function")[logical_id(stack, stack.steps.ledger_events)]
    variables = json.dumps(function["Properties"]["Environment"]["Variables"])
    statements = json.dumps(events_role_statements(stack, template))
    for construct in (stack.keys.card_data_key, stack.keys.audit_key, stack.tables.vault):
        assert logical_id(stack, construct) not in variables
        assert logical_id(stack, construct) not in statements
    # ...nor may the key policies name it, but for the storage key's own statements.
    labels = role_labels(stack)
    for key in ("card_data", "audit"):
        policy = template.to_json()["Resources"][logical_id(stack, stack.keys.keys[key])]["Properties"]["KeyPolicy"]
        assert "role:LedgerEvents" not in json.dumps([statement_text(s, labels) for s in policy["Statement"]]), key


def test_ledger_events_sends_only_to_its_failure_queue(env):
    _, stack, template = env
    statements = events_role_statements(stack, template)
    sqs = [s for s in statements if any(a.startswith("sqs:") for a in as_list(s["Action"]))]
    assert [(as_list(s["Action"]), as_list(s["Resource"])) for s in sqs] == [
        (["sqs:SendMessage"], [get_arn(stack, stack.events.failures)])
    ]
    assert actions_of(statements) >= {"events:PutEvents", "sqs:SendMessage"}


# The event source mapping -------------------------------------------------------------------------------


def test_the_ledgers_stream_feeds_ledger_events_reporting_partial_failures_into_a_failure_queue(env):
    _, stack, template = env
    [mapping] = resources(template, "AWS::Lambda::EventSourceMapping").values()
    properties = mapping["Properties"]
    assert properties["EventSourceArn"] == get_arn(stack, stack.tables.ledger, "StreamArn")
    assert properties["FunctionName"] == {"Ref": logical_id(stack, stack.steps.ledger_events)}
    assert properties["StartingPosition"] == "TRIM_HORIZON"  # every entry the stream still holds
    assert properties["BatchSize"] == BATCH_SIZE == 100
    # Only the failed records (and what follows them in their shard) are retried; a whole batch failing is split.
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert properties["BisectBatchOnFunctionError"] is True
    # Bounded: one bad record cannot hold back its shard's later entries for the stream's 24 hours.
    assert properties["MaximumRetryAttempts"] == MAX_RETRY_ATTEMPTS
    assert 0 < MAX_RETRY_ATTEMPTS <= 10
    assert properties["DestinationConfig"] == {"OnFailure": {"Destination": get_arn(stack, stack.events.failures)}}
    assert properties.get("ParallelizationFactor", 1) == 1  # each payment's entries in order
    # Lambda checks the role can read the stream when the mapping is created: the policy comes first.
    policy = stack.steps.roles[EVENTS].node.find_child("DefaultPolicy")
    assert logical_id(stack, policy) in mapping["DependsOn"]


def test_the_failure_queue_is_encrypted_with_the_storage_key_ssl_only_and_kept_two_weeks(env):
    name, stack, template = env
    queue_id = logical_id(stack, stack.events.failures)
    queue = resources(template, "AWS::SQS::Queue")[queue_id]
    assert queue["Properties"]["QueueName"] == f"PaymentLedgerEventsFailures-{name}"
    assert queue["Properties"]["KmsMasterKeyId"] == key_arn(stack, "storage")
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    [policy] = [
        p["Properties"]
        for p in resources(template, "AWS::SQS::QueuePolicy").values()
        if p["Properties"]["Queues"] == [{"Ref": queue_id}]
    ]
    [statement] = policy["PolicyDocument"]["Statement"]
    assert (statement["Effect"], statement["Condition"]) == ("Deny", {"Bool": {"aws:SecureTransport": "false"}})
    assert template.to_json()["Outputs"]["EventFailuresQueueUrl"]["Value"] == {"Ref": queue_id}


# Paging -------------------------------------------------------------------------------------------------


def test_a_batch_given_up_on_a_lagging_stream_and_ledger_events_errors_and_throttles_page(env):
    _, stack, template = env
    alarms = [a["Properties"] for a in resources(template, "AWS::CloudWatch::Alarm").values()]
    [topic] = resources(template, "AWS::SNS::Topic")
    function = {"Name": "FunctionName", "Value": {"Ref": logical_id(stack, stack.steps.ledger_events)}}
    on_function = sorted(a["MetricName"] for a in alarms if function in a.get("Dimensions", []))
    assert on_function == ["DestinationDeliveryFailures", "Errors", "IteratorAge", "Throttles"]
    queue = {"Name": "QueueName", "Value": {"Fn::GetAtt": [logical_id(stack, stack.events.failures), "QueueName"]}}
    [depth] = [a for a in alarms if queue in a.get("Dimensions", [])]
    assert (depth["MetricName"], depth["Statistic"], depth["Threshold"]) == (
        "ApproximateNumberOfMessagesVisible",
        "Maximum",
        1,
    )
    for alarm in [depth, *(a for a in alarms if function in a.get("Dimensions", []))]:
        assert alarm["AlarmActions"] == [{"Ref": topic}]
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


# The idempotency records --------------------------------------------------------------------------------


def test_the_idempotency_table_is_on_demand_encrypted_expiring_backed_up_and_protected_in_prod(env):
    name, stack, template = env
    table = resources(template, "AWS::DynamoDB::GlobalTable")[logical_id(stack, stack.tables.idempotency)]
    properties = table["Properties"]
    assert properties["TableName"] == f"{topology.IDEMPOTENCY_TABLE.name}-{name}"
    assert properties["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert "StreamSpecification" not in properties
    [replica] = properties["Replicas"]
    assert replica["SSESpecification"] == {"KMSMasterKeyId": key_arn(stack, "storage")}
    assert replica["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert replica["DeletionProtectionEnabled"] is (name == "prod")
