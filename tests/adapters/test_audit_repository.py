"""The audit trail's conditional appends: a record is written once, a different one under its AuditID is refused."""

import pytest

from payments import topology
from payments.audit import AuditConflict, AuditRecord, AuditRepository, ProcessorCallRecord, persist_payment_audit_trail
from tests.adapters.conftest import items_of

TABLE = topology.AUDIT_TABLE.name
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:PaymentWorkflow:order-ab"


def call(operation="ccsale", attempt=1, **changes):
    values = {
        "AuditID": f"2026-11-27T06:00:00.000000Z#{operation}#{attempt}",
        "Operation": operation,
        "Attempt": attempt,
        "Outcome": "APPROVED",
        "ResultCode": "0",
        "LatencyMs": 40,
        "EncryptedQuery": "AYADeJ-query",
        "EncryptedResponse": "AYADeJ-response",
        "Actor": "PaymentCallProcessor",
        "CreatedAt": "2026-11-27T06:00:00.000000Z",
    }
    return ProcessorCallRecord(**{**values, **changes})


@pytest.fixture
def repository(dynamodb):
    return AuditRepository(TABLE, client=dynamodb)


def test_each_call_is_one_record(repository, dynamodb):
    ids = persist_payment_audit_trail(repository, "order-ab", EXECUTION, [call("txnquery", 2), call("ccsale", 2)])

    assert len(ids) == 2
    assert sorted(item["Operation"]["S"] for item in items_of(dynamodb, TABLE, "order-ab")) == ["ccsale", "txnquery"]


def test_a_record_written_ahead_and_again_by_the_audit_step_is_stored_once(repository, dynamodb):
    repository.append_record(AuditRecord("order-ab", EXECUTION, call()))
    repository.append_record(AuditRecord("order-ab", EXECUTION, call()))

    assert len(items_of(dynamodb, TABLE, "order-ab")) == 1


def test_a_different_record_under_a_taken_audit_id_is_refused(repository, dynamodb):
    repository.append_record(AuditRecord("order-ab", EXECUTION, call()))

    with pytest.raises(AuditConflict):
        repository.append_record(AuditRecord("order-ab", EXECUTION, call(Outcome="DECLINED", ResultCode="1")))

    [item] = items_of(dynamodb, TABLE, "order-ab")
    assert item["Outcome"] == {"S": "APPROVED"}
