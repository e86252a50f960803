"""The exactly-once protocol of CallProcessor, against the processor port, on a fake clock.

The processor here is the tests' own second adapter (tests/unit/fake_processor.py): the
protocol must hold for any processor, and nothing here waits for real. What decides whether an
attempt asks before it sends is the sale attempts on record, never the retry count.
"""

import datetime as dt

import pytest

from payments.charging import CallRecorder, charge
from payments.errors import ChargeRefused, ProcessorRejected, ProcessorTimeout, ProcessorUnavailable
from payments.processors.port import CardDetails
from payments.sale_attempts import SaleAttempt, SaleAttemptTaken
from payments.state import ChargeEvent
from tests.unit.fake_processor import FakeCall, LoopbackPay

EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:PaymentWorkflow:order-ab"
CARD = CardDetails(number="4111111111111111", expiry_month=12, expiry_year=2099, cvv="847")
START = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
# LoopbackPay: connect 0.5 s, read 2 s. A sale leaves within the claim grace (1 s) of its claim at t,
# or not at all, and lands by t + 1 + 0.5 + 2 x 2 = t + 5.5 s.
LANDS_WITHIN = 5.5


class RecordingAudit:
    """Stands in for the audit table: keeps what is appended, or fails every write."""

    def __init__(self, fail=False):
        self.records, self.fail = [], fail

    def append_record(self, record):
        if self.fail:
            raise RuntimeError("table unavailable")
        self.records.append(record)


class FakeClock:
    """Time that moves only when the code under test sleeps, or a test says so."""

    def __init__(self, log):
        self.now, self.log = START, log

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.log.append(f"sleep {seconds:g}")
        self.now += dt.timedelta(seconds=seconds)

    def advance(self, seconds):
        self.now += dt.timedelta(seconds=seconds)


class ClaimsOnRecord:
    """The sale attempts of one payment, as the audit trail keeps them; claims show in the processor's log."""

    def __init__(self, log):
        self.claims, self.log, self.taken_by_someone_else = {}, log, False

    def on_record(self):
        return list(self.claims.values())

    def claim(self, number, now):
        if number in self.claims or self.taken_by_someone_else:
            raise SaleAttemptTaken(f"sale attempt {number} of this payment is already on record")
        self.claims[number] = SaleAttempt(number, now)
        self.log.append(f"claim {number}")


class Attempt:
    """One CallProcessor run against one processor, one set of claims and one clock."""

    def __init__(self, processor):
        self.processor = processor
        self.clock = FakeClock(processor.log)
        self.claims = ClaimsOnRecord(processor.log)
        self.sources_read = 0
        self.pending_checks = 0
        self.ended = False  # the payment's ledger holds a terminal entry

    def run(
        self,
        retry_count=0,
        audit=None,
        seconds_left=900.0,
        amount="25.00",
        currency="USD",
        card=CARD,
        capture="automatic",
    ):
        payment = {
            "TransactionID": "order-ab",
            "Amount": amount,
            "Currency": currency,
            "ProcessorID": "loopbackpay",
            "PaymentMethodType": "card",
            "SecureToken": "AYADeJ-ciphertext",
            "Capture": capture,
        }
        step = ChargeEvent(Payment=payment, ExecutionArn=EXECUTION, RetryCount=retry_count)
        recorder = CallRecorder(
            "order-ab", EXECUTION, retry_count + 1, "PaymentCallProcessor", self.processor, lambda _: "sealed", audit
        )

        def source():
            self.sources_read += 1
            return card

        def still_pending():
            self.pending_checks += 1
            if self.ended:
                raise ChargeRefused("the payment has already ended; nothing was sent")

        return charge(
            step,
            processor=self.processor,
            source=source,
            card_last4=card.number[-4:],
            recorder=recorder,
            attempts=self.claims,
            still_pending=still_pending,
            seconds_left=lambda: seconds_left,
            sleep=self.clock.sleep,
            clock=self.clock,
        )


def run(processor, **kwargs):
    return Attempt(processor).run(**kwargs)


def with_a_claim_on_record(processor, seconds_ago=0.0):
    """An Attempt whose payment has sale attempt 1 on record, claimed `seconds_ago`."""
    attempt = Attempt(processor)
    attempt.claims.claims[1] = SaleAttempt(1, attempt.clock.now - dt.timedelta(seconds=seconds_ago))
    return attempt


def test_a_first_attempt_claims_then_sends_one_sale_without_waiting_or_asking():
    processor = LoopbackPay()

    result = run(processor)

    assert processor.log == ["claim 1", "sale"]
    assert result.result["status"] == "captured"
    assert not result.found_by_query
    assert [call.Operation for call in result.calls] == ["charge"]


def test_an_attempt_that_finds_a_claim_waits_until_that_sale_has_landed_then_asks():
    processor = LoopbackPay()
    attempt = with_a_claim_on_record(processor, seconds_ago=1.5)

    attempt.run(retry_count=1)

    assert processor.log == ["sleep 4", "lookup", "claim 2", "sale"]


def test_a_claim_older_than_its_landing_time_is_asked_about_at_once():
    # A redrive days later, or a retry after a long backoff
    processor = LoopbackPay()
    attempt = with_a_claim_on_record(processor, seconds_ago=LANDS_WITHIN + 0.001)

    attempt.run(retry_count=1)

    assert processor.log == ["lookup", "claim 2", "sale"]


def test_a_claim_on_record_is_asked_about_whatever_the_retry_count_says():
    # A redrive starts $$.State.RetryCount again at 0: with a claim on record it still asks first
    redriven = LoopbackPay()
    with_a_claim_on_record(redriven, seconds_ago=60).run(retry_count=0)

    assert redriven.log == ["lookup", "claim 2", "sale"]


def test_a_retry_with_no_claim_on_record_still_waits_a_read_timeout_and_asks():
    # The earlier attempt failed before claiming, or ran a version that sent sales without claims
    retried = LoopbackPay()
    run(retried, retry_count=3)

    assert retried.log == ["sleep 2", "lookup", "claim 1", "sale"]


def test_the_lookup_reaches_back_to_the_first_claim():
    processor = LoopbackPay()
    attempt = with_a_claim_on_record(processor, seconds_ago=3 * 86400)
    attempt.claims.claims[2] = SaleAttempt(2, attempt.clock.now - dt.timedelta(seconds=60))

    attempt.run()

    assert processor.looked_since == [(START - dt.timedelta(days=3)).date()]
    assert processor.log == ["lookup", "claim 3", "sale"]


def test_a_payment_that_ended_while_the_attempt_waited_is_not_charged():
    processor = LoopbackPay()
    attempt = with_a_claim_on_record(processor, seconds_ago=1)
    attempt.ended = True  # LedgerFailed wrote the terminal entry during the wait

    with pytest.raises(ChargeRefused):
        attempt.run()

    assert processor.sales == [] and attempt.pending_checks == 1


def test_an_attempt_after_a_lost_answer_finds_the_earlier_sale_and_sends_nothing():
    # Given a first attempt that charged but whose answer was lost
    processor = LoopbackPay(lose_next_answer=True)
    attempt = Attempt(processor)
    with pytest.raises(ProcessorTimeout):
        attempt.run()

    # When Step Functions retries, the read timeout later
    attempt.clock.advance(2.5)
    result = attempt.run(retry_count=1)

    # Then the earlier sale is the result, and there is still exactly one
    assert len(processor.sales) == 1
    assert result.found_by_query
    assert result.result == processor.sales[0]
    assert processor.log == ["claim 1", "sale", "sleep 3", "lookup"]
    assert attempt.sources_read == 1  # the CVV was not read again


@pytest.mark.parametrize(
    "other",
    [{"amount": "10.00"}, {"currency": "NZD"}, {"card": CardDetails("5555555555554444", 12, 2099, "847")}],
    ids=["amount", "currency", "card"],
)
def test_a_listed_sale_that_differs_in_amount_currency_or_card_leaves_the_outcome_unknown(other):
    # It may be ours (sent wrongly) or not: neither adopted nor answered with a second sale
    processor = LoopbackPay()
    attempt = Attempt(processor)
    attempt.run(**other)
    attempt.clock.advance(LANDS_WITHIN)

    with pytest.raises(ProcessorTimeout, match="not shown to be ours"):
        attempt.run(retry_count=1)

    assert len(processor.sales) == 1
    assert processor.log.count("sale") == 1


@pytest.mark.parametrize("error", [ProcessorUnavailable("down"), ProcessorRejected("bad"), ProcessorTimeout("slow")])
def test_a_lookup_that_cannot_be_answered_leaves_the_outcome_unknown_and_sends_nothing(error):
    processor = LoopbackPay(lookup_error=error)
    attempt = with_a_claim_on_record(processor, seconds_ago=60)

    with pytest.raises(ProcessorTimeout):
        attempt.run(retry_count=2)

    assert processor.sales == []
    assert "sale" not in processor.log
    assert attempt.sources_read == 0


def test_a_claim_taken_by_another_attempt_sends_nothing_and_leaves_the_outcome_unknown():
    processor = LoopbackPay()
    attempt = Attempt(processor)
    attempt.claims.taken_by_someone_else = True

    with pytest.raises(ProcessorTimeout, match="already on record"):
        attempt.run()

    assert processor.sales == []


def test_an_attempt_without_time_to_wait_and_ask_gives_up_before_asking():
    # A claim just made: the wait (5.5 s) exceeds what is left after two calls and a second (11.4 - 5 - 1)
    processor = LoopbackPay()

    with pytest.raises(ProcessorTimeout, match="not enough time"):
        with_a_claim_on_record(processor).run(retry_count=1, seconds_left=11.4)

    assert processor.log == []


def test_an_attempt_with_exactly_the_time_it_needs_waits_and_asks():
    processor = LoopbackPay()

    with_a_claim_on_record(processor).run(retry_count=1, seconds_left=11.5)

    assert processor.log == ["sleep 5.5", "lookup", "claim 2", "sale"]


def test_a_claim_that_took_longer_than_its_grace_to_record_sends_nothing():
    # Whoever asks about a claim waits from its CreatedAt: a sale sent later than the grace after
    # it could land after they asked. So a slow claim is recorded, and no sale follows it.
    processor = LoopbackPay()
    attempt = Attempt(processor)
    claim = attempt.claims.claim

    def slow_claim(number, now):
        claim(number, now)
        attempt.clock.advance(1.001)

    attempt.claims.claim = slow_claim

    with pytest.raises(ProcessorTimeout, match="to record"):
        attempt.run()

    assert processor.log == ["claim 1"] and processor.sales == []


def test_every_call_is_written_ahead_to_the_audit_trail():
    processor, audit = LoopbackPay(), RecordingAudit()

    result = with_a_claim_on_record(processor, seconds_ago=60).run(retry_count=1, audit=audit)

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


def test_a_manual_capture_payment_is_authorized_not_sold():
    processor = LoopbackPay()

    result = run(processor, capture="manual")

    assert processor.log == ["claim 1", "authorize"]
    assert result.result["status"] == "authorized"


def test_an_authorization_whose_answer_was_lost_is_found_as_an_authorization():
    processor = LoopbackPay(lose_next_answer=True)
    attempt = Attempt(processor)
    with pytest.raises(ProcessorTimeout):
        attempt.run(capture="manual")
    attempt.clock.advance(LANDS_WITHIN)

    result = attempt.run(retry_count=1, capture="manual")

    assert result.found_by_query and processor.log == ["claim 1", "authorize", "lookup"]


def test_a_sale_listed_for_a_payment_meant_to_be_authorized_only_is_not_taken_for_its_authorization():
    processor = LoopbackPay()
    attempt = Attempt(processor)
    attempt.run()  # a sale went out under this TransactionID
    attempt.clock.advance(LANDS_WITHIN)

    with pytest.raises(ProcessorTimeout, match="not shown to be ours"):
        attempt.run(retry_count=1, capture="manual")

    assert processor.log.count("authorize") == 0
