"""Tamper evidence: the tables' resource policies, the immutable archive, the trail, the AuditReader.

Every statement of every table policy, bucket policy and evidence role is written out below; the
template must hold exactly these (docs/keys-and-access.md explains each).
"""

import json

import pytest
from aws_cdk import CfnElement

from infra.access import MFA_CONDITIONS
from payments import topology
from tests.infra.policies import as_list, role_labels, statement_text
from tests.infra.test_iam_resources import identity_policies
from tests.infra.test_keys import ACCOUNT, DEPLOYER, REGION, TRAIL
from tests.infra.test_stack import resources

CHANGES = [
    "dynamodb:BatchWriteItem",
    "dynamodb:DeleteItem",
    "dynamodb:PartiQLDelete",
    "dynamodb:PartiQLInsert",
    "dynamodb:PartiQLUpdate",
    "dynamodb:UpdateItem",
]
# The payment's four ledger steps and an operation's four (capture, void, refund); CallOperationProcessor only
# reads the ledger, as CallProcessor does. Status sync's resolutions and reconciliation's PAYMENT-SETTLED facts
# are new entries too (FindUnresolved only reads the index).
LEDGER_WRITERS = sorted(
    [
        *("role:LedgerFailed", "role:LedgerInitiated", "role:LedgerPending", "role:LedgerSuccess"),
        *("role:AdmitOperation", "role:OperationFailed", "role:OperationPending", "role:OperationSuccess"),
        *("role:ResolveUnresolved", "role:MatchLedger"),
    ]
)
# Each processor call's record, written as the call completes (status sync's resolver's too), and the Audit
# step's; OperationFailed only reads.
AUDIT_WRITERS = sorted(["role:Audit", "role:CallOperationProcessor", "role:CallProcessor", "role:ResolveUnresolved"])
ARCHIVE_BUCKET = f"payment-workflow-prod-archive-{ACCOUNT}-{REGION}"


def logical_id(stack, construct):
    """A construct's resource, or a CloudFormation resource itself (the pipes, the delivery streams)."""
    element = construct if isinstance(construct, CfnElement) else construct.node.default_child
    return stack.get_logical_id(element)


def deny(sid, actions, resources_, conditions=None):
    conditions = {op: {k: sorted(as_list(v)) for k, v in values.items()} for op, values in (conditions or {}).items()}
    return (sid, "Deny", ("AWS", ["*"]), sorted(actions), sorted(as_list(resources_)), conditions)


def except_for(*principals):
    return {"ArnNotEquals": {"aws:PrincipalArn": sorted(principals)}}


def table(name, env="prod"):
    return f"arn:<AWS::Partition>:dynamodb:{REGION}:{ACCOUNT}:table/{name}-{env}"


def table_policies(env):
    """Each table's resource policy, statement by statement."""
    ledger, audit, vault = table("PaymentLedger", env), table("PaymentAuditTrail", env), table("CardVault", env)
    published = table("PaymentEventsPublished", env)
    return {
        topology.LEDGER_TABLE.name: [
            deny("NoChangeOrDeletion", CHANGES, ledger),
            deny("AppendByTheWorkflowOnly", ["dynamodb:PutItem"], ledger, except_for(*LEDGER_WRITERS)),
        ],
        topology.AUDIT_TABLE.name: [
            deny("NoChangeOrDeletion", CHANGES, audit),
            deny("AppendByTheWorkflowOnly", ["dynamodb:PutItem"], audit, except_for(*AUDIT_WRITERS)),
        ],
        topology.CARD_VAULT_TABLE.name: [
            deny("DepositByTheIntakeOnly", ["dynamodb:PutItem"], vault, except_for("role:Intake")),
            deny(
                "ReadByTheChargingStepsOnly",
                ["dynamodb:GetItem"],
                vault,
                except_for("role:Tokenize", "role:CallProcessor"),
            ),
            deny("CvvRemovalByCallProcessorOnly", ["dynamodb:UpdateItem"], vault, except_for("role:CallProcessor")),
            deny(
                "RemovalByTheWorkflowOnly",
                ["dynamodb:DeleteItem"],
                vault,
                except_for("role:LedgerSuccess", "role:LedgerFailed", "role:StateMachine"),
            ),
            deny(
                "NoBulkAccess",
                [
                    "dynamodb:BatchGetItem",
                    "dynamodb:Query",
                    "dynamodb:Scan",
                    "dynamodb:PartiQLSelect",
                    "dynamodb:BatchWriteItem",
                    "dynamodb:PartiQLInsert",
                    "dynamodb:PartiQLUpdate",
                    "dynamodb:PartiQLDelete",
                ],
                vault,
            ),
        ],
        # LedgerEvents' idempotency records: a record by anyone else could mark an event published that never was.
        topology.IDEMPOTENCY_TABLE.name: [
            deny(
                "KeptByLedgerEventsOnly",
                ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
                published,
                except_for("role:LedgerEvents"),
            ),
            deny(
                "NoBulkAccess",
                [
                    "dynamodb:BatchGetItem",
                    "dynamodb:Query",
                    "dynamodb:Scan",
                    "dynamodb:PartiQLSelect",
                    "dynamodb:BatchWriteItem",
                    "dynamodb:PartiQLInsert",
                    "dynamodb:PartiQLUpdate",
                    "dynamodb:PartiQLDelete",
                ],
                published,
            ),
        ],
    }


def policy(stack, statements):
    labels = role_labels(stack)
    return [statement_text(s, labels) for s in statements]


def normal(value):
    return json.loads(json.dumps(value))


def tables_by_name(stack, template):
    specs = {t: getattr(stack.tables, a) for t, a in (("PaymentLedger", "ledger"), ("PaymentAuditTrail", "audit"))}
    specs["CardVault"] = stack.tables.vault
    specs[topology.IDEMPOTENCY_TABLE.name] = stack.tables.idempotency
    return {name: resources(template, "AWS::DynamoDB::GlobalTable")[logical_id(stack, t)] for name, t in specs.items()}


# 1. The tables' resource policies ---------------------------------------------------------------------------


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_each_table_policy_is_exactly_its_table(env, dev, prod):
    stack, template, _ = {"dev": dev, "prod": prod}[env]
    for name, found in tables_by_name(stack, template).items():
        [replica] = found["Properties"]["Replicas"]
        statements = replica["ResourcePolicy"]["PolicyDocument"]["Statement"]
        assert normal(policy(stack, statements)) == normal(table_policies(env)[name]), name


def test_the_writers_of_the_ledger_and_the_audit_trail_hold_put_item_and_reads_only(prod):
    # The resource policies deny every change; the identity policies do not even ask for one. (A grant such
    # as grant_write_data would add UpdateItem, DeleteItem and BatchWriteItem.)
    stack, template, _ = prod
    labels = role_labels(stack)
    for table_construct, writers in ((stack.tables.ledger, LEDGER_WRITERS), (stack.tables.audit, AUDIT_WRITERS)):
        arn = {"Fn::GetAtt": [logical_id(stack, table_construct), "Arn"]}
        putting = set()
        for _, roles, statements in identity_policies(template):
            for statement in statements:
                if arn in as_list(statement["Resource"]):
                    actions = set(as_list(statement["Action"]))
                    assert actions <= {"dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan"}
                    if "dynamodb:PutItem" in actions:
                        assert actions == {"dynamodb:PutItem"}
                        putting |= {labels[r] for r in roles}
        assert sorted(putting) == writers


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_ledger_streams_everywhere_the_audit_trail_only_where_archived_and_never_the_vault(env, dev, prod):
    # The ledger is the outbox of the payments bus (LedgerEvents reads its stream in every environment); the
    # archive (prod) reads the ledger's and the audit trail's. The vault and the idempotency records never stream.
    stack, template, _ = {"dev": dev, "prod": prod}[env]
    found = tables_by_name(stack, template)
    images = {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert found["PaymentLedger"]["Properties"].get("StreamSpecification") == images
    assert found["PaymentAuditTrail"]["Properties"].get("StreamSpecification") == (images if env == "prod" else None)
    assert "StreamSpecification" not in found["CardVault"]["Properties"]
    assert "StreamSpecification" not in found[topology.IDEMPOTENCY_TABLE.name]["Properties"]
    assert found["CardVault"]["Properties"]["TimeToLiveSpecification"] == {
        "AttributeName": "ExpiresAt",
        "Enabled": True,
    }


# 2. The evidence buckets ------------------------------------------------------------------------------------


def buckets(stack, template):
    """(the trail's, the archive's or None, the access logs') bucket resources."""
    found = resources(template, "AWS::S3::Bucket")
    archive = found[logical_id(stack, stack.archive.bucket)] if stack.archive is not None else None
    return found[logical_id(stack, stack.trail.bucket)], archive, found[logical_id(stack, stack.access_logs)]


def bucket_policy(stack, template, bucket):
    [found] = [
        p
        for p in resources(template, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": logical_id(stack, bucket)}
    ]
    return policy(stack, found["Properties"]["PolicyDocument"]["Statement"])


def lock(days):
    return {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Days": days, "Mode": "COMPLIANCE"}}}


@pytest.mark.parametrize(("env", "trail_days", "archive_days"), [("dev", 1, None), ("prod", 365, 2555)])
def test_evidence_buckets_are_locked_in_compliance_mode_for_cdk_json_retention(
    env, trail_days, archive_days, dev, prod
):
    stack, template, _ = {"dev": dev, "prod": prod}[env]
    assert (stack.trail.bucket is not None, stack.archive is not None) == (True, archive_days is not None)
    storage = {"Fn::GetAtt": [logical_id(stack, stack.keys.storage_key), "Arn"]}
    trail, archive, access_logs = buckets(stack, template)
    for bucket, days, purpose in ((trail, trail_days, "trail"), (archive, archive_days, "archive")):
        if days is None:
            assert bucket is None
            continue
        properties = bucket["Properties"]
        assert properties["ObjectLockEnabled"] is True
        assert properties["ObjectLockConfiguration"] == lock(days)
        assert properties["VersioningConfiguration"] == {"Status": "Enabled"}  # Object Lock requires it
        assert properties["PublicAccessBlockConfiguration"] == dict.fromkeys(
            ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
        )
        assert properties["BucketEncryption"] == {
            "ServerSideEncryptionConfiguration": [
                {
                    "BucketKeyEnabled": True,
                    "ServerSideEncryptionByDefault": {"KMSMasterKeyID": storage, "SSEAlgorithm": "aws:kms"},
                }
            ]
        }
        assert properties["LoggingConfiguration"] == {
            "DestinationBucketName": {"Ref": logical_id(stack, stack.access_logs)},
            "LogFilePrefix": f"{purpose}/",
        }
        assert bucket["DeletionPolicy"] == "RetainExceptOnCreate"  # locked versions: CloudFormation could not delete it
    assert access_logs["Properties"]["BucketEncryption"] == {
        "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
    }
    assert "ObjectLockConfiguration" not in access_logs["Properties"]


def ssl_only(bucket_id):
    return (
        None,
        "Deny",
        ("AWS", ["*"]),
        ["s3:*"],
        sorted([f"<{bucket_id}.Arn>", f"<{bucket_id}.Arn>/*"]),
        {"Bool": {"aws:SecureTransport": ["false"]}},
    )


def locked(bucket_id):
    return [
        deny("NoDeletion", ["s3:DeleteObject", "s3:DeleteObjectVersion"], f"<{bucket_id}.Arn>/*"),
        deny(
            "LockKeptByTheDeploymentRole",
            [
                "s3:PutBucketObjectLockConfiguration",
                "s3:PutBucketVersioning",
                "s3:PutBucketPolicy",
                "s3:DeleteBucketPolicy",
            ],
            f"<{bucket_id}.Arn>",
            except_for(DEPLOYER),
        ),
    ]


def test_the_trail_bucket_policy_lets_only_this_trail_write(prod):
    stack, template, _ = prod
    bucket_id = logical_id(stack, stack.trail.bucket)
    own_trail = {"aws:SourceArn": [TRAIL]}
    assert normal(bucket_policy(stack, template, stack.trail.bucket)) == normal(
        [
            ssl_only(bucket_id),
            *locked(bucket_id),
            (
                "CloudTrailAclCheck",
                "Allow",
                ("Service", ["cloudtrail.amazonaws.com"]),
                ["s3:GetBucketAcl"],
                [f"<{bucket_id}.Arn>"],
                {"StringEquals": own_trail},
            ),
            (
                "CloudTrailWrite",
                "Allow",
                ("Service", ["cloudtrail.amazonaws.com"]),
                ["s3:PutObject"],
                [f"<{bucket_id}.Arn>/AWSLogs/{ACCOUNT}/*"],
                {"StringEquals": {"s3:x-amz-acl": ["bucket-owner-full-control"], **own_trail}},
            ),
        ]
    )


def test_the_archive_bucket_policy_lets_only_its_firehose_roles_write(prod):
    stack, template, _ = prod
    bucket_id = logical_id(stack, stack.archive.bucket)
    assert normal(bucket_policy(stack, template, stack.archive.bucket)) == normal(
        [
            ssl_only(bucket_id),
            *locked(bucket_id),
            deny(
                "WrittenByTheArchiveOnly",
                ["s3:PutObject"],
                f"<{bucket_id}.Arn>/*",
                except_for("role:LedgerDelivery", "role:AuditDelivery"),
            ),
        ]
    )


def test_the_access_log_bucket_takes_logs_of_the_evidence_buckets_and_the_report_bucket_only(prod):
    stack, template, _ = prod
    logs_id = logical_id(stack, stack.access_logs)
    delivery = []
    for purpose, bucket in (
        ("reports", stack.reports.bucket),
        ("trail", stack.trail.bucket),
        ("archive", stack.archive.bucket),
    ):
        delivery.append(
            (
                f"AccessLogsOf{purpose.capitalize()}",
                "Allow",
                ("Service", ["logging.s3.amazonaws.com"]),
                ["s3:PutObject"],
                [f"<{logs_id}.Arn>/{purpose}/*"],
                {
                    "ArnLike": {"aws:SourceArn": [f"<{logical_id(stack, bucket)}.Arn>"]},
                    "StringEquals": {"aws:SourceAccount": [ACCOUNT]},
                },
            )
        )
    assert normal(bucket_policy(stack, template, stack.access_logs)) == normal([ssl_only(logs_id), *delivery])


# 3. The archive -------------------------------------------------------------------------------------------


def test_each_append_only_table_streams_through_a_pipe_and_firehose_into_its_prefix(prod):
    stack, template, _ = prod
    storage = {"Fn::GetAtt": [logical_id(stack, stack.keys.storage_key), "Arn"]}
    bucket = {"Fn::GetAtt": [logical_id(stack, stack.archive.bucket), "Arn"]}
    pipes = resources(template, "AWS::Pipes::Pipe")
    streams = resources(template, "AWS::KinesisFirehose::DeliveryStream")
    assert len(pipes) == len(streams) == 2
    for table_construct, name, prefix in (
        (stack.tables.ledger, "PaymentLedger", "ledger"),
        (stack.tables.audit, "PaymentAuditTrail", "audit"),
    ):
        delivery_id = logical_id(stack, stack.archive.delivery_streams[name])
        pipe = pipes[logical_id(stack, stack.archive.pipes[name])]["Properties"]
        assert pipe["Source"] == {"Fn::GetAtt": [logical_id(stack, table_construct), "StreamArn"]}
        assert pipe["Target"] == {"Fn::GetAtt": [delivery_id, "Arn"]}
        assert pipe["RoleArn"] == {"Fn::GetAtt": [logical_id(stack, stack.archive.readers[name]), "Arn"]}
        # From the oldest record the stream holds, retried until it leaves the stream: none is skipped.
        assert pipe["SourceParameters"]["DynamoDBStreamParameters"]["StartingPosition"] == "TRIM_HORIZON"
        assert pipe["SourceParameters"]["DynamoDBStreamParameters"]["MaximumRetryAttempts"] == -1
        delivery = streams[delivery_id]["Properties"]
        assert delivery["DeliveryStreamType"] == "DirectPut"
        assert delivery["DeliveryStreamEncryptionConfigurationInput"] == {
            "KeyARN": storage,
            "KeyType": "CUSTOMER_MANAGED_CMK",
        }
        s3 = delivery["ExtendedS3DestinationConfiguration"]
        assert s3["BucketARN"] == bucket
        assert s3["RoleARN"] == {"Fn::GetAtt": [logical_id(stack, stack.archive.writers[name]), "Arn"]}
        assert s3["Prefix"] == f"{prefix}/!{{timestamp:yyyy/MM/dd}}/"
        assert s3["ErrorOutputPrefix"].startswith(f"errors/{prefix}/")
        assert s3["EncryptionConfiguration"] == {"KMSEncryptionConfig": {"AWSKMSKeyARN": storage}}


def role_policy(stack, template, role):
    policy_id = logical_id(stack, role.node.find_child("DefaultPolicy"))
    found = resources(template, "AWS::IAM::Policy")[policy_id]["Properties"]["PolicyDocument"]["Statement"]
    return normal(policy(stack, found))


def allowed(sid, actions, resources_, conditions=None):
    conditions = {op: {k: sorted(as_list(v)) for k, v in values.items()} for op, values in (conditions or {}).items()}
    return (sid, "Allow", None, sorted(actions), sorted(as_list(resources_)), conditions)


def test_the_archive_roles_read_one_stream_and_write_one_prefix(prod):
    stack, template, _ = prod
    storage = f"<{logical_id(stack, stack.keys.storage_key)}.Arn>"
    bucket = f"<{logical_id(stack, stack.archive.bucket)}.Arn>"
    for table_construct, name, prefix in (
        (stack.tables.ledger, "PaymentLedger", "ledger"),
        (stack.tables.audit, "PaymentAuditTrail", "audit"),
    ):
        table_id = logical_id(stack, table_construct)
        delivery = f"<{logical_id(stack, stack.archive.delivery_streams[name])}.Arn>"
        assert role_policy(stack, template, stack.archive.readers[name]) == normal(
            [
                allowed(
                    "StreamRead",
                    ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"],
                    f"<{table_id}.StreamArn>",
                ),
                allowed("StreamList", ["dynamodb:ListStreams"], "*"),
                allowed(
                    "StreamKey",
                    ["kms:Decrypt"],
                    storage,
                    {"StringEquals": {"kms:EncryptionContext:aws:dynamodb:tableName": f"<{table_id}>"}},
                ),
                allowed("ArchiveDelivery", ["firehose:PutRecord", "firehose:PutRecordBatch"], delivery),
            ]
        )
        writer = role_policy(stack, template, stack.archive.writers[name])
        assert writer[:2] == normal(
            [
                allowed(
                    "ArchiveWrite",
                    [
                        "s3:AbortMultipartUpload",
                        "s3:GetBucketLocation",
                        "s3:GetObject",
                        "s3:ListBucket",
                        "s3:ListBucketMultipartUploads",
                        "s3:PutObject",
                    ],
                    [bucket, f"{bucket}/{prefix}/*", f"{bucket}/errors/{prefix}/*"],
                ),
                allowed(
                    "ArchiveKey",
                    ["kms:GenerateDataKey", "kms:Decrypt"],
                    storage,
                    {
                        "StringEquals": {"kms:ViaService": "s3.<AWS::Region>.amazonaws.com"},
                        "StringLike": {"kms:EncryptionContext:aws:s3:arn": [bucket, f"{bucket}/*"]},
                    },
                ),
            ]
        )
        # ...and its own error log stream, nothing else of CloudWatch Logs.
        construct = prefix.capitalize()
        log_group = logical_id(stack, stack.archive.node.find_child(f"{construct}DeliveryLogs"))
        log_stream = logical_id(stack, stack.archive.node.find_child(f"{construct}DeliveryErrors"))
        assert writer[2:] == normal(
            [
                allowed(
                    "DeliveryErrors",
                    ["logs:PutLogEvents"],
                    f"arn:<AWS::Partition>:logs:{REGION}:{ACCOUNT}:log-group:<{log_group}>:log-stream:<{log_stream}>",
                ),
            ]
        )


# 4. The trail ----------------------------------------------------------------------------------------------


def get_arn(construct, stack):
    return {"Fn::GetAtt": [logical_id(stack, construct), "Arn"]}


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_trail_records_data_events_of_exactly_the_three_tables_and_the_twenty_functions(env, dev, prod):
    stack, template, _ = {"dev": dev, "prod": prod}[env]
    [trail] = resources(template, "AWS::CloudTrail::Trail").values()
    properties = trail["Properties"]
    tables = [get_arn(t, stack) for t in (stack.tables.ledger, stack.tables.audit, stack.tables.vault)]
    functions = [get_arn(stack.steps.functions[spec.step], stack) for spec in topology.ALL_FUNCTIONS]
    # The intake, the payment workflow's eight steps, the operation workflow's five of its own, LedgerEvents,
    # status sync's two of its own and reconciliation's three.
    assert len(functions) == 20 and get_arn(stack.steps.intake, stack) in functions
    assert get_arn(stack.steps.ledger_events, stack) in functions
    # And where the steps run with SnapStart (prod), the alias of each of the eighteen that the state machines invoke.
    aliases = [
        {"Ref": logical_id(stack, stack.steps.aliases[spec.step])} for spec in topology.FUNCTIONS if env == "prod"
    ]
    functions += aliases
    assert len(stack.steps.aliases) == (len(topology.FUNCTIONS) if env == "prod" else 0) == len(functions) - 20
    assert properties["AdvancedEventSelectors"] == [
        {"Name": "Management events", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]},
        {
            "Name": "Card data, ledger and audit trail items",
            "FieldSelectors": [
                {"Field": "eventCategory", "Equals": ["Data"]},
                {"Field": "resources.type", "Equals": ["AWS::DynamoDB::Table"]},
                {"Field": "resources.ARN", "Equals": tables},
            ],
        },
        {
            "Name": "Invocations of the intake and the workflow steps",
            "FieldSelectors": [
                {"Field": "eventCategory", "Equals": ["Data"]},
                {"Field": "resources.type", "Equals": ["AWS::Lambda::Function"]},
                {"Field": "resources.ARN", "Equals": functions},
            ],
        },
    ]
    assert "EventSelectors" not in properties  # a trail takes basic or advanced selectors, not both


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_trail_validates_its_log_files_is_multi_region_and_encrypted_with_the_storage_key(env, dev, prod):
    stack, template, _ = {"dev": dev, "prod": prod}[env]
    [trail] = resources(template, "AWS::CloudTrail::Trail").values()
    properties = trail["Properties"]
    assert properties["TrailName"] == f"payment-workflow-{env}"  # what the key and bucket policies' SourceArn name
    assert properties["EnableLogFileValidation"] is True
    assert properties["IsLogging"] is True
    assert properties["IsMultiRegionTrail"] is True and properties["IncludeGlobalServiceEvents"] is True
    assert properties["KMSKeyId"] == {"Fn::GetAtt": [logical_id(stack, stack.keys.storage_key), "Arn"]}
    assert properties["S3BucketName"] == {"Ref": logical_id(stack, stack.trail.bucket)}
    # CloudTrail checks the bucket policy when the trail is created.
    assert logical_id(stack, stack.trail.bucket.policy) in trail["DependsOn"]


# 5. The AuditReader --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "trusted"),
    [
        ("prod", f"arn:<AWS::Partition>:iam::{ACCOUNT}:user/payment-auditor"),
        ("dev", f"arn:<AWS::Partition>:iam::{ACCOUNT}:root"),
    ],
)
def test_the_audit_reader_is_assumed_only_with_mfa_by_the_principals_cdk_json_names(env, trusted, dev, prod):
    # cdk.json's audit_readers (prod: an IAM user); none named (dev): the account, whose principals still need
    # an identity policy allowing sts:AssumeRole on it, and MFA.
    stack, template, _ = {"dev": dev, "prod": prod}[env]
    role = resources(template, "AWS::IAM::Role")[logical_id(stack, stack.audit_reader.role)]["Properties"]
    assert role["RoleName"] == f"PaymentAuditReader-{env}"
    assert role["MaxSessionDuration"] == 3600
    [statement] = role["AssumeRolePolicyDocument"]["Statement"]
    assert normal(policy(stack, [statement])) == normal(
        [
            (
                None,
                "Allow",
                ("AWS", [trusted]),
                ["sts:AssumeRole"],
                None,
                {
                    "Bool": {"aws:MultiFactorAuthPresent": ["true"]},
                    "NumericLessThan": {"aws:MultiFactorAuthAge": ["3600"]},
                },
            )
        ]
    )
    assert MFA_CONDITIONS == {
        "Bool": {"aws:MultiFactorAuthPresent": "true"},
        "NumericLessThan": {"aws:MultiFactorAuthAge": "3600"},
    }


def test_the_audit_reader_decrypts_audit_payloads_and_reads_the_evidence_and_changes_nothing(prod):
    stack, template, _ = prod
    audit_key = f"<{logical_id(stack, stack.keys.audit_key)}.Arn>"
    storage = f"<{logical_id(stack, stack.keys.storage_key)}.Arn>"
    audit_table = logical_id(stack, stack.tables.audit)
    trail_bucket = f"<{logical_id(stack, stack.trail.bucket)}.Arn>"
    archive = f"<{logical_id(stack, stack.archive.bucket)}.Arn>"
    bucket_read = ["s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket", "s3:ListBucketVersions"]
    assert role_policy(stack, template, stack.audit_reader.role) == normal(
        [
            allowed(
                "AuditPayloadDecryption",
                ["kms:Decrypt"],
                audit_key,
                {"StringEquals": {"kms:EncryptionContext:purpose": "audit"}},
            ),
            allowed("AuditTrailRead", ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan"], f"<{audit_table}.Arn>"),
            allowed(
                "AuditTableKey",
                ["kms:Decrypt", "kms:DescribeKey"],
                storage,
                {
                    "StringEquals": {
                        "kms:ViaService": "dynamodb.<AWS::Region>.amazonaws.com",
                        "kms:EncryptionContext:aws:dynamodb:tableName": f"<{audit_table}>",
                    }
                },
            ),
            allowed("TrailLogsRead", bucket_read, [trail_bucket, f"{trail_bucket}/*"]),
            allowed(
                "TrailLogKey",
                ["kms:Decrypt"],
                storage,
                {"StringEquals": {"kms:EncryptionContext:aws:cloudtrail:arn": TRAIL}},
            ),
            allowed("TrailValidation", ["cloudtrail:DescribeTrails", "cloudtrail:ListPublicKeys"], "*"),
            allowed("ArchiveRead", bucket_read, [archive, f"{archive}/*"]),
            allowed(
                "ArchiveKey",
                ["kms:Decrypt"],
                storage,
                {
                    "StringEquals": {"kms:ViaService": "s3.<AWS::Region>.amazonaws.com"},
                    "StringLike": {"kms:EncryptionContext:aws:s3:arn": [archive, f"{archive}/*"]},
                },
            ),
        ]
    )


def test_dev_has_a_trail_and_no_archive(dev):
    stack, template, _ = dev
    assert stack.archive is None
    assert not resources(template, "AWS::Pipes::Pipe") and not resources(
        template, "AWS::KinesisFirehose::DeliveryStream"
    )
    assert len(resources(template, "AWS::CloudTrail::Trail")) == 1
