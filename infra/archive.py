"""The immutable archive (prod): every write to the ledger and the audit trail, copied under Object Lock.

```
PaymentLedger ─ stream (new and old images) ─▶ pipe ─▶ Firehose ─┐
PaymentAuditTrail ─ stream ─────────────────▶ pipe ─▶ Firehose ─┴─▶ archive bucket: ledger/, audit/
                                                                     Object Lock COMPLIANCE, storage key
```

The tables' hash chains (payments.chain) show an item changed in place; they cannot show a payment's
chain rewritten whole, or cut short. This copy can: it holds each item as it was written, for the
environment's `archive_retention_days`, and no one can delete or shorten it (infra.buckets). Every
stream record is kept, so an item changed or removed despite the tables' policies shows up here as
a MODIFY or REMOVE record with the image it had.

Firehose cannot read a DynamoDB stream itself. Kinesis Data Streams for DynamoDB would do it, but
DynamoDB writes to that stream with a service-linked role that exists only once the first table
streams, so a key policy written before cannot name it. EventBridge Pipes reads the table's own
stream with a role of ours instead: every principal in the key policy is this stack's.

Roles, each for one pipeline: the pipe's reads that table's stream and puts records into that
delivery stream; Firehose's writes that table's prefix of the bucket, and its error log.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Aws, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_pipes as pipes
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra import names
from infra.buckets import evidence_bucket, restrict_writers
from infra.config import EnvironmentConfig
from infra.log_groups import protected_log_group
from payments import topology

# The prefix of each table's records in the bucket.
PREFIXES = {topology.LEDGER_TABLE.name: "ledger", topology.AUDIT_TABLE.name: "audit"}
BUFFER_SECONDS = 60  # a record reaches the bucket within a minute (or 5 MiB)
# Firehose Developer Guide, "Grant Firehose access to an Amazon S3 destination".
FIREHOSE_S3_ACTIONS = (
    "s3:AbortMultipartUpload",
    "s3:GetBucketLocation",
    "s3:GetObject",
    "s3:ListBucket",
    "s3:ListBucketMultipartUploads",
    "s3:PutObject",
)
# EventBridge User Guide, "Event source permissions for Amazon EventBridge Pipes", DynamoDB.
STREAM_READ_ACTIONS = ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator")
STREAM_LIST_ACTIONS = frozenset({"dynamodb:ListStreams"})  # supports no resource-level permission


class ImmutableArchive(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        key: kms.IKey,
        tables: Mapping[str, dynamodb.TableV2],
        access_logs: s3.Bucket,
    ) -> None:
        """`tables`: by table base name (topology), the ledger and the audit trail, each with a stream.
        `key`: the storage key."""
        super().__init__(scope, construct_id)
        if config.archive_retention_days is None:
            raise ValueError(f"environment {config.name!r} has no archive_retention_days")
        self.bucket_name = names.bucket_name(self, "archive", config)
        self.bucket = evidence_bucket(
            self,
            "Bucket",
            purpose="archive",
            bucket_name=self.bucket_name,
            retention_days=config.archive_retention_days,
            key=key,
            access_logs=access_logs,
        )
        self.readers: dict[str, iam.Role] = {}  # by table base name: the pipe's role
        self.writers: dict[str, iam.Role] = {}  # by table base name: Firehose's role
        self.delivery_streams: dict[str, firehose.CfnDeliveryStream] = {}
        self.pipes: dict[str, pipes.CfnPipe] = {}
        specs = {spec.name: spec for spec in topology.TABLES}
        for name, table in tables.items():
            self._pipeline(specs[name], table, config, key)
        restrict_writers(self.bucket, list(self.writers.values()))

    def _pipeline(
        self, spec: topology.TableSpec, table: dynamodb.TableV2, config: EnvironmentConfig, key: kms.IKey
    ) -> None:
        prefix = PREFIXES[spec.name]
        stack = Stack.of(self)
        stream_name = names.delivery_stream_name(spec, config)
        construct_id = prefix.capitalize()
        log_group = protected_log_group(
            self, f"{construct_id}DeliveryLogs", name=f"/aws/kinesisfirehose/{stream_name}", config=config, key=key
        )
        log_stream = logs.LogStream(
            self,
            f"{construct_id}DeliveryErrors",
            log_group=log_group,
            log_stream_name="DestinationDelivery",
            removal_policy=config.removal_policy,
        )
        writer = iam.Role(
            self,
            f"{construct_id}Delivery",
            description=f"Firehose: writes {spec.name} records to the archive bucket ({config.name})",
            # Firehose Developer Guide, "Grant Firehose access": sts:ExternalId is the account.
            assumed_by=iam.ServicePrincipal(
                "firehose.amazonaws.com", conditions={"StringEquals": {"sts:ExternalId": stack.account}}
            ),
        )
        objects = self.bucket.arn_for_objects(f"{prefix}/*")
        errors = self.bucket.arn_for_objects(f"errors/{prefix}/*")
        writer.add_to_policy(
            iam.PolicyStatement(
                sid="ArchiveWrite",
                actions=list(FIREHOSE_S3_ACTIONS),
                resources=[self.bucket.bucket_arn, objects, errors],
            )
        )
        writer.add_to_policy(
            iam.PolicyStatement(
                sid="ArchiveKey",
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[key.key_arn],
                conditions={
                    "StringEquals": {"kms:ViaService": f"s3.{Aws.REGION}.amazonaws.com"},
                    "StringLike": {
                        "kms:EncryptionContext:aws:s3:arn": [self.bucket.bucket_arn, f"{self.bucket.bucket_arn}/*"]
                    },
                },
            )
        )
        writer.add_to_policy(
            iam.PolicyStatement(
                sid="DeliveryErrors",
                actions=["logs:PutLogEvents"],
                resources=[
                    f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:{log_group.log_group_name}"
                    f":log-stream:{log_stream.log_stream_name}"
                ],
            )
        )
        delivery = firehose.CfnDeliveryStream(
            self,
            f"{construct_id}DeliveryStream",
            delivery_stream_name=stream_name,
            delivery_stream_type="DirectPut",
            # Records wait in Firehose's buffer for up to a minute: encrypted there too, with the storage key.
            delivery_stream_encryption_configuration_input=firehose.CfnDeliveryStream.DeliveryStreamEncryptionConfigurationInputProperty(
                key_type="CUSTOMER_MANAGED_CMK", key_arn=key.key_arn
            ),
            extended_s3_destination_configuration=firehose.CfnDeliveryStream.ExtendedS3DestinationConfigurationProperty(
                bucket_arn=self.bucket.bucket_arn,
                role_arn=writer.role_arn,
                prefix=f"{prefix}/!{{timestamp:yyyy/MM/dd}}/",
                error_output_prefix=f"errors/{prefix}/!{{firehose:error-output-type}}/!{{timestamp:yyyy/MM/dd}}/",
                buffering_hints=firehose.CfnDeliveryStream.BufferingHintsProperty(
                    interval_in_seconds=BUFFER_SECONDS, size_in_m_bs=5
                ),
                compression_format="GZIP",
                encryption_configuration=firehose.CfnDeliveryStream.EncryptionConfigurationProperty(
                    kms_encryption_config=firehose.CfnDeliveryStream.KMSEncryptionConfigProperty(
                        awskms_key_arn=key.key_arn
                    )
                ),
                # One stream record per line.
                processing_configuration=firehose.CfnDeliveryStream.ProcessingConfigurationProperty(
                    enabled=True,
                    processors=[firehose.CfnDeliveryStream.ProcessorProperty(type="AppendDelimiterToRecord")],
                ),
                cloud_watch_logging_options=firehose.CfnDeliveryStream.CloudWatchLoggingOptionsProperty(
                    enabled=True, log_group_name=log_group.log_group_name, log_stream_name=log_stream.log_stream_name
                ),
            ),
        )
        # Firehose checks its role's permissions when the delivery stream is created.
        delivery.node.add_dependency(_policy_of(writer))

        pipe_name = f"{names.table_name(spec, config)}-archive"
        reader = iam.Role(
            self,
            f"{construct_id}StreamReader",
            description=f"EventBridge Pipes: {spec.name}'s stream into its archive delivery stream ({config.name})",
            # EventBridge User Guide, "Amazon EventBridge Pipes" confused deputy prevention: this pipe only.
            assumed_by=iam.ServicePrincipal(
                "pipes.amazonaws.com",
                conditions={
                    "StringEquals": {
                        "aws:SourceAccount": stack.account,
                        "aws:SourceArn": f"arn:{stack.partition}:pipes:{stack.region}:{stack.account}:pipe/{pipe_name}",
                    }
                },
            ),
        )
        stream_arn = table.table_stream_arn
        assert stream_arn is not None, f"{spec.name} needs a stream to be archived"
        reader.add_to_policy(
            iam.PolicyStatement(sid="StreamRead", actions=list(STREAM_READ_ACTIONS), resources=[stream_arn])
        )
        reader.add_to_policy(
            iam.PolicyStatement(sid="StreamList", actions=sorted(STREAM_LIST_ACTIONS), resources=["*"])
        )
        reader.add_to_policy(
            iam.PolicyStatement(
                sid="StreamKey",
                actions=["kms:Decrypt"],
                resources=[key.key_arn],
                conditions={"StringEquals": {"kms:EncryptionContext:aws:dynamodb:tableName": table.table_name}},
            )
        )
        reader.add_to_policy(
            iam.PolicyStatement(
                sid="ArchiveDelivery",
                actions=["firehose:PutRecord", "firehose:PutRecordBatch"],
                resources=[delivery.attr_arn],
            )
        )
        pipe = pipes.CfnPipe(
            self,
            f"{construct_id}Pipe",
            name=pipe_name,
            description=f"Every {spec.name} stream record into the archive",
            role_arn=reader.role_arn,
            source=stream_arn,
            source_parameters=pipes.CfnPipe.PipeSourceParametersProperty(
                dynamo_db_stream_parameters=pipes.CfnPipe.PipeSourceDynamoDBStreamParametersProperty(
                    starting_position="TRIM_HORIZON",
                    batch_size=100,
                    maximum_batching_window_in_seconds=5,
                    # Retried until the record leaves the stream (24 hours): a record is never skipped.
                    maximum_retry_attempts=-1,
                )
            ),
            target=delivery.attr_arn,
        )
        pipe.node.add_dependency(_policy_of(reader))
        self.readers[spec.name] = reader
        self.writers[spec.name] = writer
        self.delivery_streams[spec.name] = delivery
        self.pipes[spec.name] = pipe


def _policy_of(role: iam.Role) -> Construct:
    """The role's policy: a resource that needs the role's permissions depends on it (on the role it
    already depends through its ARN)."""
    policy = role.node.try_find_child("DefaultPolicy")
    assert isinstance(policy, iam.Policy)
    return policy
