"""The charging protocol against the sandbox, after a sale whose answer was lost: ask, and never sell twice.

A claim is on record (sale-attempt #1); Converge took that sale. Whatever the listing then shows,
a second sale may follow only a listing that shows nothing at all for our TransactionID.
"""

import datetime as dt
from decimal import Decimal

import pytest

from local.sandbox import FaultRule
from local.sandbox import terminal as sandbox_terminal
from payments.charging import CallRecorder, charge
from payments.errors import ProcessorTimeout
from payments.processors.converge import CardDetails, ConvergeProcessor
from payments.sale_attempts import SaleAttempt
from payments.state import ChargeEvent

EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:PaymentWorkflow:lost-answer"
CARD = CardDetails(number="4111111111111111", expiry_month=12, expiry_year=2031, cvv="847")


class OneClaimOnRecord:
    """Sale attempt #1, claimed `age` ago; a further claim is remembered, never refused."""

    def __init__(self, age):
        self.claims = [SaleAttempt(1, dt.datetime.now(dt.UTC) - age)]

    def on_record(self):
        return list(self.claims)

    def claim(self, number, now):
        self.claims.append(SaleAttempt(number, now))


def sales_of(sandbox, transaction_id):
    return [
        t
        for t in sandbox.terminal.transactions
        if t.ssl_merchant_txn_id == transaction_id and t.ssl_transaction_type == "SALE"
    ]


def ask_again(client, transaction_id, claim_age, amount="25.00", card=CARD):
    """CallProcessor run again (a retry or a redrive) for a payment whose sale #1 is on record."""
    processor = ConvergeProcessor(client)
    payment = {
        "TransactionID": transaction_id,
        "Amount": amount,
        "Currency": "USD",
        "ProcessorID": "elavon",
        "PaymentMethodType": "card",
        "SecureToken": "sealed",
    }
    recorder = CallRecorder(transaction_id, EXECUTION, 1, "PaymentCallProcessor", processor, lambda _: "sealed", None)
    return charge(
        ChargeEvent(Payment=payment, ExecutionArn=EXECUTION, RetryCount=0),
        processor=processor,
        source=lambda: card,
        card_last4=card.number[-4:],
        recorder=recorder,
        attempts=OneClaimOnRecord(claim_age),
        sleep=lambda seconds: None,
    )


def first_sale(client, transaction_id):
    client.sale(transaction_id=transaction_id, amount=Decimal("25.00"), currency="USD", card=CARD)


@pytest.mark.parametrize("missing", ["ssl_merchant_txn_id", "ssl_transaction_currency", "ssl_card_number"])
def test_a_listing_that_does_not_prove_the_sale_ours_leaves_the_outcome_unknown(
    client_for, sandbox, monkeypatch, transaction_id, missing
):
    # Given Converge took sale #1, and lists it without one of the fields that prove it ours
    client = client_for()
    first_sale(client, transaction_id)
    listed = sandbox_terminal.SandboxTransaction.to_query_fields
    monkeypatch.setattr(
        sandbox_terminal.SandboxTransaction,
        "to_query_fields",
        lambda self: {k: v for k, v in listed(self).items() if k != missing},
    )

    # When CallProcessor runs again, then it neither adopts it nor sells again
    with pytest.raises(ProcessorTimeout, match="none shown to be our sale"):
        ask_again(client, transaction_id, claim_age=dt.timedelta(hours=1))

    assert len(sales_of(sandbox, transaction_id)) == 1


def test_a_redrive_days_later_still_finds_the_sale(client_for, sandbox, transaction_id):
    # Given sale #1, taken three days ago by an execution stopped mid-sale
    client = client_for()
    first_sale(client, transaction_id)
    [sale] = sales_of(sandbox, transaction_id)
    sale.created -= dt.timedelta(days=3)

    # When it is redriven now, then the lookup reaches back to the claim's day and adopts the sale
    charged = ask_again(client, transaction_id, claim_age=dt.timedelta(days=3))

    assert charged.found_by_query and charged.result["ssl_txn_id"] == sale.ssl_txn_id
    assert len(sales_of(sandbox, transaction_id)) == 1


@pytest.mark.parametrize(
    ("card_number", "amount", "message", "reason_code"),
    [
        ("4000000000000002", "25.00", "DECLINED", "DO_NOT_HONOR"),
        ("4111111111111111", "25.57", "SERV NOT ALLOWED", "DO_NOT_HONOR"),
        ("4111111111111111", "25.58", "REQ. EXCEEDS BAL.", "INSUFFICIENT_FUNDS"),
    ],
)
def test_a_declined_sale_whose_answer_was_lost_is_found_declined_with_its_reason(
    client_for, sandbox, transaction_id, card_number, amount, message, reason_code
):
    # Given Converge declined sale #1, and its answer never reached us
    client = client_for()
    card = CardDetails(number=card_number, expiry_month=12, expiry_year=2031, cvv="847")
    sandbox.faults.add(FaultRule("timeout_after_charge", match={"ssl_merchant_txn_id": transaction_id}))
    with pytest.raises(ProcessorTimeout):
        client.sale(transaction_id=transaction_id, amount=Decimal(amount), currency="USD", card=card)
    [declined] = sales_of(sandbox, transaction_id)
    assert (declined.ssl_result, declined.ssl_result_message) == ("1", message)

    # When CallProcessor runs again, then txnquery finds that sale, and it is a decline with its reason
    processor = ConvergeProcessor(client)
    charged = ask_again(client, transaction_id, claim_age=dt.timedelta(hours=1), amount=amount, card=card)

    assert charged.found_by_query
    assert "ssl_result" not in charged.result  # a listing says it only by its message
    outcome = processor.normalize(charged.result)
    assert (outcome.Status, outcome.ReasonCode, outcome.ReasonMessage) == ("DECLINED", reason_code, message)
    assert outcome.ProcessorTransactionID == declined.ssl_txn_id
    assert len(sales_of(sandbox, transaction_id)) == 1  # and nothing was sent again
