"""The audit trail's conditional appends: a record is written once, a different one under its AuditID is refused."""

import pytest

from payments import chain, topology
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

    with pytest.raises(AuditConflict) as conflict:
        repository.append_record(AuditRecord("order-ab", EXECUTION, call(Outcome="DECLINED", ResultCode="1")))

    [item] = items_of(dynamodb, TABLE, "order-ab")
    assert item["Outcome"] == {"S": "APPROVED"}
    assert conflict.value.existing["Outcome"] == "APPROVED" and conflict.value.existing["Attempt"] == 1


def sale_attempt(attempt=1):
    return call("sale-attempt", attempt, AuditID="sale-attempt#01", Outcome="SENDING", EncryptedResponse=None)


def chained_items(dynamodb):
    return sorted(items_of(dynamodb, TABLE, "order-ab"), key=lambda item: int(item["ChainSeq"]["N"]))


def test_records_are_chained_in_the_order_they_are_written_not_by_audit_id(repository, dynamodb):
    # The marker is written before the sale; its AuditID sorts after the sale's record
    repository.append_record(AuditRecord("order-ab", EXECUTION, sale_attempt()))
    repository.append_record(AuditRecord("order-ab", EXECUTION, call()))

    marker, sale = chained_items(dynamodb)
    assert (marker["AuditID"]["S"], marker["ChainSeq"], marker["PrevHash"]) == (
        "sale-attempt#01",
        {"N": "1"},
        {"S": chain.GENESIS},
    )
    assert sale["ChainSeq"] == {"N": "2"} and sale["PrevHash"] == marker["EntryHash"]
    assert chain.verify_audit_chain("order-ab", [marker, sale]) == []


def test_a_retry_after_later_records_is_still_a_no_op(repository, dynamodb):
    # Given the marker and the sale's record, then the marker's write retried (its response was lost)
    repository.append_record(AuditRecord("order-ab", EXECUTION, sale_attempt()))
    repository.append_record(AuditRecord("order-ab", EXECUTION, call()))
    repository.append_record(AuditRecord("order-ab", EXECUTION, sale_attempt()))

    # Then nothing was added, and the chain still holds
    items = chained_items(dynamodb)
    assert [item["AuditID"]["S"] for item in items] == ["sale-attempt#01", call().AuditID]
    assert chain.verify_audit_chain("order-ab", items) == []


def test_a_second_claim_of_a_taken_marker_is_a_conflict(repository, dynamodb):
    repository.append_record(AuditRecord("order-ab", EXECUTION, sale_attempt()))

    with pytest.raises(AuditConflict) as conflict:
        repository.append_record(AuditRecord("order-ab", EXECUTION, sale_attempt(attempt=2)))

    assert conflict.value.existing["AuditID"] == "sale-attempt#01" and conflict.value.existing["Attempt"] == 1
    assert len(items_of(dynamodb, TABLE, "order-ab")) == 1
