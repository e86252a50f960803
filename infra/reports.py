"""Reconciliation's report bucket (REPORT_BUCKET_NAME): each run's window listings and each day's report.

```
payment-workflow-<env>-reports-<account>-<region>    SSE-KMS (storage key, bucket key), SSL only, no public access
  reconciliation/<date>/runs/<run>/windows/NNNN.json   ListProcessorWindow writes, MatchLedger reads
  reconciliation/<date>/runs/<run>/report.json         MatchLedger writes
  reconciliation/<date>/report.json                    MatchLedger writes (the day's latest)
```

No card data is in it (a listed transaction carries ids, kind, amount, currency, outcome, settled,
time), but it is the merchant's financial record of each day: versioned (a report written again
keeps the one before), encrypted with the storage key, its server access logged into the evidence
access-log bucket, and written by the two reconciliation steps alone (its policy denies PutObject to
every other principal, whatever an identity policy allows). Reports are kept REPORT_RETENTION_DAYS,
long enough for a year's audit; a version replaced is kept NONCURRENT_RETENTION_DAYS.

A fixed name, as the archive's: the storage key's policy names the bucket (the bucket refers to the
key, so the key cannot refer to the bucket).
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra import names
from infra.buckets import deny_all_but, log_access
from infra.config import EnvironmentConfig

REPORT_RETENTION_DAYS = 400
NONCURRENT_RETENTION_DAYS = 30


class ReconciliationReports(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        key: kms.IKey,
        access_logs: s3.Bucket,
    ) -> None:
        """`key`: the storage key; `access_logs`: where its server access logs go (under `reports/`)."""
        super().__init__(scope, construct_id)
        self.bucket_name = names.report_bucket_name(self, config)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            bucket_name=self.bucket_name,
            versioned=True,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ReportRetention",
                    expiration=Duration.days(REPORT_RETENTION_DAYS),
                    noncurrent_version_expiration=Duration.days(NONCURRENT_RETENTION_DAYS),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            # Prod keeps it on update and delete (not after a failed first create); dev's goes with the stack
            # (CloudFormation deletes an empty bucket only: a dev stack with reports needs it emptied first).
            removal_policy=config.removal_policy,
        )
        log_access(self.bucket, "reports", access_logs)

    def restrict_writers(self, writers: Sequence[iam.IRole]) -> None:
        """Only `writers` (ListProcessorWindow, MatchLedger) may put objects into the bucket."""
        self.bucket.add_to_resource_policy(
            deny_all_but(
                "WrittenByReconciliationOnly",
                ["s3:PutObject"],
                [self.bucket.arn_for_objects("*")],
                [writer.role_arn for writer in writers],
            )
        )
