"""api_response: the API response, built from the payment facts and the terminal ledger entry."""

from payments import ledger
from payments.ledger import LedgerEntry
from payments.responses import api_response
from payments.state import CardFacts, PaymentFacts

SECURE_TOKEN = "AYADeJ-ciphertext-of-the-card"
VISA_1111 = CardFacts(Brand="VISA", Last4="1111")


def payment(card=VISA_1111):
    return PaymentFacts(
        TransactionID="order-8812-1",
        Amount="25.00",
        Currency="USD",
        ProcessorID="elavon",
        PaymentMethodType="card" if card else "processor_token",
        SecureToken=SECURE_TOKEN,
        Card=card,
    )


def terminal(status, **fields):
    return LedgerEntry(
        TransactionID="order-8812-1",
        EntryNumber=3,
        Status=status,
        SecureToken=SECURE_TOKEN,
        Amount="25.00",
        Currency="USD",
        ProcessorID="elavon",
        ExecutionArn="arn:aws:states:us-east-1:123456789012:execution:PaymentWorkflow:order-8812-1",
        CreatedAt="2026-11-26T06:00:00.000000Z",
        CardBrand="VISA",
        CardLast4="1111",
        **fields,
    )


def test_success_response():
    entry = terminal(ledger.SUCCESS, ProcessorTransactionID="261125A15-0C2B3E5F", ApprovalCode="CMC142")

    assert api_response(payment(), entry) == {
        "TransactionID": "order-8812-1",
        "Status": "PAYMENT-SUCCESS",
        "Amount": "25.00",
        "Currency": "USD",
        "ProcessorID": "elavon",
        "ProcessorTransactionID": "261125A15-0C2B3E5F",
        "ApprovalCode": "CMC142",
        "Card": {"Brand": "VISA", "Last4": "1111"},
    }


def test_declined_response_has_the_decline_and_no_approval():
    entry = terminal(
        ledger.DECLINED,
        ProcessorTransactionID="261125A15-0C2B3E5F",
        ReasonCode="INSUFFICIENT_FUNDS",
        ReasonMessage="INSUFFICIENT FUNDS",
    )

    assert api_response(payment(), entry) == {
        "TransactionID": "order-8812-1",
        "Status": "PAYMENT-DECLINED",
        "Amount": "25.00",
        "Currency": "USD",
        "ProcessorID": "elavon",
        "Decline": {"Code": "INSUFFICIENT_FUNDS", "Message": "INSUFFICIENT FUNDS"},
        "Card": {"Brand": "VISA", "Last4": "1111"},
    }


def test_failed_response_has_the_failure_and_no_approval():
    entry = terminal(
        ledger.FAILED, ReasonCode="PROCESSOR_OUTCOME_UNKNOWN", ReasonMessage="ProcessorTimeout: no response within 20s"
    )

    assert api_response(payment(), entry) == {
        "TransactionID": "order-8812-1",
        "Status": "PAYMENT-FAILED",
        "Amount": "25.00",
        "Currency": "USD",
        "ProcessorID": "elavon",
        "Failure": {"Code": "PROCESSOR_OUTCOME_UNKNOWN", "Message": "ProcessorTimeout: no response within 20s"},
        "Card": {"Brand": "VISA", "Last4": "1111"},
    }


def test_card_is_omitted_for_a_payment_without_card_facts():
    entry = terminal(ledger.SUCCESS, ProcessorTransactionID="261125A15-0C2B3E5F", ApprovalCode="CMC142")

    response = api_response(payment(card=None), entry)

    assert "Card" not in response
    assert response["ApprovalCode"] == "CMC142"


def test_the_secure_token_never_reaches_the_response():
    entry = terminal(ledger.SUCCESS, ProcessorTransactionID="261125A15-0C2B3E5F", ApprovalCode="CMC142")

    response = api_response(payment(), entry)

    assert SECURE_TOKEN not in repr(response)
