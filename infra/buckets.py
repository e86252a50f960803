"""Evidence buckets: S3 Object Lock in COMPLIANCE mode, and the bucket their server access logs go to.

An evidence bucket (the trail's, infra.trail; the archive's, infra.archive) keeps every object version
for the environment's retention: in COMPLIANCE mode no one, the account's root user included, can
delete a locked version or shorten its retention (S3 User Guide, "Locking objects with Object
Lock"); Object Lock needs versioning, so a PUT of an existing key adds a version and keeps the old.
Its policy adds what the lock does not cover: no delete markers (DeleteObject would hide a version
from listings), and its lock, versioning and policy changed only by the deployment role.

Evidence buckets are kept when the stack is deleted, in every environment: CloudFormation could not
delete a bucket holding locked versions anyway. (Not after a failed first create: they are empty then.)
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra import names
from infra.scanners import skip_checkov

EVIDENCE_REMOVAL_POLICY = RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE
# What would undo the lock, or the policy that keeps these statements: the deployment role's alone.
LOCK_ACTIONS = (
    "s3:PutBucketObjectLockConfiguration",
    "s3:PutBucketVersioning",
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
)
DELETION_ACTIONS = ("s3:DeleteObject", "s3:DeleteObjectVersion")


def access_log_bucket(scope: Construct, construct_id: str, *, expiration_days: int) -> s3.Bucket:
    """Server access logs of the evidence buckets, and of reconciliation's report bucket (SSE-S3: S3
    delivers server access logs to no bucket encrypted with a KMS key's default encryption other than
    through a key policy for its logging service; this bucket holds request logs, no payment data)."""
    bucket = s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        enforce_ssl=True,
        versioned=True,
        lifecycle_rules=[
            s3.LifecycleRule(
                expiration=Duration.days(expiration_days),
                noncurrent_version_expiration=Duration.days(expiration_days),
            )
        ],
        removal_policy=EVIDENCE_REMOVAL_POLICY,
    )
    skip_checkov(
        bucket,
        "CKV_AWS_18",
        "This bucket is where the evidence buckets' server access logs go; logging its own access into itself "
        "would log each log delivery again, without end. Its writes are S3's log delivery alone (its policy).",
    )
    return bucket


def evidence_bucket(
    scope: Construct,
    construct_id: str,
    *,
    purpose: str,
    retention_days: int,
    key: kms.IKey,
    access_logs: s3.Bucket,
    bucket_name: str | None = None,
) -> s3.Bucket:
    """A bucket under Object Lock (COMPLIANCE, `retention_days`), encrypted with `key`, SSL only; its
    server access logs go to `access_logs` under `<purpose>/`."""
    bucket = s3.Bucket(
        scope,
        construct_id,
        bucket_name=bucket_name,
        object_lock_enabled=True,
        object_lock_default_retention=s3.ObjectLockRetention.compliance(Duration.days(retention_days)),
        versioned=True,
        encryption=s3.BucketEncryption.KMS,
        encryption_key=key,
        bucket_key_enabled=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        enforce_ssl=True,
        removal_policy=EVIDENCE_REMOVAL_POLICY,
    )
    log_access(bucket, purpose, access_logs)
    bucket.add_to_resource_policy(
        iam.PolicyStatement(
            sid="NoDeletion",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=list(DELETION_ACTIONS),
            resources=[bucket.arn_for_objects("*")],
        )
    )
    bucket.add_to_resource_policy(
        deny_all_but(
            "LockKeptByTheDeploymentRole", LOCK_ACTIONS, [bucket.bucket_arn], [names.deployment_role_arn(scope)]
        )
    )
    return bucket


def log_access(bucket: s3.Bucket, purpose: str, access_logs: s3.Bucket) -> None:
    """Server access logging into `access_logs`, granted by that bucket's policy to S3's logging service
    for this bucket only (S3 User Guide, "Enabling Amazon S3 server access logging": bucket policy for
    logging.s3.amazonaws.com, with aws:SourceArn and aws:SourceAccount). CDK's serverAccessLogsBucket
    would grant it by a bucket ACL instead, which BUCKET_OWNER_ENFORCED turns off."""
    prefix = f"{purpose}/"
    cfn = bucket.node.default_child
    assert isinstance(cfn, s3.CfnBucket)
    cfn.logging_configuration = s3.CfnBucket.LoggingConfigurationProperty(
        destination_bucket_name=access_logs.bucket_name, log_file_prefix=prefix
    )
    access_logs.add_to_resource_policy(
        iam.PolicyStatement(
            sid=f"AccessLogsOf{purpose.capitalize()}",
            principals=[iam.ServicePrincipal("logging.s3.amazonaws.com")],
            actions=["s3:PutObject"],
            resources=[access_logs.arn_for_objects(f"{prefix}*")],
            conditions={
                "ArnLike": {"aws:SourceArn": bucket.bucket_arn},
                "StringEquals": {"aws:SourceAccount": Stack.of(bucket).account},
            },
        )
    )


def restrict_writers(bucket: s3.Bucket, writers: Sequence[iam.IRole]) -> None:
    """Only `writers` may put objects into `bucket` (the archive: its Firehose roles)."""
    bucket.add_to_resource_policy(
        deny_all_but(
            "WrittenByTheArchiveOnly", ["s3:PutObject"], [bucket.arn_for_objects("*")], [w.role_arn for w in writers]
        )
    )


def deny_all_but(
    sid: str, actions: Sequence[str], resources: list[str], principal_arns: Sequence[str]
) -> iam.PolicyStatement:
    return iam.PolicyStatement(
        sid=sid,
        effect=iam.Effect.DENY,
        principals=[iam.AnyPrincipal()],
        actions=list(actions),
        resources=resources,
        conditions={"ArnNotEquals": {"aws:PrincipalArn": list(principal_arns)}},
    )
