"""boto3 clients (one per process, as Lambda reuses them) and the mapping of AWS errors to ours."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from payments import snapshot
from payments.errors import StorageUnavailable

# Standard mode retries throttling and 5xx with backoff; what survives it becomes a typed error
# that the state machine retries again, more slowly.
# (botocore's "max_attempts" counts retries; "total_max_attempts" counts the first try as well.)
_CLIENT_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=3, read_timeout=5)
_TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "LimitExceededException",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "KMSInternalException",
        "DependencyTimeoutException",
    }
)


@snapshot.forget_on_restore
@functools.cache
def client(service: str) -> Any:
    """A shared client for `service`, created on first use with the function's environment."""
    return boto3.session.Session().client(service, config=_CLIENT_CONFIG)


def is_transient(error: BaseException) -> bool:
    """Throttling, a 5xx, or a connection that failed: worth trying again later."""
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in _TRANSIENT_CODES or status >= 500
    return isinstance(error, BotoConnectionError | HTTPClientError | BotoCoreError)


def transient_cause(error: BaseException) -> BaseException | None:
    """The first transient AWS error in an exception's cause chain (wrappers hide them)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if is_transient(current):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def call_with_transient_mapping(
    call: Callable[[], Any], transient_error: type[Exception], what: str, ignore: tuple[str, ...] = ()
) -> Any:
    """Run an AWS call; a transient failure becomes `transient_error`, an error code in `ignore` is
    None, anything else propagates."""
    try:
        return call()
    except Exception as error:
        if isinstance(error, ClientError) and error_code(error) in ignore:
            return None
        cause = transient_cause(error)
        if cause is None:
            raise
        raise transient_error(
            f"{what}: {type(cause).__name__} {getattr(cause, 'response', {}).get('Error', {}).get('Code', '')}".rstrip()
        ) from error


def append_item(dynamodb: Any, table_name: str, item: dict[str, Any], what: str) -> dict[str, Any] | None:
    """PutItem only if the key is free: None when written, else the item that holds the key.

    Append-only tables are written this way and nothing else: a retried write finds its own item,
    a different one finds what it would have overwritten. Transient failures raise StorageUnavailable.
    """
    try:
        call_with_transient_mapping(
            lambda: dynamodb.put_item(
                TableName=table_name,
                Item=item,
                ConditionExpression="attribute_not_exists(TransactionID)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            ),
            StorageUnavailable,
            f"DynamoDB PutItem on {what}",
        )
    except ClientError as error:
        if error_code(error) != "ConditionalCheckFailedException":
            raise
        existing: dict[str, Any] = error.response["Item"]
        return existing
    return None


def payment_items(
    dynamodb: Any,
    table_name: str,
    transaction_id: str,
    what: str,
    *,
    projection: str | None = None,
    sort_key_prefix: tuple[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Every item of one payment (partition key TransactionID), read consistently, all pages.

    `sort_key_prefix` = (attribute, prefix) keeps the items whose sort key begins with prefix.
    Transient failures raise StorageUnavailable.
    """
    condition = "TransactionID = :id"
    values: dict[str, Any] = {":id": {"S": transaction_id}}
    if sort_key_prefix is not None:
        attribute, prefix = sort_key_prefix
        condition += f" AND begins_with({attribute}, :prefix)"
        values[":prefix"] = {"S": prefix}
    request: dict[str, Any] = {
        "TableName": table_name,
        "KeyConditionExpression": condition,
        "ExpressionAttributeValues": values,
        "ConsistentRead": True,
    }
    if projection is not None:
        request["ProjectionExpression"] = projection
    pages = call_with_transient_mapping(
        lambda: list(dynamodb.get_paginator("query").paginate(**request)),
        StorageUnavailable,
        f"DynamoDB Query on {what}",
    )
    return [item for page in pages for item in page["Items"]]
