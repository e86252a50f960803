"""Adding a processor touches its adapter, the registry and the currency list, and nothing else.

The tests' own LoopbackPay (fake_processor.py) is registered here the way a real adapter would
be; the request model, the exactly-once protocol, normalization and the ledger rules then
work with it unchanged.
"""

from types import MappingProxyType

import pytest

from local.payment_requests import card_request
from payments import currencies
from payments.errors import InvalidPaymentRequest
from payments.intake import parse_payment_request
from payments.processors import registry
from payments.recording import _approval_in
from payments.state import WorkflowState
from tests.unit import fake_processor


@pytest.fixture
def loopbackpay(monkeypatch):
    # The three places a new processor is added:
    monkeypatch.setattr(
        registry, "ADAPTERS", MappingProxyType({**registry.ADAPTERS, "loopbackpay": "tests.unit.fake_processor"})
    )
    monkeypatch.setattr(
        currencies,
        "PROCESSOR_CURRENCIES",
        MappingProxyType({**currencies.PROCESSOR_CURRENCIES, "loopbackpay": fake_processor.CURRENCIES}),
    )
    return fake_processor.INSTANCE


def test_a_request_names_the_new_processor_in_its_own_currencies(loopbackpay):
    request = parse_payment_request(card_request(processor_id="loopbackpay", currency="NZD"))

    assert request.ProcessorID == "loopbackpay"
    with pytest.raises(InvalidPaymentRequest) as rejected:
        parse_payment_request(card_request(processor_id="loopbackpay", currency="EUR"))
    assert rejected.value.field == "Currency"


def test_an_unregistered_processor_is_refused():
    with pytest.raises(InvalidPaymentRequest) as rejected:
        parse_payment_request(card_request(processor_id="loopbackpay"))
    assert rejected.value.field == "ProcessorID"


def test_the_registry_hands_out_the_new_adapter_and_its_normalizer(loopbackpay):
    assert registry.processor_for("loopbackpay") is loopbackpay
    outcome = registry.normalize("loopbackpay", {"status": "captured", "id": "lp_9"})
    assert (outcome.Status, outcome.ProcessorTransactionID) == ("APPROVED", "lp_9")


def test_the_ledger_fallback_reads_an_approval_in_the_new_processors_format(loopbackpay):
    # Given CallProcessor returned an approval and a later step failed before Normalize
    state = WorkflowState(
        Payment={
            "TransactionID": "order-ab",
            "Amount": "25.00",
            "Currency": "USD",
            "ProcessorID": "loopbackpay",
            "PaymentMethodType": "card",
            "SecureToken": "AYADeJ",
        },
        Processor={"Result": {"status": "captured", "id": "lp_7"}},
    )

    # Then the terminal entry would record the money as taken
    approval = _approval_in(state)
    assert approval is not None and approval.ProcessorTransactionID == "lp_7"
