"""CallProcessor with its real adapters (KMS, the vault, the audit table) and the tests' own processor:
the CVV reaches the processor, and leaves the vault exactly when the processor has answered."""

import os

import boto3
import pytest

from local.payment_requests import DECLINING, TEST_CVV, VISA
from payments import aws, crypto, ledger, topology
from payments.charging import call_processor
from payments.errors import (
    CardNotVaulted,
    ChargeRefused,
    ProcessorRejected,
    ProcessorTimeout,
    ProcessorUnavailable,
    StorageUnavailable,
)
from payments.ledger import LedgerRepository
from payments.processors import registry
from payments.recording import record_progress, record_success
from payments.state import ChargeEvent, ProcessorOutcome
from payments.vault import CardVault, VaultedCard
from tests.adapters.conftest import REGION, items_of
from tests.unit.fake_processor import LoopbackPay

EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:PaymentWorkflow:order-ab"


@pytest.fixture
def processor(tables_with_vault, monkeypatch):
    aws.client.cache_clear()
    crypto._masker.cache_clear()
    kms = boto3.client("kms", region_name=REGION)
    for name, value in {
        topology.PAYMENT_KMS_KEY_ARN: kms.create_key()["KeyMetadata"]["Arn"],
        topology.AUDIT_KMS_KEY_ARN: kms.create_key()["KeyMetadata"]["Arn"],
        topology.DYNAMODB_TABLE_NAME: topology.LEDGER_TABLE.name,
        topology.DYNAMODB_AUDIT_TABLE_NAME: topology.AUDIT_TABLE.name,
        topology.CARD_VAULT_TABLE_NAME: topology.CARD_VAULT_TABLE.name,
    }.items():
        monkeypatch.setenv(name, value)
    fake = LoopbackPay()
    monkeypatch.setattr(registry, "processor_for", lambda processor_id: fake)
    yield fake
    aws.client.cache_clear()
    crypto._masker.cache_clear()


def vault():
    return CardVault(topology.CARD_VAULT_TABLE.name, _key(), 900)


def _key():
    return os.environ[topology.PAYMENT_KMS_KEY_ARN]


def charge_event(number=VISA, retry_count=0, amount="25.00", token_amount=None):
    """CallProcessor's input once Tokenize, LedgerInitiated and LedgerPending have run; the SecureToken
    made for `token_amount` (by default the payment's own amount)."""
    vault().deposit("order-ab", VaultedCard(number, 12, 2031), TEST_CVV, "fp")
    token = crypto.encrypt_token(
        {"Type": "card", "Number": number, "ExpiryMonth": 12, "ExpiryYear": 2031},
        key_arn=_key(),
        binding=crypto.TokenBinding("order-ab", token_amount or amount, "USD", "loopbackpay"),
    )
    payment = {
        "TransactionID": "order-ab",
        "Amount": amount,
        "Currency": "USD",
        "ProcessorID": "loopbackpay",
        "PaymentMethodType": "card",
        "SecureToken": token,
    }
    event = ChargeEvent(Payment=payment, ExecutionArn=EXECUTION, RetryCount=retry_count)
    # What the workflow has written by the time CallProcessor runs: entries 1 and 2.
    repository = LedgerRepository(topology.LEDGER_TABLE.name)
    for status in (ledger.INITIATED, ledger.PENDING):
        record_progress(repository, event.Payment, status, EXECUTION)
    return event


@pytest.mark.parametrize("number", [VISA, DECLINING], ids=["approved", "declined"])
def test_the_cvv_reaches_the_processor_and_leaves_the_vault_once_it_answered(processor, tables_with_vault, number):
    charged = call_processor(charge_event(number), actor="PaymentCallProcessor", seconds_left=lambda: 60)

    assert processor.cvvs_sent == [TEST_CVV]
    assert charged.result["status"] in ("captured", "declined")
    assert vault().cvv("order-ab") is None
    assert vault().card("order-ab").number == number  # the card itself goes with the terminal entry
    # The sale attempt was claimed before the sale left; then the sale's own record
    assert sorted(r["Operation"]["S"] for r in items_of(tables_with_vault, topology.AUDIT_TABLE.name, "order-ab")) == [
        "charge",
        "sale-attempt",
    ]


def test_a_rejected_request_was_answered_too_so_the_cvv_goes(processor):
    processor.sale_error = ProcessorRejected("loopbackpay: bad request")

    with pytest.raises(ProcessorRejected):
        call_processor(charge_event(), actor="PaymentCallProcessor", seconds_left=lambda: 60)

    assert vault().cvv("order-ab") is None


@pytest.mark.parametrize("error", [ProcessorTimeout("no answer"), ProcessorUnavailable("down")])
def test_without_an_answer_the_cvv_stays_for_the_retry(processor, error):
    processor.sale_error = error

    with pytest.raises(type(error)):
        call_processor(charge_event(), actor="PaymentCallProcessor", seconds_left=lambda: 60)

    assert vault().cvv("order-ab") == TEST_CVV


def test_a_retry_that_finds_the_earlier_sale_removes_the_cvv(processor, monkeypatch):
    # Given a first attempt whose sale went through but whose answer was lost
    processor.lose_next_answer = True
    event = charge_event()
    with pytest.raises(ProcessorTimeout):
        call_processor(event, actor="PaymentCallProcessor", seconds_left=lambda: 60)
    assert vault().cvv("order-ab") == TEST_CVV

    # When the retry asks (no real waiting here) and finds it
    monkeypatch.setattr("payments.exactly_once.time.sleep", lambda seconds: None)
    retried = ChargeEvent(Payment=event.Payment, ExecutionArn=EXECUTION, RetryCount=1)
    charged = call_processor(retried, actor="PaymentCallProcessor", seconds_left=lambda: 60)

    # Then nothing more was sent, and the CVV is gone
    assert charged.found_by_query and len(processor.sales) == 1
    assert vault().cvv("order-ab") is None


def test_a_sale_is_never_sent_without_the_cvv_the_customer_gave(processor):
    # Given the CVV already gone from the vault (expired, or removed after an answer)
    event = charge_event()
    vault().remove_cvv("order-ab")

    with pytest.raises(CardNotVaulted):
        call_processor(event, actor="PaymentCallProcessor", seconds_left=lambda: 60)

    assert processor.sales == []


def test_an_answered_sale_is_not_lost_when_the_cvv_cannot_be_removed(processor, monkeypatch):
    def unavailable(self, transaction_id):
        raise StorageUnavailable("DynamoDB UpdateItem on the card vault: ThrottlingException")

    monkeypatch.setattr(CardVault, "remove_cvv", unavailable)

    charged = call_processor(charge_event(), actor="PaymentCallProcessor", seconds_left=lambda: 60)

    assert charged.result["status"] == "captured" and len(processor.sales) == 1


def settle(event):
    outcome = ProcessorOutcome(Status="APPROVED", ProcessorTransactionID="lp_1", ApprovalCode="LP")
    record_success(LedgerRepository(topology.LEDGER_TABLE.name), event.Payment, 2, outcome, EXECUTION)


@pytest.mark.parametrize(
    "forge",
    [
        lambda event: event,
        lambda event: event.copy_with(Payment=event.Payment.copy_with(Amount="4999.00")),
        lambda event: event.copy_with(RetryCount=3),
    ],
    ids=["as-recorded", "another-amount", "posing-as-a-retry"],
)
def test_a_settled_payments_input_replayed_charges_nothing(processor, forge):
    # Given a payment charged once and settled
    event = charge_event()
    call_processor(event, actor="PaymentCallProcessor", seconds_left=lambda: 60)
    settle(event)

    # When its recorded CallProcessor input is invoked again, as it is or forged
    with pytest.raises(ChargeRefused):
        call_processor(forge(event), actor="PaymentCallProcessor", seconds_left=lambda: 60)

    # Then nothing more reached the processor
    assert len(processor.sales) == 1 and processor.log.count("lookup") == 0


@pytest.mark.parametrize(
    "change",
    [{"Amount": "4999.00"}, {"Currency": "EUR"}, {"SecureToken": "AYADeJ-another"}, {"Capture": "manual"}],
    ids=["amount", "currency", "token", "capture"],
)
def test_an_input_that_differs_from_the_pending_entry_charges_nothing(processor, change):
    event = charge_event()
    forged = event.copy_with(Payment=event.Payment.copy_with(**change))

    with pytest.raises(ChargeRefused):
        call_processor(forged, actor="PaymentCallProcessor", seconds_left=lambda: 60)

    assert processor.sales == []


def test_a_payment_the_ledger_does_not_hold_as_pending_is_not_charged(processor):
    event = charge_event()
    other = event.copy_with(ExecutionArn=EXECUTION + "-other")

    with pytest.raises(ChargeRefused):
        call_processor(other, actor="PaymentCallProcessor", seconds_left=lambda: 60)

    assert processor.sales == []


def test_a_token_made_for_another_amount_is_refused_before_any_processor_call(processor):
    # Given a ledger and an input that agree on 30.00, and a SecureToken Tokenize made for 25.00
    event = charge_event(amount="30.00", token_amount="25.00")

    with pytest.raises(ChargeRefused, match="made for another charge"):
        call_processor(event, actor="PaymentCallProcessor", seconds_left=lambda: 60)

    assert processor.log == []


def test_an_attempt_that_starts_counting_again_still_asks_about_the_sale_on_record(processor, monkeypatch):
    # Given a first attempt that charged and whose answer was lost: its claim is in the audit trail
    processor.lose_next_answer = True
    event = charge_event()
    with pytest.raises(ProcessorTimeout):
        call_processor(event, actor="PaymentCallProcessor", seconds_left=lambda: 60)

    # When CallProcessor runs again with RetryCount 0, as a redrive runs it
    monkeypatch.setattr("payments.exactly_once.time.sleep", lambda seconds: None)
    charged = call_processor(event, actor="PaymentCallProcessor", seconds_left=lambda: 60)

    # Then it asked before sending, found the sale, and sent nothing more
    assert processor.log == ["sale", "lookup"]
    assert charged.found_by_query and len(processor.sales) == 1
