"""The trail (PCI DSS 10.2): who read or wrote card data, payments and evidence, and who changed what.

```
DynamoDB data events: PaymentLedger, PaymentAuditTrail, CardVault ─┐
Lambda data events: Invoke of the intake and the eight steps  ─────┼─▶ trail ─▶ bucket, Object Lock COMPLIANCE
management events of the account (key policy changes, KMS use)  ───┘   (storage key; digest files: log file validation)
```

Data events are chosen with advanced event selectors naming each table and function by ARN: the
CloudFormation resource takes them (AWS::CloudTrail::Trail AdvancedEventSelectors), CDK's Trail does
not (its addEventSelector writes basic selectors, for S3 objects and Lambda functions only, and a
trail takes one kind or the other), so the trail is the L1 resource. Management events are kept in
the same trail, KMS's included: a key policy or table policy changed, a key used, all in one log
that no one can rewrite. (If the account already has a trail for management events, that copy is
charged again: CloudTrail User Guide, "CloudTrail pricing".)

The bucket's policy lets CloudTrail write only for this trail (aws:SourceArn, built from the trail's
name: the trail refers to the bucket, so the bucket cannot refer to the trail), as the CloudTrail User
Guide's "Amazon S3 bucket policy for CloudTrail" writes it.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_cloudtrail as cloudtrail
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra import names
from infra.buckets import evidence_bucket
from infra.config import EnvironmentConfig

CLOUDTRAIL = "cloudtrail.amazonaws.com"


class PaymentTrail(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        key: kms.IKey,
        tables: Sequence[dynamodb.ITable],
        functions: Sequence[lambda_.IFunction],
        access_logs: s3.Bucket,
    ) -> None:
        """`key`: the storage key; `tables` and `functions`: whose data events the trail records."""
        super().__init__(scope, construct_id)
        self.trail_arn = names.trail_arn(self, config)
        self.bucket = evidence_bucket(
            self,
            "Bucket",
            purpose="trail",
            retention_days=config.trail_retention_days,
            key=key,
            access_logs=access_logs,
        )
        own_trail = {"StringEquals": {"aws:SourceArn": self.trail_arn}}
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudTrailAclCheck",
                principals=[iam.ServicePrincipal(CLOUDTRAIL)],
                actions=["s3:GetBucketAcl"],
                resources=[self.bucket.bucket_arn],
                conditions=own_trail,
            )
        )
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudTrailWrite",
                principals=[iam.ServicePrincipal(CLOUDTRAIL)],
                actions=["s3:PutObject"],
                resources=[self.bucket.arn_for_objects(f"AWSLogs/{Stack.of(self).account}/*")],
                conditions={"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", **own_trail["StringEquals"]}},
            )
        )
        self.trail = cloudtrail.CfnTrail(
            self,
            "Trail",
            trail_name=names.trail_name(config),
            s3_bucket_name=self.bucket.bucket_name,
            kms_key_id=key.key_arn,
            is_logging=True,
            enable_log_file_validation=True,
            is_multi_region_trail=True,
            include_global_service_events=True,
            advanced_event_selectors=event_selectors(tables, functions),
        )
        # CloudTrail checks the bucket policy when the trail is created: the policy goes first.
        if self.bucket.policy is not None:
            self.trail.node.add_dependency(self.bucket.policy)


def event_selectors(
    tables: Sequence[dynamodb.ITable], functions: Sequence[lambda_.IFunction]
) -> list[cloudtrail.CfnTrail.AdvancedEventSelectorProperty]:
    """Management events; data events of exactly these tables (every item read and write) and functions
    (every Invoke, by unqualified ARN: how upstream services, and the state machines without SnapStart, invoke
    them; and by alias ARN, how the state machines invoke a step that runs with SnapStart: an invocation of an
    alias may be recorded under the alias's qualified ARN, so both are listed)."""
    return [
        _selector("Management events", "Management"),
        _selector(
            "Card data, ledger and audit trail items", "Data", "AWS::DynamoDB::Table", [t.table_arn for t in tables]
        ),
        _selector(
            "Invocations of the intake and the workflow steps",
            "Data",
            "AWS::Lambda::Function",
            [f.function_arn for f in functions],
        ),
    ]


def _selector(
    name: str, category: str, resource_type: str | None = None, arns: Sequence[str] = ()
) -> cloudtrail.CfnTrail.AdvancedEventSelectorProperty:
    fields = [cloudtrail.CfnTrail.AdvancedFieldSelectorProperty(field="eventCategory", equal_to=[category])]
    if resource_type is not None:
        fields += [
            cloudtrail.CfnTrail.AdvancedFieldSelectorProperty(field="resources.type", equal_to=[resource_type]),
            cloudtrail.CfnTrail.AdvancedFieldSelectorProperty(field="resources.ARN", equal_to=list(arns)),
        ]
    return cloudtrail.CfnTrail.AdvancedEventSelectorProperty(name=name, field_selectors=fields)
