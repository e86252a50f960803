"""The adapters against moto in process (`mock_aws`): real boto3 calls, no server, a fresh account per test."""

import boto3
import pytest
from moto import mock_aws

from payments import topology

REGION = "us-east-1"


@pytest.fixture
def aws(monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield


@pytest.fixture
def dynamodb(aws):
    client = boto3.client("dynamodb", region_name=REGION)
    for table in topology.TABLES:
        client.create_table(
            TableName=table.name,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": key.name, "AttributeType": key.type} for key in (table.partition_key, table.sort_key)
            ],
            KeySchema=[
                {"AttributeName": table.partition_key.name, "KeyType": "HASH"},
                {"AttributeName": table.sort_key.name, "KeyType": "RANGE"},
            ],
        )
    return client


def items_of(client, table, transaction_id):
    return client.query(
        TableName=table,
        KeyConditionExpression="TransactionID = :id",
        ExpressionAttributeValues={":id": {"S": transaction_id}},
        ConsistentRead=True,
    )["Items"]


@pytest.fixture
def tables_with_vault(dynamodb):
    table = topology.CARD_VAULT_TABLE
    dynamodb.create_table(
        TableName=table.name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": k.name, "AttributeType": k.type} for k in table.keys],
        KeySchema=[{"AttributeName": table.partition_key.name, "KeyType": "HASH"}],
    )
    return dynamodb
