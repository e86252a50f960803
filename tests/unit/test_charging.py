"""The exactly-once protocol of CallProcessor, against the processor port, on a fake clock.

The processor here is the tests' own second adapter (tests/unit/fake_processor.py): the
protocol must hold for any processor, and nothing here waits for real.
"""

import pytest

from payments.charging import CallRecorder, charge
from payments.errors import ProcessorRejected, ProcessorTimeout, ProcessorUnavailable
from payments.processors.port import CardDetails
from payments.state import ChargeEvent
from tests.unit.fake_processor import FakeCall, LoopbackPay

EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:PaymentWorkflow:order-ab"
CARD = CardDetails(number="4111111111111111", expiry_month=12, expiry_year=2099, cvv="847")


class RecordingAudit:
    """Stands in for the audit table: keeps what is appended, or fails every write."""

    def __init__(self, fail=False):
        self.records, self.fail = [], fail

    def append_record(self, record):
        if self.fail:
            raise RuntimeError("table unavailable")
        self.records.append(record)


def event(retry_count=0, amount="25.00"):
    payment = {
        "TransactionID": "order-ab",
        "Amount": amount,
        "Currency": "USD",
        "ProcessorID": "loopbackpay",
        "PaymentMethodType": "card",
        "SecureToken": "AYADeJ-ciphertext",
    }
    return ChargeEvent(Payment=payment, ExecutionArn=EXECUTION, RetryCount=retry_count)


def run(processor, retry_count=0, audit=None, seconds_left=900.0, amount="25.00"):
    step = event(retry_count, amount)
    recorder = CallRecorder(
        "order-ab", EXECUTION, retry_count + 1, "PaymentCallProcessor", processor, lambda payload: "sealed", audit
    )
    sleeps = processor.log

    def sleep(seconds):
        sleeps.append(f"sleep {seconds}")

    return charge(
        step, processor=processor, source=lambda: CARD, recorder=recorder, seconds_left=seconds_left, sleep=sleep
    )


def test_a_first_attempt_sends_one_sale_without_waiting_or_asking():
    processor = LoopbackPay()

    result = run(processor)

    assert processor.log == ["sale"]
    assert result.result["status"] == "captured"
    assert not result.found_by_query
    assert [call.Operation for call in result.calls] == ["charge"]


def test_a_retry_waits_one_read_timeout_before_it_asks():
    processor = LoopbackPay()

    run(processor, retry_count=1)

    assert processor.log == ["sleep 2.0", "lookup", "sale"]


def test_a_retry_that_finds_the_earlier_sale_sends_nothing():
    # Given a first attempt that charged but whose answer was lost
    processor = LoopbackPay(lose_next_answer=True)
    with pytest.raises(ProcessorTimeout):
        run(processor)

    # When Step Functions retries
    result = run(processor, retry_count=1)

    # Then the earlier sale is the result, and there is still exactly one
    assert len(processor.sales) == 1
    assert result.found_by_query
    assert result.result == processor.sales[0]
    assert processor.log == ["sale", "sleep 2.0", "lookup"]


def test_a_sale_of_another_amount_is_not_taken_for_ours():
    processor = LoopbackPay()
    run(processor, amount="10.00")

    result = run(processor, retry_count=1, amount="25.00")

    assert not result.found_by_query
    assert [s["amount"] for s in processor.sales] == ["10.00", "25.00"]


@pytest.mark.parametrize("error", [ProcessorUnavailable("down"), ProcessorRejected("bad"), ProcessorTimeout("slow")])
def test_a_lookup_that_cannot_be_answered_leaves_the_outcome_unknown_and_sends_nothing(error):
    processor = LoopbackPay(lookup_error=error)

    with pytest.raises(ProcessorTimeout):
        run(processor, retry_count=2)

    assert processor.sales == []
    assert "sale" not in processor.log


def test_a_retry_without_time_to_wait_and_ask_gives_up_before_asking():
    processor = LoopbackPay()  # connect 0.5 s, read 2 s: waiting and asking needs 2 + 2 x 2.5 + 1 s

    with pytest.raises(ProcessorTimeout, match="not enough time"):
        run(processor, retry_count=1, seconds_left=7.9)

    assert processor.log == []


def test_a_retry_with_just_enough_time_waits_and_asks():
    processor = LoopbackPay()

    run(processor, retry_count=1, seconds_left=8.1)

    assert processor.log == ["sleep 2.0", "lookup", "sale"]


def test_every_call_is_written_ahead_to_the_audit_trail():
    processor, audit = LoopbackPay(), RecordingAudit()

    result = run(processor, retry_count=1, audit=audit)

    assert [r.call.Operation for r in audit.records] == ["lookup", "charge"]
    assert result.persisted == {r.call.AuditID for r in audit.records}
    assert all(call["Persisted"] for call in result.to_state()["Calls"])


def test_a_failed_audit_write_never_loses_the_result():
    processor = LoopbackPay()

    result = run(processor, audit=RecordingAudit(fail=True))

    assert result.result["status"] == "captured"
    assert [call["Persisted"] for call in result.to_state()["Calls"]] == [False]


def test_the_audit_record_is_the_adapters_view_sealed():
    result = run(LoopbackPay())

    [record] = result.calls
    assert (record.Operation, record.Attempt, record.Outcome) == ("charge", 1, "APPROVED")
    assert record.EncryptedQuery == record.EncryptedResponse == "sealed"
    assert record.AuditID == f"{record.CreatedAt}#charge#1"


def test_a_retry_with_exactly_the_time_it_needs_waits_and_asks():
    processor = LoopbackPay()  # the wait (2 s) equals what is left after two calls and a second (8 - 2 x 2.5 - 1)

    run(processor, retry_count=1, seconds_left=8.0)

    assert processor.log == ["sleep 2.0", "lookup", "sale"]


def test_a_call_that_failed_with_an_answer_is_audited_all_the_same():
    # Given the processor answers the sale with a rejection (the call is on the error)
    processor, audit = LoopbackPay(), RecordingAudit()
    rejected_call = FakeCall("charge", {"reference": "order-ab"}, {"status": "rejected"})
    processor.sale_error = ProcessorRejected("loopbackpay: bad request", rejected_call)

    with pytest.raises(ProcessorRejected):
        run(processor, audit=audit)

    [record] = audit.records
    assert (record.TransactionID, record.call.Operation, record.call.Outcome) == ("order-ab", "charge", "ERROR")


def test_the_audit_record_carries_what_the_adapter_reported():
    [record] = run(LoopbackPay()).calls

    assert (record.ResultCode, record.LatencyMs, record.Actor) == ("captured", 3, "PaymentCallProcessor")
