"""Daily reconciliation, deployed: its state machine, its three functions, the report bucket, its schedule.

EventBridge Scheduler starts PaymentReconciliationWorkflow at 03:00 UTC with `{}` (yesterday, UTC).
PlanReconciliation needs nothing; ListProcessorWindow calls Converge and writes its window's listing under
reconciliation/<date>/runs/<run>/windows/, nothing else of the bucket and nothing of the tables;
MatchLedger reads those listings and the ledger (its EntriesByStatus index, a payment's history), appends
PAYMENT-SETTLED facts and writes the reports. The report bucket is private, SSL only, encrypted with the
storage key, versioned, access-logged, and written by those two steps alone.
"""

import datetime as dt
import fnmatch
import json

import pytest

from infra import REPO_ROOT
from infra.functions import REPORTS, WINDOW_LISTINGS
from infra.reports import NONCURRENT_RETENTION_DAYS, REPORT_RETENTION_DAYS
from infra.schedules import SCHEDULED_INPUT
from infra.workflow import has_distributed_map
from payments import reconciliation_run, topology
from payments.processors.converge.client import DEFAULT_LISTING_LIMIT
from tests.infra.policies import as_list, role_labels, statement_text
from tests.infra.test_iam_resources import identity_policies, statements_of_role
from tests.infra.test_keys import ACCOUNT, REGION
from tests.infra.test_stack import invoked_arn, key_arn, logical_id, resources

RECONCILIATION = topology.RECONCILIATION_WORKFLOW
PLAN, LIST, MATCH = "PlanReconciliation", "ListProcessorWindow", "MatchLedger"
STATE_MACHINE_CONTEXT = "kms:EncryptionContext:aws:states:stateMachineArn"


@pytest.fixture(params=["dev", "prod"])
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


def role_statements(stack, template, step):
    return statements_of_role(template, logical_id(stack, stack.steps.roles[step]))


def objects(stack, pattern):
    """An object ARN pattern of the report bucket, as the template joins it."""
    return {"Fn::Join": ["", [get_arn(stack, stack.reports.bucket), f"/{pattern}"]]}


def rendered(value):
    if not isinstance(value, dict) or "Fn::Join" not in value:
        return value
    return "".join(p if isinstance(p, str) else "<" + json.dumps(p) + ">" for p in value["Fn::Join"][1])


# The state machine --------------------------------------------------------------------------------------


def test_reconciliation_is_deployed_invoking_its_three_steps(env):
    name, stack, template = env
    machine = resources(template, "AWS::StepFunctions::StateMachine")[
        logical_id(stack, stack.reconciliation.state_machine)
    ]
    properties = machine["Properties"]
    assert properties["StateMachineName"] == f"PaymentReconciliationWorkflow-{name}"
    assert properties["StateMachineType"] == "STANDARD"
    assert properties["TracingConfiguration"] == {"Enabled": True}
    assert properties["LoggingConfiguration"]["IncludeExecutionData"] is False
    assert properties["EncryptionConfiguration"]["KmsKeyId"] == key_arn(stack, "storage")
    assert properties["DefinitionSubstitutions"] == {
        spec.placeholder: invoked_arn(stack, spec.step) for spec in RECONCILIATION.functions
    }
    outputs = template.to_json()["Outputs"]
    assert outputs["ReconciliationStateMachineArn"]["Value"] == ref(stack, stack.reconciliation.state_machine)
    assert outputs["ReportBucket"]["Value"] == ref(stack, stack.reports.bucket)


def test_its_distributed_map_starts_and_stops_its_own_child_executions_only(env):
    # Each window is listed in a child execution of this same state machine: its role starts them
    # (StartExecution on itself, by the ARN its fixed name makes), describes and stops them: the children
    # (execution:<name>/<map run>:<id>) only, never an execution someone else started, and never a redrive.
    name, stack, template = env
    assert has_distributed_map(RECONCILIATION)
    assert not any(has_distributed_map(w) for w in topology.WORKFLOWS if w != RECONCILIATION)
    statements = statements_of_role(template, logical_id(stack, stack.reconciliation.state_machine.role))
    found = by_sid(statements)
    own = f"arn:<{json.dumps({'Ref': 'AWS::Partition'})}>:states:{REGION}:{ACCOUNT}"
    start = found["StartChildExecutions"]
    assert as_list(start["Action"]) == ["states:StartExecution"]
    assert rendered(start["Resource"]) == f"{own}:stateMachine:PaymentReconciliationWorkflow-{name}"
    children = found["ChildExecutions"]
    assert sorted(as_list(children["Action"])) == ["states:DescribeExecution", "states:StopExecution"]
    assert rendered(children["Resource"]) == f"{own}:execution:PaymentReconciliationWorkflow-{name}/*"
    states = {a for s in statements for a in as_list(s["Action"]) if a.startswith("states:")}
    assert states == {"states:StartExecution", "states:DescribeExecution", "states:StopExecution"}
    # The children run under the state machine's own encryption context, which its role already holds.
    contexts = [
        s["Condition"]["StringEquals"][STATE_MACHINE_CONTEXT]
        for s in statements
        if STATE_MACHINE_CONTEXT in json.dumps(s.get("Condition", {}))
    ]
    assert [rendered(c) for c in contexts] == [f"{own}:stateMachine:PaymentReconciliationWorkflow-{name}"]


# The schedule -------------------------------------------------------------------------------------------


def test_the_schedule_reconciles_yesterday_at_three_in_the_morning_utc(env):
    name, stack, template = env
    schedule = resources(template, "AWS::Scheduler::Schedule")[
        logical_id(stack, stack.schedules.schedules[RECONCILIATION.name])
    ]
    properties = schedule["Properties"]
    assert properties["Name"] == f"PaymentReconciliationWorkflow-{name}"
    assert properties["GroupName"] == f"payment-workflow-{name}"
    assert properties["ScheduleExpression"] == "cron(0 3 * * ? *)"
    assert properties["ScheduleExpressionTimezone"] == "Etc/UTC"
    target = properties["Target"]
    assert target["Arn"] == ref(stack, stack.reconciliation.state_machine)
    assert target["RoleArn"] == get_arn(stack, stack.schedules.roles[RECONCILIATION.name])
    assert target["DeadLetterConfig"] == {"Arn": get_arn(stack, stack.schedules.failures)}
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 6 * 3600, "MaximumRetryAttempts": 20}
    # No Date in the input: PlanReconciliation takes yesterday (UTC).
    assert json.loads(target["Input"]) == SCHEDULED_INPUT == {}
    request = reconciliation_run.parse_request(json.loads(target["Input"]), today=dt.date(2026, 3, 2))
    assert request.day == dt.date(2026, 3, 1)
    # Its role starts this state machine and nothing else (the same shape as status sync's: test_status_sync_stack).
    role = stack.schedules.roles[RECONCILIATION.name]
    statements = statements_of_role(template, logical_id(stack, role))
    started = [s for s in statements if "states:StartExecution" in as_list(s["Action"])]
    assert [as_list(s["Resource"]) for s in started] == [[ref(stack, stack.reconciliation.state_machine)]]
    assert {a for s in statements for a in as_list(s["Action"])} == {
        "states:StartExecution",
        "sqs:SendMessage",
        "kms:GenerateDataKey",
        "kms:Decrypt",
    }


def test_only_its_schedule_role_starts_reconciliation(env):
    _, stack, template = env
    machine = ref(stack, stack.reconciliation.state_machine)
    starters = set()
    for policy, roles, statements in identity_policies(template):
        for statement in statements:
            if "states:StartExecution" in as_list(statement["Action"]) and machine in as_list(statement["Resource"]):
                starters |= roles or {policy}
    assert starters == {logical_id(stack, stack.schedules.roles[RECONCILIATION.name])}


# The report bucket --------------------------------------------------------------------------------------


def test_the_report_bucket_is_private_encrypted_versioned_logged_and_expires(env):
    name, stack, template = env
    bucket = resources(template, "AWS::S3::Bucket")[logical_id(stack, stack.reports.bucket)]
    properties = bucket["Properties"]
    assert properties["BucketName"] == f"payment-workflow-{name}-reports-{ACCOUNT}-{REGION}"
    assert properties["BucketEncryption"] == {
        "ServerSideEncryptionConfiguration": [
            {
                "BucketKeyEnabled": True,
                "ServerSideEncryptionByDefault": {
                    "KMSMasterKeyID": key_arn(stack, "storage"),
                    "SSEAlgorithm": "aws:kms",
                },
            }
        ]
    }
    assert properties["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
    )
    assert properties["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    assert properties["LoggingConfiguration"] == {
        "DestinationBucketName": ref(stack, stack.access_logs),
        "LogFilePrefix": "reports/",
    }
    [rule] = properties["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == REPORT_RETENTION_DAYS >= 365  # a year's audit, and the next
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": NONCURRENT_RETENTION_DAYS}
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert "ObjectLockConfiguration" not in properties  # reports, not evidence: a run again writes a new version
    assert bucket["DeletionPolicy"] == ("RetainExceptOnCreate" if name == "prod" else "Delete")


def test_the_report_bucket_is_ssl_only_and_written_by_the_two_reconciliation_steps_only(env):
    _, stack, template = env
    bucket_id = logical_id(stack, stack.reports.bucket)
    [policy] = [
        p["Properties"]
        for p in resources(template, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket_id}
    ]
    labels = role_labels(stack)
    statements = json.loads(json.dumps([statement_text(s, labels) for s in policy["PolicyDocument"]["Statement"]]))
    assert statements == [
        [
            None,
            "Deny",
            ["AWS", ["*"]],
            ["s3:*"],
            sorted([f"<{bucket_id}.Arn>", f"<{bucket_id}.Arn>/*"]),
            {"Bool": {"aws:SecureTransport": ["false"]}},
        ],
        [
            "WrittenByReconciliationOnly",
            "Deny",
            ["AWS", ["*"]],
            ["s3:PutObject"],
            [f"<{bucket_id}.Arn>/*"],
            {"ArnNotEquals": {"aws:PrincipalArn": sorted(["role:ListProcessorWindow", "role:MatchLedger"])}},
        ],
    ]


def test_no_identity_policy_but_the_two_steps_touches_the_report_bucket(env):
    _, stack, template = env
    bucket = logical_id(stack, stack.reports.bucket)
    touching = set()
    for name, roles, statements in identity_policies(template):
        for statement in statements:
            on_s3 = any(a.startswith("s3:") or a == "*" for a in as_list(statement["Action"]))
            on_bucket = bucket in json.dumps(statement["Resource"]) or "*" in as_list(statement["Resource"])
            if on_s3 and on_bucket:
                touching |= roles or {name}
    assert touching == {logical_id(stack, stack.steps.roles[step]) for step in (LIST, MATCH)}


def test_the_storage_key_opens_the_report_bucket_to_its_writers_through_s3_for_that_bucket_only(prod):
    stack, template, _ = prod
    bucket = f"arn:<AWS::Partition>:s3:::payment-workflow-prod-reports-{ACCOUNT}-{REGION}"
    for step in (LIST, MATCH):
        key = by_sid(role_statements(stack, template, step))["ReportBucketKey"]
        assert sorted(as_list(key["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey"]
        assert as_list(key["Resource"]) == [key_arn(stack, "storage")]
        assert (
            rendered(key["Condition"]["StringEquals"]["kms:ViaService"]) == 's3.<{"Ref": "AWS::Region"}>.amazonaws.com'
        )
        assert key["Condition"]["StringLike"]["kms:EncryptionContext:aws:s3:arn"] == [
            get_arn(stack, stack.reports.bucket),
            objects(stack, "*"),
        ]
    policy = template.to_json()["Resources"][logical_id(stack, stack.keys.storage_key)]["Properties"]["KeyPolicy"]
    labels = role_labels(stack)
    [writers] = [statement_text(s, labels) for s in policy["Statement"] if s["Sid"] == "ReconciliationReports"]
    assert writers[2] == ("AWS", ["role:ListProcessorWindow", "role:MatchLedger"])
    assert [rendered(v) for v in writers[5]["StringLike"]["kms:EncryptionContext:aws:s3:arn"]] == sorted(
        [bucket, f"{bucket}/*"]
    )


# The three functions ------------------------------------------------------------------------------------


def test_plan_reconciliation_holds_nothing(prod):
    stack, template, _ = prod
    spec = topology.function_by_step(PLAN)
    assert set(spec.environment("aws")) == {topology.POWERTOOLS_SERVICE_NAME, topology.POWERTOOLS_METRICS_NAMESPACE}
    sids = {s.get("Sid") for s in role_statements(stack, template, PLAN)}
    assert sids == {"OwnLogs", "NetworkInterfaces", "NetworkInterfacesDescribe", None}  # None: X-Ray


def test_list_processor_window_calls_converge_and_writes_its_windows_listings_only(prod):
    stack, template, _ = prod
    statements = by_sid(role_statements(stack, template, LIST))
    assert set(statements) == {
        "OwnLogs",
        "ConvergeCredentials",
        "ConvergeCredentialsKey",
        "WindowListingWrite",
        "ReportBucketKey",
        "NetworkInterfaces",
        "NetworkInterfacesDescribe",
    }
    write = statements["WindowListingWrite"]
    assert as_list(write["Action"]) == ["s3:PutObject"]
    assert as_list(write["Resource"]) == [objects(stack, "reconciliation/*/runs/*/windows/*")]
    # Nothing of the tables, the audit trail, the card-data or audit key: a listing is stored, never audited.
    named = json.dumps(list(statements.values()))
    for construct in (
        stack.tables.ledger,
        stack.tables.audit,
        stack.tables.vault,
        stack.keys.card_data_key,
        stack.keys.audit_key,
    ):
        assert logical_id(stack, construct) not in named
    spec = topology.function_by_step(LIST)
    assert spec.uses_processor
    function = resources(template, "AWS::Lambda::Function")[logical_id(stack, stack.steps.functions[LIST])]
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables[topology.REPORT_BUCKET_NAME] == ref(stack, stack.reports.bucket)
    assert variables[topology.CONVERGE_LISTING_LIMIT] == str(DEFAULT_LISTING_LIMIT)


def test_match_ledger_reads_the_listings_and_the_ledger_and_writes_reports_and_settlements(prod):
    stack, template, _ = prod
    statements = by_sid(role_statements(stack, template, MATCH))
    assert set(statements) == {
        "OwnLogs",
        "LedgerIndexRead",
        "LedgerRead",
        "LedgerLinkRead",
        "LedgerAppend",
        "LedgerTableKey",
        "WindowListingRead",
        "ReportWrite",
        "ReportBucketList",
        "ReportBucketKey",
        "NetworkInterfaces",
        "NetworkInterfacesDescribe",
    }
    assert as_list(statements["WindowListingRead"]["Action"]) == ["s3:GetObject"]
    assert as_list(statements["WindowListingRead"]["Resource"]) == [objects(stack, "reconciliation/*/runs/*/windows/*")]
    assert as_list(statements["ReportWrite"]["Action"]) == ["s3:PutObject"]
    assert as_list(statements["ReportWrite"]["Resource"]) == [objects(stack, "reconciliation/*/report.json")]
    # ListBucket, so that a window whose listing was never stored reads as missing (404), not refused (403).
    assert as_list(statements["ReportBucketList"]["Action"]) == ["s3:ListBucket"]
    assert as_list(statements["ReportBucketList"]["Resource"]) == [get_arn(stack, stack.reports.bucket)]
    index = statements["LedgerIndexRead"]
    assert rendered(index["Resource"]) == f"<{json.dumps(get_arn(stack, stack.tables.ledger))}>/index/EntriesByStatus"
    # The ledger: PutItem and reads only (its resource policy names it a writer: test_evidence).
    ledger_actions = {
        a
        for s in statements.values()
        if get_arn(stack, stack.tables.ledger) in as_list(s["Resource"])
        for a in as_list(s["Action"])
    }
    assert ledger_actions == {"dynamodb:Query", "dynamodb:GetItem", "dynamodb:PutItem"}
    link = by_sid(role_statements(stack, template, "LedgerPending"))["LedgerLinkRead"]
    assert statements["LedgerLinkRead"] == link  # entry n-1's chain attributes only
    # No Converge, no audit trail, no card data.
    named = json.dumps(list(statements.values()))
    for construct in (stack.converge_secret, stack.tables.audit, stack.tables.vault, stack.keys.card_data_key):
        assert logical_id(stack, construct) not in named


def test_the_iam_prefixes_are_where_the_code_writes_and_reads():
    # payments.reconciliation_run: a run's prefix, each window's listing, the day's report and the run's copy.
    planned = reconciliation_run.plan(
        reconciliation_run.parse_request({"Date": "2026-03-01"}, today=dt.date(2026, 3, 2)), run="exec-1"
    )
    listing = reconciliation_run.window_key(planned["Prefix"], 7)
    assert fnmatch.fnmatchcase(listing, WINDOW_LISTINGS)
    assert not fnmatch.fnmatchcase(listing, REPORTS)
    for report in (reconciliation_run.report_key("2026-03-01"), f"{planned['Prefix']}report.json"):
        assert fnmatch.fnmatchcase(report, REPORTS), report  # IAM's "*" spans "/", as fnmatch's does
        assert not fnmatch.fnmatchcase(report, WINDOW_LISTINGS), report


def test_match_ledger_outlives_nothing_its_state_allows(prod):
    # Its state's TimeoutSeconds must outlast the Lambda's timeout and its init, or Step Functions retries an
    # attempt still at work.
    stack, template, _ = prod
    states = json.loads((REPO_ROOT / RECONCILIATION.asl_path).read_text())["States"]
    function = resources(template, "AWS::Lambda::Function")[logical_id(stack, stack.steps.functions[MATCH])]
    budget = topology.PROCESSOR_TIME_BUDGET
    assert function["Properties"]["Timeout"] + budget.lambda_init_seconds <= states[MATCH]["TimeoutSeconds"]
    assert function["Properties"]["Timeout"] <= 900  # Lambda's most


# What pages ---------------------------------------------------------------------------------------------


def test_any_mismatch_a_failed_or_timed_out_run_or_a_day_without_a_run_pages(env):
    _, stack, template = env
    alarms = [a["Properties"] for a in resources(template, "AWS::CloudWatch::Alarm").values()]
    [topic] = resources(template, "AWS::SNS::Topic")
    # The metric MatchLedger emits: every mismatch and every window not listed in full (lambdas/reconciliation).
    handler = (REPO_ROOT / "lambdas" / "reconciliation" / "handler.py").read_text()
    assert "name=topology.RECONCILIATION_ALARM_METRIC" in handler
    [mismatches] = [a for a in alarms if a.get("MetricName") == topology.RECONCILIATION_ALARM_METRIC]
    assert mismatches["Namespace"] == topology.METRICS_NAMESPACE
    assert mismatches["Dimensions"] == [{"Name": "service", "Value": topology.SERVICE_NAME}]
    assert (mismatches["Statistic"], mismatches["Threshold"]) == ("Sum", 1)
    assert mismatches["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"  # any at all: > 0
    machine = {"Name": "StateMachineArn", "Value": ref(stack, stack.reconciliation.state_machine)}
    on_machine = {a["MetricName"]: a for a in alarms if machine in a.get("Dimensions", [])}
    assert sorted(on_machine) == ["ExecutionsFailed", "ExecutionsStarted", "ExecutionsTimedOut"]
    # No run started in a day: the schedule is disabled or cannot start it. Missing data is silence.
    silent = on_machine["ExecutionsStarted"]
    assert (silent["ComparisonOperator"], silent["Threshold"], silent["Statistic"], silent["Period"]) == (
        "LessThanThreshold",
        1,
        "Sum",
        86400,
    )
    assert silent["TreatMissingData"] == "breaching"
    for alarm in [mismatches, *on_machine.values()]:
        assert alarm["AlarmActions"] == [{"Ref": topic}]
