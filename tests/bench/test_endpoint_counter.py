"""The bench's endpoint counter: what reaches the local stack's endpoint, from any process, but the bench's own."""

import base64
import json
import threading
import uuid

from bench.counting import BENCH_MARK, EndpointCounter, OperationIndex
from bench.workload import BenchStackInfo, payment_request, run_one
from local.stack import ObservedRequest

INDEX = OperationIndex()


def request(
    target="", *, body=None, response=None, method="POST", path="/", user_agent="Boto3/1 md/Botocore#1", **headers
):
    all_headers = {"user-agent": user_agent, "content-type": "application/x-amz-json-1.0", **headers}
    if target:
        all_headers["x-amz-target"] = target
    return ObservedRequest(
        method=method,
        path=path,
        query="",
        headers=all_headers,
        body=json.dumps(body or {}).encode(),
        status=200,
        response=json.dumps(response or {}).encode(),
    )


def kms(operation, transaction_id, purpose):
    context = {"transaction_id": transaction_id, "purpose": purpose}
    return request(f"TrentService.{operation}", body={"KeyId": "k", "EncryptionContext": context})


def test_a_handlers_dynamodb_and_kms_calls_are_counted_from_its_worker_and_the_bench_clients_are_not(stack):
    # Given a counter on the running stack, and the bench's marked clients
    counter = EndpointCounter(INDEX)
    stop_observing = stack.observe_requests(counter.observe)
    info = BenchStackInfo.of(stack.info)
    try:
        stack.events_caught_up(30)
        invoked_before = len(stack.runtime.invocations)

        # When the bench pays once (its intake invoke and its DescribeExecution marked)
        counter.start()
        result = run_one(info, payment_request(f"bench-counter-{uuid.uuid4().hex[:8]}", 0))
        stack.events_caught_up(30)
        counts = counter.stop()
        invoked = stack.runtime.invocations[invoked_before:]

        # And then describes the execution once with its marked client and once with an unmarked one
        counter.start()
        info.client("stepfunctions").describe_execution(executionArn=result.execution_arn)
        stack.info.client("stepfunctions").describe_execution(executionArn=result.execution_arn)
        described = counter.stop()
    finally:
        stop_observing()

    # Then the payment was approved, its handlers running in worker processes
    assert result.approved, result.error
    assert stack.runtime.workers.started >= 1

    # And their DynamoDB and KMS calls reached the count, the KMS ones by purpose
    assert counts.calls.get(("dynamodb", "PutItem"), 0) >= 1
    assert counts.dynamodb_write_units >= counts.calls[("dynamodb", "PutItem")]
    assert counts.dynamodb_writes_by_table
    assert counts.kms_by_purpose.get(("GenerateDataKey", "card-intake"), 0) >= 1  # the intake's
    assert counts.kms_by_purpose.get(("Decrypt", "secure-token"), 0) >= 1  # CallProcessor's
    assert counts.of_service("kms") == sum(counts.kms_by_purpose.values())
    # And the intake's StartExecution, from its worker, is counted
    assert counts.calls[("sfn", "StartExecution")] == 1

    # And of the Lambda invokes, every one but the bench's intake invoke (the interpreter's, the stream pump's)
    assert "PaymentIntake" in invoked
    assert counts.calls[("lambda", "Invoke")] == len(invoked) - 1
    assert counts.excluded_requests >= 2  # the intake invoke and the bench's DescribeExecution

    # And of the two DescribeExecutions, only the unmarked one
    assert described.calls[("sfn", "DescribeExecution")] == 1
    assert described.excluded_requests == 1


def test_a_failing_observer_does_not_fail_the_request(stack):
    def broken(request):
        raise RuntimeError("observer bug")

    stop_observing = stack.observe_requests(broken)
    try:
        tables = stack.info.client("dynamodb").list_tables()["TableNames"]
    finally:
        stop_observing()
    assert stack.info.ledger_table in tables


def test_requests_are_named_by_botocores_models():
    lambda_invoke = request(
        method="POST",
        path="/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:PaymentTokenize/invocations",
        authorization="AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/lambda/aws4_request, SignedHeaders=x",
    )
    assert INDEX.identify(lambda_invoke) == ("lambda", "Invoke")
    assert INDEX.identify(request("DynamoDB_20120810.PutItem")) == ("dynamodb", "PutItem")
    assert INDEX.identify(request("DynamoDBStreams_20120810.GetRecords")) == ("dynamodb-streams", "GetRecords")
    assert INDEX.identify(request("TrentService.Decrypt")) == ("kms", "Decrypt")
    assert INDEX.identify(request("AWSEvents.PutEvents")) == ("eventbridge", "PutEvents")
    assert INDEX.identify(request("AWSStepFunctions.StartExecution")) == ("sfn", "StartExecution")


def test_concurrent_requests_are_each_counted_from_their_own_content():
    # Given requests of many payments arriving at once on many server threads
    counter = EndpointCounter(INDEX)
    counter.start()
    item = {"TransactionID": {"S": "t"}, "Blob": {"B": base64.b64encode(b"x" * 2000).decode()}}  # 2 KB: 2 WRU

    def payment(n):
        transaction_id = f"t{n}"
        for purpose in ("card-intake", "secure-token", "audit"):
            counter.observe(kms("GenerateDataKey", transaction_id, purpose))
        counter.observe(kms("Decrypt", transaction_id, "card-intake"))
        counter.observe(kms("Decrypt", transaction_id, "card-intake"))
        counter.observe(kms("Decrypt", transaction_id, "secure-token"))
        counter.observe(request("DynamoDB_20120810.PutItem", body={"TableName": "PaymentLedger", "Item": item}))
        counter.observe(
            request(
                "DynamoDB_20120810.GetItem",
                body={"TableName": "CardVault", "ConsistentRead": True},
                response={"Item": {"TransactionID": {"S": transaction_id}}},
            )
        )
        # A retry is an HTTP request, not another call; the bench's own requests are not counted
        counter.observe(
            request(
                "DynamoDB_20120810.PutItem",
                body={"TableName": "PaymentLedger", "Item": item},
                **{"amz-sdk-request": "attempt=2; max=3"},
            )
        )
        counter.observe(request("AWSStepFunctions.DescribeExecution", user_agent=f"Boto3/1 {BENCH_MARK}"))

    threads = [threading.Thread(target=lambda k=k: [payment(k * 25 + n) for n in range(25)]) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = counter.stop()

    # Then every one of the 200 payments is counted exactly, and attributed to its purpose and payment
    assert counts.calls == {
        ("kms", "GenerateDataKey"): 600,
        ("kms", "Decrypt"): 600,
        ("dynamodb", "PutItem"): 200,
        ("dynamodb", "GetItem"): 200,
    }
    assert counts.kms_by_purpose[("Decrypt", "card-intake")] == 400
    assert counts.kms_most_per_payment == {
        ("GenerateDataKey", "card-intake"): 1,
        ("GenerateDataKey", "secure-token"): 1,
        ("GenerateDataKey", "audit"): 1,
        ("Decrypt", "card-intake"): 2,
        ("Decrypt", "secure-token"): 1,
    }
    assert counts.http_requests == {"kms": 1200, "dynamodb": 600}
    assert counts.dynamodb_write_units == 400.0
    assert counts.dynamodb_read_units == 200.0
    assert counts.dynamodb_writes_by_table["PaymentLedger"][:3] == (200, 400.0, 200)
    assert counts.excluded_requests == 200

    # And nothing more is counted once stopped
    counter.observe(kms("Decrypt", "t0", "card-intake"))
    assert counter.stop() == counts
