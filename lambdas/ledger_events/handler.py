"""LedgerEvents: each terminal ledger entry the ledger's stream shows becomes one event on the payments bus.

Invoked with batches of the ledger table's stream (an event source mapping in AWS; the local stack's
stream pump locally). A batch retried after a lost response publishes nothing twice: each event is
published once per EventID (Powertools idempotency, its record kept in the idempotency table), and
a failed record is reported so that only it and what follows it are retried.
"""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from payments import event_publishing, snapshot
from payments.observability import logger, tracer

# SnapStart (payments.snapshot): the caches of clients and secrets emptied after a restore.
snapshot.register()

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def record_handler(record: DynamoDBRecord) -> None:
    event_publishing.publish_entry(record.event_name.name if record.event_name else "", record.dynamodb.new_image)


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    event_publishing.register(context)
    return dict(
        process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    )
