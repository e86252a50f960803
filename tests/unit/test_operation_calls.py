"""CallOperationProcessor's rules against the processor port, on a fake clock: the settlement question
before a void or a refund, the claim-and-ask protocol with the OperationID as the reference, and a
request refused when sent again read as an outcome unknown (the first one may have landed)."""

from dataclasses import dataclass, field

import pytest

from payments.errors import ChargeRefused, ProcessorRejected, ProcessorTimeout
from payments.exactly_once import CallRecorder
from payments.ledger import LedgerEntry
from payments.operation_calls import refuse_unless_pending, send_operation
from payments.operation_state import OperationFacts
from payments.operations import OperationRefused
from payments.processors.port import AuditView, ProcessorTimeouts
from tests.unit.test_charging import ClaimsOnRecord, FakeClock

EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:PaymentOperationWorkflow:order-ab-r1"


@dataclass(frozen=True)
class Call:
    operation: str
    result: dict
    started_at: str = "2026-11-27T12:00:00.000000Z"
    latency_ms: int = 4


@dataclass
class Processor:
    """Just what an operation needs of a processor, with a log of what it was asked."""

    processor_id: str = "loopbackpay"
    timeouts: ProcessorTimeouts = field(default_factory=lambda: ProcessorTimeouts(connect=0.5, read=2.0))
    settled: bool = True
    held: list = field(default_factory=list)  # operations the processor holds, by OperationID
    reject_sends: bool = False
    log: list = field(default_factory=list)

    def settlement_of(self, txn_id):
        self.log.append("settlement")
        return Call("txnquery", {}), self.settled

    def send_operation(self, instruction):
        self.log.append(f"send {instruction.kind}")
        if self.reject_sends:
            raise ProcessorRejected("Converge ccreturn: error 5040 Invalid Transaction ID", Call("ccreturn", {}))
        self.held.append(instruction.operation_id)
        return Call("ccreturn", {"ssl_result": "0", "ssl_txn_id": "RET-1"})

    def find_by_merchant_transaction_id(self, reference, since):
        self.log.append("lookup")
        return Call("txnquery", {"listed": str(self.held.count(reference))})

    def operation_found(self, lookup, instruction):
        return {"ssl_result_message": "APPROVAL"} if lookup.result["listed"] != "0" else None

    def audit_view(self, call):
        return AuditView(call.operation, "APPROVED", "0", {}, {}, call.started_at, call.latency_ms)


FACTS = OperationFacts(
    Operation="refund",
    OperationID="order-ab-r1",
    TransactionID="order-ab",
    Amount="10.00",
    Currency="USD",
    ProcessorID="loopbackpay",
    ProcessorTransactionID="SALE-1",
)


def run(processor, facts=FACTS, claims=None, retried=False, seconds_left=900.0):
    clock = FakeClock(processor.log)
    claims = claims or ClaimsOnRecord(processor.log)
    recorder = CallRecorder(facts.audit_partition, EXECUTION, 1, "actor", processor, lambda _: "sealed", None)
    return send_operation(
        facts,
        processor=processor,
        attempts=claims,
        recorder=recorder,
        retried=retried,
        seconds_left=lambda: seconds_left,
        sleep=clock.sleep,
        clock=clock,
    )


def test_a_refund_asks_whether_the_charge_settled_then_claims_and_sends_once():
    processor = Processor()

    result = run(processor)

    assert processor.log == ["settlement", "claim 1", "send refund"]
    assert result.result["ssl_txn_id"] == "RET-1" and processor.held == ["order-ab-r1"]


@pytest.mark.parametrize(
    ("kind", "settled", "reason"), [("refund", False, "NOT_SETTLED"), ("void", True, "ALREADY_SETTLED")]
)
def test_a_refund_of_an_unsettled_charge_or_a_void_of_a_settled_one_is_refused_with_nothing_sent(kind, settled, reason):
    processor = Processor(settled=settled)
    facts = FACTS.copy_with(Operation=kind, Amount="25.00")

    with pytest.raises(OperationRefused) as refused:
        run(processor, facts)

    assert refused.value.reason == reason and processor.log == ["settlement"]


def test_a_void_of_an_authorization_never_captured_releases_it_without_asking_about_settlement():
    processor = Processor(settled=False)

    run(processor, FACTS.copy_with(Operation="void", OfAuthorization=True))

    assert processor.log == ["claim 1", "send void"]


def test_a_retry_finds_the_operation_by_its_id_and_sends_nothing():
    processor = Processor()
    claims = ClaimsOnRecord(processor.log)
    run(processor, claims=claims)  # sent; say its answer was lost

    again = run(processor, claims=claims, retried=True)

    assert again.found_by_query and processor.held == ["order-ab-r1"]
    assert processor.log[3:] == ["sleep 5.5", "lookup"]


def test_a_request_refused_when_sent_again_leaves_the_outcome_unknown():
    # The first send may have landed where the lookup cannot show it: a refusal now proves nothing.
    processor = Processor(reject_sends=True)
    claims = ClaimsOnRecord(processor.log)
    with pytest.raises(ProcessorRejected):
        run(processor, claims=claims)  # the first send: a rejection is a rejection

    with pytest.raises(ProcessorTimeout, match="sent again and rejected"):
        run(processor, claims=claims, retried=True)


def test_a_retry_without_time_for_the_wait_and_three_calls_asks_later():
    # 5.5 s of wait, then the lookup, the settlement question and the send: 3 x 2.5 s, and a second
    processor = Processor()
    claims = ClaimsOnRecord(processor.log)
    run(processor, claims=claims)

    with pytest.raises(ProcessorTimeout, match="not enough time"):
        run(processor, claims=claims, retried=True, seconds_left=13.9)
    run(processor, claims=claims, retried=True, seconds_left=14.1)


def entry(number, status, amount="25.00", operation_id=None, **extra):
    return LedgerEntry(
        TransactionID="order-ab",
        EntryNumber=number,
        Status=status,
        SecureToken="token",
        Amount=amount,
        Currency="USD",
        ProcessorID="loopbackpay",
        ExecutionArn=EXECUTION if operation_id else "arn:payment",
        CreatedAt="2026-11-27T12:00:00Z",
        OperationID=operation_id,
        **extra,
    )


AUTHORIZED = [
    entry(1, "PAYMENT-INITIATED"),
    entry(2, "PAYMENT-PENDING"),
    entry(3, "PAYMENT-AUTHORIZED", ProcessorTransactionID="SALE-1"),
]
VOID_PENDING = [
    entry(4, "VOID-INITIATED", operation_id="order-ab-r1"),
    entry(5, "VOID-PENDING", operation_id="order-ab-r1"),
]
VOID = FACTS.copy_with(Operation="void", Amount="25.00", OfAuthorization=True)


def test_only_an_operation_the_ledger_holds_as_pending_as_asked_is_sent():
    refuse_unless_pending([*AUTHORIZED, *VOID_PENDING], VOID, EXECUTION)  # as admitted: goes on

    forged = [
        VOID.copy_with(OfAuthorization=False),  # would send ccvoid and skip nothing it should not
        VOID.copy_with(Amount="20.00"),
        VOID.copy_with(ProcessorTransactionID="SALE-9"),
    ]
    for facts in forged:
        with pytest.raises(ChargeRefused):
            refuse_unless_pending([*AUTHORIZED, *VOID_PENDING], facts, EXECUTION)
    with pytest.raises(ChargeRefused, match="ended"):
        ended = entry(6, "VOID-SUCCESS", operation_id="order-ab-r1")
        refuse_unless_pending([*AUTHORIZED, *VOID_PENDING, ended], VOID, EXECUTION)
