"""The local stack's changes to moto (local.moto_patches): work moto repeated is done once, and nothing an
execution changes is shared with another."""

import re
import threading

import jsonpath_ng.ext
import pytest
from moto.stepfunctions.parser.asl.component.component import Component
from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser, ASLParserException
from moto.stepfunctions.parser.asl.utils import json_path

from local import moto_patches
from payments import topology
from statemachine import build


def definition(workflow):
    text = (build.STATEMACHINE_DIR.parent / workflow.asl_path).read_text()
    return re.sub(r"\$\{[A-Za-z0-9]+\}", "arn:aws:lambda:us-east-1:123456789012:function:Step", text)


def components(value, seen=None):
    seen = set() if seen is None else seen
    if id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, Component):
        yield value
        for attribute in vars(value).values():
            yield from components(attribute, seen)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from components(item, seen)
    elif isinstance(value, dict):
        for item in value.values():
            yield from components(item, seen)


@pytest.mark.parametrize("workflow", topology.WORKFLOWS, ids=lambda w: w.name)
def test_a_definition_is_compiled_once_with_every_heap_key_drawn_before_it_is_shared(workflow):
    text = definition(workflow)

    first, _ = AmazonStateLanguageParser.parse(text)
    second, _ = AmazonStateLanguageParser.parse(text)

    assert first is second
    evaluated = [c for c in components(first) if isinstance(c, EvalComponent)]
    retriers = [c for c in evaluated if type(c).__name__ == "MaxAttemptsDecl"]
    assert retriers, "every workflow retries some step"
    # Drawn already: reading the key does not draw a new one (it would race between executions).
    assert all(c._EvalComponent__heap_key is not None for c in evaluated)
    assert len({c.heap_key for c in evaluated}) == len(evaluated)


def test_a_definition_that_does_not_parse_is_still_refused_every_time():
    for _ in range(2):
        with pytest.raises(ASLParserException):
            AmazonStateLanguageParser.parse('{"StartAt": ')


def test_a_jsonpath_is_compiled_once_and_finds_the_same_as_a_fresh_parser():
    data = {"Payment": {"TransactionID": "t-1", "Amounts": [{"Value": "1.00"}, {"Value": "2.00"}]}}
    path = "$.Payment.Amounts[*].Value"

    assert json_path.parse(path) is json_path.parse(path)
    assert jsonpath_ng.ext.parse(path) is json_path.parse(path)
    fresh = jsonpath_ng.ext.parser.ExtendedJsonPathParser().parse(path)
    assert [m.value for m in json_path.parse(path).find(data)] == [m.value for m in fresh.find(data)]
    assert json_path.extract_json("$.Payment.TransactionID", data) == "t-1"


def test_a_wait_for_an_execution_end_returns_when_it_is_announced_or_at_once_if_it_was():
    ends = moto_patches.ExecutionEnds()
    waited: list[bool] = []
    waiter = threading.Thread(target=lambda: waited.append(ends.wait("arn:1", timeout=30)))
    waiter.start()
    ends.announce("arn:1")
    waiter.join(timeout=30)

    assert waited == [True]
    assert ends.wait("arn:1", timeout=0) is True
    assert ends.wait("arn:2", timeout=0) is False


def query_pages(dynamodb, **request):
    """Every page of a Query, as (items, LastEvaluatedKey) pairs."""
    pages, start = [], None
    while True:
        page = dynamodb.query(**request, **({"ExclusiveStartKey": start} if start else {}))
        start = page.get("LastEvaluatedKey")
        pages.append((page["Items"], start))
        if not start:
            return pages


def test_a_query_answers_exactly_as_moto_did_reading_only_what_can_match(monkeypatch):
    import boto3
    from moto import mock_aws
    from moto.dynamodb.models.table import Table

    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName="entries",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "TransactionID", "AttributeType": "S"},
                {"AttributeName": "EntryNumber", "AttributeType": "N"},
                {"AttributeName": "Status", "AttributeType": "S"},
                {"AttributeName": "CreatedAt", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "TransactionID", "KeyType": "HASH"},
                {"AttributeName": "EntryNumber", "KeyType": "RANGE"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "ByStatus",
                    "KeySchema": [
                        {"AttributeName": "Status", "KeyType": "HASH"},
                        {"AttributeName": "CreatedAt", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["Amount"]},
                }
            ],
        )
        for payment in range(40):
            for number, status in enumerate(("PAYMENT-INITIATED", "PAYMENT-PENDING", "PAYMENT-SUCCESS"), 1):
                item = {
                    "TransactionID": {"S": f"t-{payment % 7}-{payment}"},
                    "EntryNumber": {"N": str(number)},
                    "Amount": {"S": f"{payment}.00"},
                    "CreatedAt": {"S": f"2026-11-27T10:{payment % 13:02d}:{number:02d}Z"},
                }
                if payment % 5:  # some entries are not in the index: it is sparse
                    item["Status"] = {"S": status}
                dynamodb.put_item(TableName="entries", Item=item)
        requests = [
            {"KeyConditionExpression": "TransactionID = :t", "ExpressionAttributeValues": {":t": {"S": "t-3-10"}}},
            {
                "KeyConditionExpression": "TransactionID = :t AND EntryNumber > :n",
                "ExpressionAttributeValues": {":t": {"S": "t-3-10"}, ":n": {"N": "1"}},
                "ScanIndexForward": False,
                "Limit": 1,
            },
            {"KeyConditionExpression": "TransactionID = :t", "ExpressionAttributeValues": {":t": {"S": "none"}}},
            {
                "IndexName": "ByStatus",
                "KeyConditionExpression": "#s = :s AND CreatedAt BETWEEN :a AND :b",
                "ExpressionAttributeNames": {"#s": "Status"},
                "ExpressionAttributeValues": {
                    ":s": {"S": "PAYMENT-PENDING"},
                    ":a": {"S": "2026-11-27T10:02"},
                    ":b": {"S": "2026-11-27T10:09"},
                },
                "Limit": 4,
            },
            {
                "IndexName": "ByStatus",
                "KeyConditionExpression": "#s = :s",
                "ExpressionAttributeNames": {"#s": "Status"},
                "FilterExpression": "Amount > :low",
                "ExpressionAttributeValues": {":s": {"S": "PAYMENT-SUCCESS"}, ":low": {"S": "2"}},
                "ScanIndexForward": False,
                "Limit": 3,
            },
        ]
        patched = [query_pages(dynamodb, TableName="entries", **request) for request in requests]
        monkeypatch.setattr(Table, "query", moto_patches._table_query)
        unpatched = [query_pages(dynamodb, TableName="entries", **request) for request in requests]

    assert patched == unpatched
    assert all(pages[0][0] for pages in patched[:2] + patched[3:])  # each but the unknown payment found some


def test_items_of_every_attribute_type_are_written_out_exactly_as_moto_did(monkeypatch):
    import boto3
    from moto import mock_aws
    from moto.core.serialize import BaseJSONSerializer

    every_type = {
        "TransactionID": {"S": "t-1"},
        "Amount": {"N": "25.00"},
        "Ciphertext": {"B": b"\x00\x01binary\xff"},
        "Tags": {"SS": ["a", "b"]},
        "Numbers": {"NS": ["1", "2.5"]},
        "Blobs": {"BS": [b"\x01", b"\x02\x03"]},
        "Settled": {"BOOL": False},
        "Nothing": {"NULL": True},
        "Card": {"M": {"Brand": {"S": "VISA"}, "Last4": {"S": "1111"}, "Raw": {"B": b"\x10"}}},
        "Calls": {"L": [{"S": "ccsale"}, {"N": "2"}, {"M": {"Ok": {"BOOL": True}}}, {"L": []}]},
        "Empty": {"M": {}},
    }

    def answers(dynamodb):
        got = dynamodb.get_item(TableName="things", Key={"TransactionID": {"S": "t-1"}})["Item"]
        scanned = dynamodb.scan(TableName="things")["Items"]
        queried = dynamodb.query(
            TableName="things",
            KeyConditionExpression="TransactionID = :t",
            ExpressionAttributeValues={":t": {"S": "t-1"}},
        )["Items"]
        old = dynamodb.put_item(TableName="things", Item=every_type, ReturnValues="ALL_OLD")["Attributes"]
        return got, scanned, queried, old

    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName="things",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "TransactionID", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "TransactionID", "KeyType": "HASH"}],
        )
        dynamodb.put_item(TableName="things", Item=every_type)
        patched = answers(dynamodb)
        monkeypatch.setattr(BaseJSONSerializer, "_serialize_type_structure", moto_patches._serialize_structure)
        unpatched = answers(dynamodb)

    assert patched == unpatched
    assert patched[0] == every_type  # and both as written
