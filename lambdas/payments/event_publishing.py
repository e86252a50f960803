"""Publishing ledger events, each once: the adapter between the ledger's stream and the payments bus.

Exactly one event per terminal entry, under a retried batch: `publish_once` is idempotent by the
event's EventID (Powertools idempotency, DynamoDB persistence), so a batch redelivered after a lost
response, or a record retried after a later one failed, finds the event published and sends
nothing. A crash between PutEvents and the idempotency record's completion can still publish twice
(its in-progress record expires and the retry sends again); consumers tell a redelivery by EventID.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.typing import LambdaContext

from payments import aws, events, settings, snapshot, topology
from payments.errors import StorageUnavailable
from payments.observability import logger

# The idempotency record outlives any redelivery of a stream record (a stream keeps records 24 h).
IDEMPOTENCY_SECONDS = 2 * 24 * 3600
_config = IdempotencyConfig(event_key_jmespath="Detail.EventID", expires_after_seconds=IDEMPOTENCY_SECONDS)


def register(context: LambdaContext) -> None:
    """Lets the idempotency records of this invocation expire with it, if it dies mid-way."""
    _config.register_lambda_context(context)


def publish_entry(event_name: str, new_image: dict[str, Any] | None) -> None:
    """One stream record: a terminal entry inserted becomes its event; anything else, nothing."""
    if event_name != "INSERT" or not new_image:
        return  # the ledger is append-only: only inserts are entries
    event = events.event_of(new_image)
    if event is None:
        return
    _publish_once(settings.required(topology.IDEMPOTENCY_TABLE_NAME))(event=event)
    logger.info(
        "ledger event published", extra={"detail_type": event["DetailType"], "entry": event["Detail"]["EntryNumber"]}
    )


@snapshot.forget_on_restore
@functools.cache
def _publish_once(table_name: str) -> Any:
    persistence = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=aws.client("dynamodb"))

    @idempotent_function(data_keyword_argument="event", persistence_store=persistence, config=_config)  # type: ignore[untyped-decorator]
    def publish(event: dict[str, Any]) -> dict[str, Any]:
        return put_event(event)

    return publish


def put_event(event: dict[str, Any]) -> dict[str, Any]:
    """PutEvents of one event on the payments bus; a failed entry raises, so the record is retried."""
    answer = aws.call_with_transient_mapping(
        lambda: aws.client("events").put_events(
            Entries=[
                {
                    "Source": event["Source"],
                    "DetailType": event["DetailType"],
                    "Detail": json.dumps(event["Detail"], sort_keys=True),
                    "EventBusName": settings.required(topology.EVENT_BUS_NAME),
                }
            ]
        ),
        StorageUnavailable,
        "EventBridge PutEvents",
    )
    if answer.get("FailedEntryCount"):
        code = answer["Entries"][0].get("ErrorCode", "unknown")
        raise StorageUnavailable(f"EventBridge PutEvents refused the event ({code}); retried with its batch")
    return {"EventId": answer["Entries"][0].get("EventId")}
