"""Deploy-time defects a synthesized template hides until CloudFormation or CloudWatch meets them."""

import json

import pytest

from infra import REPO_ROOT
from infra import config as environments
from infra.access import WORKFLOW_KEY_ACTIONS

# What prod keeps: the keys, the tables, the secret, the log groups and the archive's log streams, the queues of
# payment-event batches and scheduled starts given up on (all but the keys have fixed names), the report bucket,
# and the evidence buckets, which every environment keeps (infra.buckets).
RETAINED_IN_PROD = {
    "AWS::KMS::Key",
    "AWS::DynamoDB::GlobalTable",
    "AWS::SecretsManager::Secret",
    "AWS::Logs::LogGroup",
    "AWS::Logs::LogStream",
    "AWS::SQS::Queue",
    "AWS::S3::Bucket",
}
# Kept in every environment: a bucket holding Object Lock versions cannot be deleted by CloudFormation.
RETAINED_EVERYWHERE = {"AWS::S3::Bucket"}
FIXED_NAME = {
    "AWS::DynamoDB::GlobalTable": "TableName",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::SQS::Queue": "QueueName",
}


def statements_of(template, kind):
    found = []
    for resource in template.find_resources(kind).values():
        found += resource["Properties"]["PolicyDocument"]["Statement"]
    return found


def as_list(value):
    return value if isinstance(value, list) else [value]


def join(value):
    """An Fn::Join rendered as text, references as <Ref>."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return f"<{value['Ref']}>"
    separator, parts = value["Fn::Join"]
    return separator.join(join(part) for part in parts)


# 1. The alarm topic's policy -------------------------------------------------------------------------


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_cloudwatch_alarms_of_this_account_may_publish_to_the_alarm_topic_over_ssl_only(env, dev, prod):
    # enforce_ssl writes a topic policy, which replaces SNS's default one: without an Allow for
    # cloudwatch.amazonaws.com no alarm could publish (AWS's example for alarms: sns:Publish, with
    # aws:SourceAccount and aws:SourceArn on the alarms as the confused-deputy guard).
    _, template, _ = {"dev": dev, "prod": prod}[env]
    [topic_id] = template.find_resources("AWS::SNS::Topic")
    [policy] = template.find_resources("AWS::SNS::TopicPolicy").values()
    assert policy["Properties"]["Topics"] == [{"Ref": topic_id}]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]

    [allow] = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert as_list(allow["Action"]) == ["sns:Publish"]
    assert as_list(allow["Resource"]) == [{"Ref": topic_id}]
    assert set(allow["Condition"]) == {"StringEquals", "ArnLike"}
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    [(key, source_arn)] = allow["Condition"]["ArnLike"].items()
    assert key == "aws:SourceArn"
    assert join(source_arn) == "arn:<AWS::Partition>:cloudwatch:<AWS::Region>:<AWS::AccountId>:alarm:*"

    # ...and the SSL deny is still there, for every principal.
    [deny] = [s for s in statements if s["Effect"] == "Deny"]
    assert deny["Principal"] == "*"
    assert as_list(deny["Action"]) == ["sns:Publish"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert len(statements) == 2

    # Every alarm pages through that topic, so every alarm is one the Allow admits.
    alarms = template.find_resources("AWS::CloudWatch::Alarm").values()
    assert alarms and all(a["Properties"]["AlarmActions"] == [{"Ref": topic_id}] for a in alarms)


# 2. Retained in prod, but not after a failed first create ---------------------------------------------


def test_prod_keeps_its_data_on_update_and_delete_but_not_after_a_failed_first_create(prod):
    # RETAIN would leave the fixed-name tables, log groups and secret behind when the first create
    # rolls back, and every retry would fail with "already exists": RetainExceptOnCreate deletes them then.
    _, template, _ = prod
    resources = template.to_json()["Resources"]
    retained = {k: r for k, r in resources.items() if r.get("DeletionPolicy", "Delete") != "Delete"}
    assert {r["Type"] for r in retained.values()} == RETAINED_IN_PROD
    for kind in RETAINED_IN_PROD:
        for logical_id, resource in template.find_resources(kind).items():
            assert resource["DeletionPolicy"] == "RetainExceptOnCreate", logical_id
            assert resource["UpdateReplacePolicy"] == "Retain", logical_id
            if kind in FIXED_NAME:
                assert isinstance(resource["Properties"][FIXED_NAME[kind]], str), logical_id
    # No plain Retain anywhere, and every retained resource is one of the above.
    assert all(r["DeletionPolicy"] == "RetainExceptOnCreate" for r in retained.values())


def test_dev_keeps_nothing_but_its_evidence_buckets(dev):
    stack, template, _ = dev
    for kind in RETAINED_IN_PROD - RETAINED_EVERYWHERE - {"AWS::Logs::LogStream"}:  # dev has no archive
        resources = template.find_resources(kind)
        assert resources, kind
        for logical_id, resource in resources.items():
            assert resource["DeletionPolicy"] == "Delete", logical_id
            assert resource["UpdateReplacePolicy"] == "Delete", logical_id
    buckets = template.find_resources("AWS::S3::Bucket")
    # The trail's and the access logs of it, kept; reconciliation's report bucket, which goes with the stack.
    reports = stack.get_logical_id(stack.reports.bucket.node.default_child)
    assert len(buckets) == 3 and reports in buckets
    evidence = {k: b for k, b in buckets.items() if k != reports}
    for logical_id, bucket in evidence.items():
        assert bucket["DeletionPolicy"] == "RetainExceptOnCreate", logical_id
    assert buckets[reports]["DeletionPolicy"] == "Delete"
    retained = {k for k, r in template.to_json()["Resources"].items() if r.get("DeletionPolicy", "Delete") != "Delete"}
    assert retained == set(evidence)


# 3. Prod and staging name their accounts ------------------------------------------------------------


def cdk_json_environments():
    return json.loads((REPO_ROOT / "cdk.json").read_text())["context"][environments.CONTEXT_KEY]


@pytest.mark.parametrize("name", ["staging", "prod"])
def test_prod_and_staging_name_their_account_in_cdk_json(name, monkeypatch):
    monkeypatch.setenv("CDK_DEFAULT_ACCOUNT", "999999999999")  # the caller's credentials: not used
    configured = cdk_json_environments()
    account = configured[name]["account"]
    assert len(account) == 12 and account.isdigit()
    assert environments.load(name).account == account


@pytest.mark.parametrize("name", ["staging", "prod"])
@pytest.mark.parametrize("account", [None, "", "21098765432", "arn:aws:iam::210987654321:root"])
def test_prod_and_staging_without_an_account_of_their_own_are_refused(name, account, monkeypatch):
    monkeypatch.setenv("CDK_DEFAULT_ACCOUNT", "999999999999")  # credentials for some other account
    configured = cdk_json_environments()
    settings = dict(configured[name])
    settings.pop("account")
    if account is not None:
        settings["account"] = account
    with pytest.raises(SystemExit, match=rf"environment '{name}' must name its AWS account"):
        environments.load(name, {**configured, name: settings})


def test_dev_may_take_its_account_from_the_credentials(monkeypatch):
    configured = cdk_json_environments()
    assert "account" not in configured["dev"]
    monkeypatch.setenv("CDK_DEFAULT_ACCOUNT", "999999999999")
    assert environments.load("dev").account == "999999999999"
    monkeypatch.delenv("CDK_DEFAULT_ACCOUNT")
    assert environments.load("dev").account is None  # environment-agnostic, as before


# 4. The upstream policy: the key actions StartExecution and DescribeExecution need, no others -----------

# What a caller needs of a state machine's customer managed key, by call. StartExecution: the Step
# Functions team's list (aws-samples/aws-stepfunctions-examples#74, "StartExecution (API):
# kms:GenerateDataKey, kms:Decrypt"). DescribeExecution: its API reference (includedData: "callers
# must have kms:Decrypt permission").
DOCUMENTED_KEY_ACTIONS = {
    "states:StartExecution": {"kms:GenerateDataKey", "kms:Decrypt"},
    "states:DescribeExecution": {"kms:Decrypt"},
}


def test_the_upstream_policy_has_exactly_the_key_actions_its_two_workflow_calls_need(prod):
    # StartExecution encrypts the input under the state machine's key; DescribeExecution returns the
    # input and output decrypted. Any other KMS action would be unused.
    assert WORKFLOW_KEY_ACTIONS == DOCUMENTED_KEY_ACTIONS
    _, template, _ = prod
    statements = statements_of(template, "AWS::IAM::ManagedPolicy")
    workflow_calls = {a for s in statements for a in as_list(s["Action"]) if a.startswith("states:")}
    assert workflow_calls == set(DOCUMENTED_KEY_ACTIONS)
    key_actions = {a for s in statements for a in as_list(s["Action"]) if a.startswith("kms:")}
    assert key_actions == set().union(*DOCUMENTED_KEY_ACTIONS.values())
