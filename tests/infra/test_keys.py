"""The three keys' policies, statement by statement: who may use each key, for what, under which condition.

KEY_POLICIES is the whole policy of each key in prod, in order; a statement CDK or anyone else adds, a
principal added to a statement, a condition dropped, each fails test_each_key_policy_is_exactly_its_table.
The rules every statement keeps (no account root, administrators who cannot use, service principals
only under conditions) are checked again on their own, for dev and prod, so that a change to the table
cannot quietly break them. docs/keys-and-access.md explains each statement.
"""

import fnmatch
import json
from pathlib import Path

import pytest

from infra import config as environments
from infra import names
from infra.keys import ADMINISTRATION, CLOUDWATCH_LOGS_ACTIONS, TABLE_CREATION_ACTIONS, TABLE_KEY_ACTIONS
from payments import crypto, topology
from tests.infra.policies import as_list, role_labels, statement_text, text
from tests.infra.test_iam_resources import identity_policies
from tests.infra.test_stack import logical_id, resources

ACCOUNT, REGION = "111111111111", "eu-west-1"  # tests/infra/conftest.py
DEPLOYER = f"arn:<AWS::Partition>:iam::{ACCOUNT}:role/cdk-hnb659fds-cfn-exec-role-{ACCOUNT}-{REGION}"
KEY_ADMINISTRATOR = f"arn:<AWS::Partition>:iam::{ACCOUNT}:role/PaymentKeyAdministrator"  # cdk.json, prod
UPSTREAM = f"arn:<AWS::Partition>:iam::{ACCOUNT}:role/PaymentUpstream"
OPERATOR = f"arn:<AWS::Partition>:iam::{ACCOUNT}:role/PaymentOperator"
STATE_MACHINE = f"arn:<AWS::Partition>:states:{REGION}:{ACCOUNT}:stateMachine:PaymentWorkflow-prod"
OPERATION_STATE_MACHINE = f"arn:<AWS::Partition>:states:{REGION}:{ACCOUNT}:stateMachine:PaymentOperationWorkflow-prod"
STATUS_SYNC_STATE_MACHINE = f"arn:<AWS::Partition>:states:{REGION}:{ACCOUNT}:stateMachine:PaymentStatusSync-prod"
RECONCILIATION_STATE_MACHINE = (
    f"arn:<AWS::Partition>:states:{REGION}:{ACCOUNT}:stateMachine:PaymentReconciliationWorkflow-prod"
)
SECRET = f"arn:<AWS::Partition>:secretsmanager:{REGION}:{ACCOUNT}:secret:payment-workflow/prod/converge-??????"
TRAIL = f"arn:<AWS::Partition>:cloudtrail:{REGION}:{ACCOUNT}:trail/payment-workflow-prod"
ARCHIVE = f"arn:<AWS::Partition>:s3:::payment-workflow-prod-archive-{ACCOUNT}-{REGION}"
EVENT_BUS = f"arn:<AWS::Partition>:events:{REGION}:{ACCOUNT}:event-bus/payments-prod"
EVENT_FAILURES = f"arn:<AWS::Partition>:sqs:{REGION}:{ACCOUNT}:PaymentLedgerEventsFailures-prod"
SCHEDULE_FAILURES = f"arn:<AWS::Partition>:sqs:{REGION}:{ACCOUNT}:PaymentScheduleFailures-prod"
REPORTS = f"arn:<AWS::Partition>:s3:::payment-workflow-prod-reports-{ACCOUNT}-{REGION}"
LOGS_OF_THE_ACCOUNT = f"arn:<AWS::Partition>:logs:{REGION}:{ACCOUNT}:*"
USE = ("kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey",
       "kms:GenerateDataKeyWithoutPlaintext", "kms:GenerateDataKeyPair", "kms:CreateGrant")  # fmt: skip
FUNCTIONS = sorted(f"role:{spec.step}" for spec in topology.ALL_FUNCTIONS)

# Markers the table uses where the value comes from the template: every log group encrypted with the storage
# key, and every function whose environment is (its ARN, from its name).
EVERY_LOG_GROUP = "<every log group encrypted with the storage key>"
EVERY_FUNCTION = "<every function whose environment the storage key encrypts>"


def allow(sid, principals, actions, conditions=None, kind="AWS"):
    conditions = {
        operator: {key: sorted(as_list(value)) for key, value in values.items()}
        for operator, values in (conditions or {}).items()
    }
    return (sid, "Allow", (kind, sorted(as_list(principals))), sorted(actions), ["*"], conditions)


def purpose(value):
    return {"StringEquals": {"kms:EncryptionContext:purpose": value}}


def via(service, **context):
    return {"StringEquals": {"kms:ViaService": f"{service}.<AWS::Region>.amazonaws.com", **context}}


def via_dynamodb(table):
    return via("dynamodb", **{"kms:EncryptionContext:aws:dynamodb:tableName": table})


ADMINISTRATORS = allow("KeyAdministration", [DEPLOYER, KEY_ADMINISTRATOR], ADMINISTRATION)
SECRET_CONTEXT = {
    **via("secretsmanager"),
    "StringLike": {"kms:EncryptionContext:SecretARN": SECRET},
}
MACHINE_CONTEXT = {"StringEquals": {"kms:EncryptionContext:aws:states:stateMachineArn": STATE_MACHINE}}
OPERATION_MACHINE_CONTEXT = {
    "StringEquals": {"kms:EncryptionContext:aws:states:stateMachineArn": OPERATION_STATE_MACHINE}
}
STATUS_SYNC_MACHINE_CONTEXT = {
    "StringEquals": {"kms:EncryptionContext:aws:states:stateMachineArn": STATUS_SYNC_STATE_MACHINE}
}
RECONCILIATION_MACHINE_CONTEXT = {
    "StringEquals": {"kms:EncryptionContext:aws:states:stateMachineArn": RECONCILIATION_STATE_MACHINE}
}
BOTH_MACHINES_CONTEXT = {
    "StringEquals": {"kms:EncryptionContext:aws:states:stateMachineArn": [STATE_MACHINE, OPERATION_STATE_MACHINE]}
}
EVERY_MACHINE_CONTEXT = {
    "StringEquals": {
        "kms:EncryptionContext:aws:states:stateMachineArn": [
            STATE_MACHINE,
            OPERATION_STATE_MACHINE,
            STATUS_SYNC_STATE_MACHINE,
            RECONCILIATION_STATE_MACHINE,
        ]
    }
}
LOG_DELIVERY_CONTEXT = {"StringEquals": {"kms:EncryptionContext:SourceArn": LOGS_OF_THE_ACCOUNT}}
ARCHIVE_CONTEXT = {**via("s3"), "StringLike": {"kms:EncryptionContext:aws:s3:arn": [ARCHIVE, f"{ARCHIVE}/*"]}}
REPORTS_CONTEXT = {**via("s3"), "StringLike": {"kms:EncryptionContext:aws:s3:arn": [REPORTS, f"{REPORTS}/*"]}}

KEY_POLICIES = {
    "card_data": [
        ADMINISTRATORS,
        allow("CardIntakeSealing", "role:Intake", ["kms:GenerateDataKey"], purpose("card-intake")),
        allow("CardIntakeOpening", ["role:Tokenize", "role:CallProcessor"], ["kms:Decrypt"], purpose("card-intake")),
        allow("SecureTokenSealing", "role:Tokenize", ["kms:GenerateDataKey"], purpose("secure-token")),
        allow("SecureTokenOpening", "role:CallProcessor", ["kms:Decrypt"], purpose("secure-token")),
    ],
    "audit": [
        ADMINISTRATORS,
        # The functions that call the processor and audit their calls seal the payloads (reconciliation's listing
        # is audited nowhere); the purpose is the condition, so an operation's trail (<TransactionID>/<OperationID>
        # as the context's transaction_id) is admitted.
        allow(
            "AuditSealing",
            ["role:CallProcessor", "role:CallOperationProcessor", "role:ResolveUnresolved"],
            ["kms:GenerateDataKey"],
            purpose("audit"),
        ),
        allow("AuditOpening", "role:AuditReader", ["kms:Decrypt"], purpose("audit")),
    ],
    "storage": [
        ADMINISTRATORS,
        allow(
            "LedgerTable",
            [
                "role:LedgerInitiated",
                "role:LedgerPending",
                "role:LedgerSuccess",
                "role:LedgerFailed",
                "role:CallProcessor",
                "role:AdmitOperation",
                "role:OperationPending",
                "role:OperationSuccess",
                "role:OperationFailed",
                "role:CallOperationProcessor",
                # Status sync and reconciliation: the index, the resolutions, the PAYMENT-SETTLED facts.
                "role:FindUnresolved",
                "role:ResolveUnresolved",
                "role:MatchLedger",
            ],
            TABLE_KEY_ACTIONS,
            via_dynamodb("PaymentLedger-prod"),
        ),
        allow(
            "AuditTable",
            [
                "role:CallProcessor",
                "role:Audit",
                "role:CallOperationProcessor",
                "role:OperationFailed",
                "role:ResolveUnresolved",
            ],
            TABLE_KEY_ACTIONS,
            via_dynamodb("PaymentAuditTrail-prod"),
        ),
        allow(
            "AuditTableReview",
            "role:AuditReader",
            ["kms:Decrypt", "kms:DescribeKey"],
            via_dynamodb("PaymentAuditTrail-prod"),
        ),
        allow(
            "CardVaultTable",
            [
                "role:Intake",
                "role:Tokenize",
                "role:CallProcessor",
                "role:LedgerSuccess",
                "role:LedgerFailed",
                "role:StateMachine",
            ],
            TABLE_KEY_ACTIONS,
            via_dynamodb("CardVault-prod"),
        ),
        # LedgerEvents' idempotency records, and nobody else's use of that table.
        allow("IdempotencyTable", "role:LedgerEvents", TABLE_KEY_ACTIONS, via_dynamodb("PaymentEventsPublished-prod")),
        allow("TableCreation", DEPLOYER, TABLE_CREATION_ACTIONS, via("dynamodb")),
        allow(
            "PaymentLedgerStreamArchiving",
            "role:LedgerStreamReader",
            ["kms:Decrypt"],
            {"StringEquals": {"kms:EncryptionContext:aws:dynamodb:tableName": "PaymentLedger-prod"}},
        ),
        allow(
            "PaymentAuditTrailStreamArchiving",
            "role:AuditStreamReader",
            ["kms:Decrypt"],
            {"StringEquals": {"kms:EncryptionContext:aws:dynamodb:tableName": "PaymentAuditTrail-prod"}},
        ),
        # LedgerEvents' event source mapping reads the ledger's stream (in every environment).
        allow(
            "PaymentLedgerStreamEvents",
            "role:LedgerEvents",
            ["kms:Decrypt"],
            {"StringEquals": {"kms:EncryptionContext:aws:dynamodb:tableName": "PaymentLedger-prod"}},
        ),
        allow(
            "ConvergeCredentialsReading",
            ["role:CallProcessor", "role:CallOperationProcessor", "role:ResolveUnresolved", "role:ListProcessorWindow"],
            ["kms:Decrypt"],
            SECRET_CONTEXT,
        ),
        allow("ConvergeCredentialsCreation", DEPLOYER, ["kms:GenerateDataKey", "kms:Decrypt"], SECRET_CONTEXT),
        allow("ConvergeCredentialsRotation", OPERATOR, ["kms:GenerateDataKey"], SECRET_CONTEXT),
        allow("StateMachineExecutions", "role:StateMachine", ["kms:Decrypt", "kms:GenerateDataKey"], MACHINE_CONTEXT),
        allow(
            "OperationStateMachineExecutions",
            "role:OperationStateMachine",
            ["kms:Decrypt", "kms:GenerateDataKey"],
            OPERATION_MACHINE_CONTEXT,
        ),
        allow(
            "StatusSyncStateMachineExecutions",
            "role:StatusSyncStateMachine",
            ["kms:Decrypt", "kms:GenerateDataKey"],
            STATUS_SYNC_MACHINE_CONTEXT,
        ),
        allow(
            "ReconciliationStateMachineExecutions",
            "role:ReconciliationStateMachine",
            ["kms:Decrypt", "kms:GenerateDataKey"],
            RECONCILIATION_MACHINE_CONTEXT,
        ),
        allow(
            "StateMachineLogDelivery",
            [
                "role:StateMachine",
                "role:OperationStateMachine",
                "role:StatusSyncStateMachine",
                "role:ReconciliationStateMachine",
            ],
            ["kms:GenerateDataKey"],
            LOG_DELIVERY_CONTEXT,
        ),
        allow("LogDeliveryDecryption", "delivery.logs.amazonaws.com", ["kms:Decrypt"], LOG_DELIVERY_CONTEXT, "Service"),
        allow(
            "PaymentStartAndRead", ["role:Intake", UPSTREAM], ["kms:Decrypt", "kms:GenerateDataKey"], MACHINE_CONTEXT
        ),
        # Upstream services start captures, voids and refunds directly (the intake starts payments only).
        allow("OperationStartAndRead", UPSTREAM, ["kms:Decrypt", "kms:GenerateDataKey"], OPERATION_MACHINE_CONTEXT),
        allow("PaymentRead", OPERATOR, ["kms:Decrypt"], MACHINE_CONTEXT),
        allow("OperationRead", OPERATOR, ["kms:Decrypt"], OPERATION_MACHINE_CONTEXT),
        # EventBridge Scheduler starts the scheduled workflows, each with its schedule's role; operators may start
        # one too (a sync with bounds of their own, a day reconciled again) and read every run.
        allow(
            "StatusSyncStartAndRead",
            ["role:StatusSyncStarter", OPERATOR],
            ["kms:Decrypt", "kms:GenerateDataKey"],
            STATUS_SYNC_MACHINE_CONTEXT,
        ),
        allow(
            "ReconciliationStartAndRead",
            ["role:ReconciliationStarter", OPERATOR],
            ["kms:Decrypt", "kms:GenerateDataKey"],
            RECONCILIATION_MACHINE_CONTEXT,
        ),
        allow("StateMachineDeployment", DEPLOYER, ["kms:Decrypt", "kms:GenerateDataKey"], EVERY_MACHINE_CONTEXT),
        allow(
            "FunctionEnvironments",
            FUNCTIONS,
            ["kms:Decrypt"],
            {"StringEquals": {"kms:EncryptionContext:aws:lambda:FunctionArn": EVERY_FUNCTION}},
        ),
        allow(
            "FunctionEnvironmentDeployment", DEPLOYER, ["kms:Encrypt", "kms:Decrypt", "kms:CreateGrant"], via("lambda")
        ),
        allow(
            "CloudWatchLogs",
            "logs.<AWS::Region>.amazonaws.com",
            CLOUDWATCH_LOGS_ACTIONS,
            {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": EVERY_LOG_GROUP}},
            "Service",
        ),
        allow(
            "CloudWatchAlarms",
            "cloudwatch.amazonaws.com",
            ["kms:Decrypt", "kms:GenerateDataKey*"],
            {"StringEquals": {"aws:SourceAccount": "<AWS::AccountId>"}},
            "Service",
        ),
        allow(
            "CloudTrailEncryption",
            "cloudtrail.amazonaws.com",
            ["kms:GenerateDataKey*"],
            {
                "StringEquals": {"aws:SourceArn": TRAIL},
                "StringLike": {
                    "kms:EncryptionContext:aws:cloudtrail:arn": f"arn:<AWS::Partition>:cloudtrail:*:{ACCOUNT}:trail/"
                    "payment-workflow-prod"
                },
            },
            "Service",
        ),
        allow(
            "CloudTrailKeyDescription",
            "cloudtrail.amazonaws.com",
            ["kms:DescribeKey"],
            {"StringEquals": {"aws:SourceArn": TRAIL}},
            "Service",
        ),
        allow(
            "TrailReview",
            "role:AuditReader",
            ["kms:Decrypt"],
            {"StringEquals": {"kms:EncryptionContext:aws:cloudtrail:arn": TRAIL}},
        ),
        allow(
            "ArchiveDelivery",
            ["role:LedgerDelivery", "role:AuditDelivery"],
            ["kms:GenerateDataKey", "kms:Decrypt"],
            ARCHIVE_CONTEXT,
        ),
        allow("ArchiveReview", "role:AuditReader", ["kms:Decrypt"], ARCHIVE_CONTEXT),
        allow(
            "ArchiveBufferEncryption",
            DEPLOYER,
            ["kms:CreateGrant"],
            {**via("firehose"), "Bool": {"kms:GrantIsForAWSResource": "true"}},
        ),
        # EventBridge encrypts the payments bus's events (and its rules) with the key, for that bus only; nobody
        # who puts or receives an event uses the key.
        allow(
            "EventBusEncryption",
            "events.amazonaws.com",
            ["kms:GenerateDataKey", "kms:Decrypt"],
            {
                "StringEquals": {
                    "aws:SourceAccount": "<AWS::AccountId>",
                    "kms:EncryptionContext:aws:events:event-bus:arn": EVENT_BUS,
                }
            },
            "Service",
        ),
        allow(
            "EventBusKeyDescription",
            "events.amazonaws.com",
            ["kms:DescribeKey"],
            {"StringEquals": {"aws:SourceAccount": "<AWS::AccountId>"}},
            "Service",
        ),
        # Lambda puts a batch LedgerEvents gave up on into the failure queue with its role; operators read it.
        allow(
            "EventFailuresDelivery",
            "role:LedgerEvents",
            ["kms:GenerateDataKey", "kms:Decrypt"],
            via("sqs", **{"kms:EncryptionContext:aws:sqs:arn": EVENT_FAILURES}),
        ),
        allow(
            "EventFailuresReview",
            OPERATOR,
            ["kms:Decrypt"],
            via("sqs", **{"kms:EncryptionContext:aws:sqs:arn": EVENT_FAILURES}),
        ),
        # Reconciliation's report bucket: its two writing steps through S3, operators reading a report.
        allow(
            "ReconciliationReports",
            ["role:ListProcessorWindow", "role:MatchLedger"],
            ["kms:GenerateDataKey", "kms:Decrypt"],
            REPORTS_CONTEXT,
        ),
        allow("ReconciliationReportReview", OPERATOR, ["kms:Decrypt"], REPORTS_CONTEXT),
        # The schedules' dead-letter queue: the scheduler puts a start it gave up on there with the schedule's role.
        allow(
            "ScheduleFailuresDelivery",
            ["role:StatusSyncStarter", "role:ReconciliationStarter"],
            ["kms:GenerateDataKey", "kms:Decrypt"],
            via("sqs", **{"kms:EncryptionContext:aws:sqs:arn": SCHEDULE_FAILURES}),
        ),
        allow(
            "ScheduleFailuresReview",
            OPERATOR,
            ["kms:Decrypt"],
            via("sqs", **{"kms:EncryptionContext:aws:sqs:arn": SCHEDULE_FAILURES}),
        ),
    ],
}
# Dev: no archive, no administrators, upstream services or operators named in cdk.json (the deployment role
# administers the keys), so the statements for them are not there; everything else as in prod.
DEV_WITHOUT = {
    "PaymentLedgerStreamArchiving",
    "PaymentAuditTrailStreamArchiving",
    "ConvergeCredentialsRotation",
    "OperationStartAndRead",
    "PaymentRead",
    "OperationRead",
    "ArchiveDelivery",
    "ArchiveReview",
    "ArchiveBufferEncryption",
    "EventFailuresReview",
    "ReconciliationReportReview",
    "ScheduleFailuresReview",
}


def key_policy(stack, template, key):
    return template.to_json()["Resources"][logical_id(stack, stack.keys.keys[key])]["Properties"]["KeyPolicy"]


def policy_text(stack, template, key):
    labels = role_labels(stack)
    return [statement_text(s, labels) for s in key_policy(stack, template, key)["Statement"]]


def from_the_template(stack, template, expected):
    """The table's statement, with EVERY_LOG_GROUP and EVERY_FUNCTION replaced by what the template holds."""
    sid, effect, principal, actions, resource, conditions = expected
    if sid == "CloudWatchLogs":
        storage = {"Fn::GetAtt": [logical_id(stack, stack.keys.storage_key), "Arn"]}
        groups = [g["Properties"] for g in resources(template, "AWS::Logs::LogGroup").values()]
        encrypted = [g["LogGroupName"] for g in groups if g.get("KmsKeyId") == storage]
        assert len(encrypted) == len(groups)  # every log group of the stack
        arns = sorted(f"arn:<AWS::Partition>:logs:{REGION}:{ACCOUNT}:log-group:{name}" for name in encrypted)
        conditions = {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": arns}}
    if sid == "FunctionEnvironments":
        functions = [f["Properties"] for f in resources(template, "AWS::Lambda::Function").values()]
        assert len(functions) == len(topology.ALL_FUNCTIONS)
        assert all("KmsKeyArn" in f for f in functions)  # each one's environment encrypted with the storage key
        arns = sorted(f"arn:<AWS::Partition>:lambda:{REGION}:{ACCOUNT}:function:{f['FunctionName']}" for f in functions)
        conditions = {"StringEquals": {"kms:EncryptionContext:aws:lambda:FunctionArn": arns}}
    return (sid, effect, principal, actions, resource, conditions)


def dev_statement(statement):
    """A prod statement as dev has it: its names end in -dev, its administrators are the deployment role."""
    sid, effect, (kind, principals), actions, resource, conditions = json.loads(
        json.dumps(statement).replace("-prod", "-dev").replace("/prod/", "/dev/")
    )
    principals = [p for p in principals if p not in (KEY_ADMINISTRATOR, UPSTREAM, OPERATOR)]
    return (sid, effect, (kind, principals), actions, resource, conditions)


def normal(statements):
    return json.loads(json.dumps(statements))


@pytest.mark.parametrize("key", sorted(KEY_POLICIES))
def test_each_key_policy_is_exactly_its_table(prod, key):
    stack, template, _ = prod
    expected = [from_the_template(stack, template, s) for s in KEY_POLICIES[key]]
    actual = policy_text(stack, template, key)
    assert [s[0] for s in actual] == [s[0] for s in expected]  # the same statements, in the same order
    for found, wanted in zip(actual, expected, strict=True):
        assert found == wanted, found[0]


@pytest.mark.parametrize("key", sorted(KEY_POLICIES))
def test_dev_has_the_same_policies_without_the_archive_and_the_people_cdk_json_names_for_prod(dev, key):
    stack, template, _ = dev
    # Dev's functions and log groups are its own (no VPC, no archive): EVERY_* come from its template.
    expected = [
        from_the_template(stack, template, dev_statement(s)) for s in KEY_POLICIES[key] if s[0] not in DEV_WITHOUT
    ]
    assert normal(policy_text(stack, template, key)) == normal(expected)


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_no_key_trusts_the_account_or_anyone_and_none_grants_kms_star(env, dev, prod):
    stack, template, _ = {"dev": dev, "prod": prod}[env]
    for key in KEY_POLICIES:
        for statement in key_policy(stack, template, key)["Statement"]:
            assert statement["Effect"] == "Allow"  # nothing to undo: every grant is named
            assert "kms:*" not in as_list(statement["Action"]) and "NotAction" not in statement
            principal = statement["Principal"]
            assert principal != "*" and principal.get("AWS") != "*", statement
            for arn in as_list(text(principal.get("AWS", []), {})):
                assert not arn.endswith(":root"), statement


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_administrators_manage_the_keys_and_cannot_use_them(env, dev, prod):
    stack, template, _ = {"dev": dev, "prod": prod}[env]
    administrators = [DEPLOYER] + ([KEY_ADMINISTRATOR] if env == "prod" else [])
    for key in KEY_POLICIES:
        [administration] = [s for s in policy_text(stack, template, key) if s[0] == "KeyAdministration"]
        assert administration[2] == ("AWS", sorted(administrators))
        granted = administration[3]
        # No pattern of theirs matches a use of the key (CreateGrant is use: a grant gives Decrypt unseen).
        assert not [(g, u) for g in granted for u in USE if fnmatch.fnmatchcase(u, g)], key
        # ...and they can do what a key administrator does, CloudFormation included: change the policy,
        # rotation, aliases, tags, scheduling deletion.
        for action in ("kms:PutKeyPolicy", "kms:EnableKeyRotation", "kms:CreateAlias", "kms:TagResource",
                       "kms:ScheduleKeyDeletion", "kms:DescribeKey", "kms:GetKeyPolicy"):  # fmt: skip
            assert any(fnmatch.fnmatchcase(action, g) for g in granted), (key, action)


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_a_service_principal_is_always_bound_to_this_stacks_resources(env, dev, prod):
    # A service principal without a condition would let that service use the key for anyone's resource.
    stack, template, _ = {"dev": dev, "prod": prod}[env]
    bindings = ("aws:SourceArn", "aws:SourceAccount", "kms:EncryptionContext:")
    for key in KEY_POLICIES:
        for sid, _, (kind, _), actions, _, conditions in policy_text(stack, template, key):
            if kind != "Service":
                continue
            keys = [k for values in conditions.values() for k in values]
            assert any(k.startswith(bindings) for k in keys), sid
            if "kms:Decrypt*" in actions or "kms:Decrypt" in actions:
                assert any(k.startswith(("kms:EncryptionContext:", "aws:SourceAccount")) for k in keys), sid


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_only_the_audit_reader_may_decrypt_audit_payloads(env, dev, prod):
    stack, template, _ = {"dev": dev, "prod": prod}[env]
    # The key policy: Decrypt of the audit key for the AuditReader alone, under purpose "audit".
    decrypting = [
        s for s in policy_text(stack, template, "audit") if any(fnmatch.fnmatchcase("kms:Decrypt", a) for a in s[3])
    ]
    assert [(s[2], s[5]) for s in decrypting] == [(("AWS", ["role:AuditReader"]), purpose_text(crypto.PURPOSE_AUDIT))]
    # Identity policies: no role but the AuditReader's, no managed policy, holds kms:Decrypt on the audit key.
    audit_key = {"Fn::GetAtt": [logical_id(stack, stack.keys.audit_key), "Arn"]}
    holders = set()
    for name, roles, statements in identity_policies(template):
        for statement in statements:
            decrypts = any(fnmatch.fnmatchcase("kms:Decrypt", a) for a in as_list(statement["Action"]))
            if decrypts and (audit_key in as_list(statement["Resource"]) or "*" in as_list(statement["Resource"])):
                holders |= roles or {name}
    assert holders == {logical_id(stack, stack.audit_reader.role)}
    # Every workflow role: CallProcessor and CallOperationProcessor may only seal (GenerateDataKey, purpose "audit").
    workflow_roles = {logical_id(stack, r) for r in stack.steps.roles.values()}
    workflow_roles |= {logical_id(stack, w.state_machine.role) for w in stack.workflows.values()}
    for name, roles, statements in identity_policies(template):
        if roles & workflow_roles:
            on_audit_key = [s for s in statements if audit_key in as_list(s["Resource"])]
            for statement in on_audit_key:
                assert as_list(statement["Action"]) == ["kms:GenerateDataKey"], (name, statement)


def purpose_text(value):
    return {"StringEquals": {"kms:EncryptionContext:purpose": [value]}}


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_each_key_rotates_has_its_alias_and_is_kept_in_prod(env, dev, prod):
    stack, template, _ = {"dev": dev, "prod": prod}[env]
    aliases = {a["Properties"]["TargetKeyId"]["Fn::GetAtt"][0]: a["Properties"]["AliasName"]
               for a in resources(template, "AWS::KMS::Alias").values()}  # fmt: skip
    for name, alias in (("card_data", "card-data"), ("audit", "audit"), ("storage", "storage")):
        key_id = logical_id(stack, stack.keys.keys[name])
        key = resources(template, "AWS::KMS::Key")[key_id]
        assert key["Properties"]["EnableKeyRotation"] is True
        assert aliases[key_id] == f"alias/payment-workflow-{alias}-{env}"
        assert key["DeletionPolicy"] == ("RetainExceptOnCreate" if env == "prod" else "Delete")


def test_the_storage_key_policy_must_name_every_log_group_encrypted_with_it(tmp_path):
    # A log group added after the policies are written would have a key CloudWatch Logs may not use:
    # synthesis refuses it.
    from aws_cdk import aws_logs as logs

    from tests.infra.conftest import synthesize

    app, stack = synthesize("dev", tmp_path)
    logs.LogGroup(stack, "LateLogs", log_group_name="/payment-workflow/dev/late", encryption_key=stack.keys.storage)
    with pytest.raises(RuntimeError, match="does not name the log group /payment-workflow/dev/late"):
        app.synth()


@pytest.mark.parametrize(
    ("entries", "accepted"),
    [
        (["role/PaymentKeyAdministrator", "user/payment-auditor"], True),
        (["arn:aws:iam::210987654321:role/path/Someone"], True),
        ([], True),
        (["PaymentKeyAdministrator"], False),  # neither role/ nor user/
        (["arn:aws:iam::210987654321:root"], False),  # the account: never a named principal
        (["role/*"], False),
        ("role/PaymentKeyAdministrator", False),  # a list, not a string
    ],
)
def test_cdk_json_principal_lists_name_roles_or_users_only(entries, accepted):
    configured = json.loads((Path(__file__).resolve().parents[2] / "cdk.json").read_text())["context"]
    environments_ = configured[environments.CONTEXT_KEY]
    for field in environments.PRINCIPAL_LISTS:
        prod = {**environments_["prod"], field: entries}
        if accepted:
            assert getattr(environments.load("prod", {**environments_, "prod": prod}), field) == tuple(entries)
        else:
            with pytest.raises(SystemExit, match=field):
                environments.load("prod", {**environments_, "prod": prod})


def test_a_principal_path_is_a_role_or_user_of_the_stacks_own_account(prod):
    stack, _, _ = prod
    [arn] = names.principal_arns(stack, ("role/PaymentOperator",))
    assert stack.resolve(arn) == {
        "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":iam::{ACCOUNT}:role/PaymentOperator"]]
    }


OPERATION_ROLES = {
    f"role:{step}" for step in topology.OPERATION_WORKFLOW.steps if step not in topology.PAYMENT_WORKFLOW.steps
} | {"role:OperationStateMachine"}


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_no_role_of_the_operation_workflow_may_use_the_card_data_key(env, dev, prod):
    # A capture, void or refund names the payment's transaction at the processor: it never needs the card.
    stack, template, _ = {"dev": dev, "prod": prod}[env]
    assert {
        "role:AdmitOperation",
        "role:OperationPending",
        "role:CallOperationProcessor",
        "role:OperationSuccess",
        "role:OperationFailed",
        "role:OperationStateMachine",
    } == OPERATION_ROLES
    named = {p for s in policy_text(stack, template, "card_data") for p in s[2][1]}
    assert not named & OPERATION_ROLES
    # ...nor may their own policies name it.
    card_data_key = {"Fn::GetAtt": [logical_id(stack, stack.keys.card_data_key), "Arn"]}
    labels = role_labels(stack)
    for _, roles, statements in identity_policies(template):
        if {labels.get(r) for r in roles} & OPERATION_ROLES:
            assert not [s for s in statements if card_data_key in as_list(s["Resource"])], roles


def test_the_audit_key_admits_an_operations_trail_as_the_payloads_transaction_id(prod):
    # CallOperationProcessor seals each call's payloads with transaction_id = <TransactionID>/<OperationID>
    # (payments.operation_state.OperationFacts.audit_partition): no condition of the key policy or of its
    # role may bind transaction_id, only the purpose.
    from payments.operation_state import OperationFacts

    stack, template, _ = prod
    facts = OperationFacts(
        Operation="capture",
        OperationID="capture-1",
        TransactionID="order-8812-1",
        Amount="25.00",
        Currency="USD",
        ProcessorID="elavon",
        ProcessorTransactionID="txn-1",
    )
    context = crypto.encryption_context(facts.audit_partition, crypto.PURPOSE_AUDIT)
    assert context["transaction_id"] == "order-8812-1/capture-1"

    def admits(conditions):
        for operator, values in conditions.items():
            for key, allowed in values.items():
                assert operator == "StringEquals" and key.startswith("kms:EncryptionContext:"), (operator, key)
                if context.get(key.removeprefix("kms:EncryptionContext:")) not in as_list(allowed):
                    return False
        return True

    [sealing] = [s for s in key_policy(stack, template, "audit")["Statement"] if s["Sid"] == "AuditSealing"]
    assert admits(sealing["Condition"])
    role_id = logical_id(stack, stack.steps.roles["CallOperationProcessor"])
    [own] = [
        s
        for _, roles, statements in identity_policies(template)
        if role_id in roles
        for s in statements
        if s.get("Sid") == "AuditEncryption"
    ]
    assert admits(own["Condition"])
