"""normalize: a Converge result becomes the canonical APPROVED, DECLINED or ERROR outcome."""

import pytest

from payments.processors.registry import normalize
from payments.state import APPROVED, DECLINED, ERROR, ProcessorOutcome


def converge_result(ssl_result, message, **extra):
    return {
        "ssl_result": ssl_result,
        "ssl_result_message": message,
        "ssl_txn_id": "261125A15-0C2B3E5F-7A0B-4A77-9A4E-1D2C3B4A5F60",
        "ssl_amount": "25.00",
        "ssl_card_number": "41**********1111",
        **extra,
    }


def test_an_approval_carries_the_processor_transaction_id_and_approval_code():
    result = converge_result("0", "APPROVAL", ssl_approval_code="CMC142")

    outcome = normalize("elavon", result)

    assert outcome == ProcessorOutcome(
        Status=APPROVED,
        ReasonMessage="APPROVAL",
        ProcessorTransactionID="261125A15-0C2B3E5F-7A0B-4A77-9A4E-1D2C3B4A5F60",
        ApprovalCode="CMC142",
    )
    assert outcome.ReasonCode is None


@pytest.mark.parametrize(
    ("message", "reason_code"),
    [
        ("DECLINED", "DO_NOT_HONOR"),
        ("DECLINED CVV2", "CVV_MISMATCH"),
        ("INSUFFICIENT FUNDS", "INSUFFICIENT_FUNDS"),
        ("DECLINED: NSF", "INSUFFICIENT_FUNDS"),
        ("EXPIRED CARD", "EXPIRED_CARD"),
        ("CALL AUTH CENTER", "CALL_ISSUER"),
        ("PICK UP CARD", "PICK_UP_CARD"),
        ("AVS MISMATCH", "AVS_MISMATCH"),
        ("expired card", "EXPIRED_CARD"),
    ],
)
def test_a_decline_maps_its_message_to_a_stable_reason_code(message, reason_code):
    outcome = normalize("elavon", converge_result("1", message))

    assert outcome.Status == DECLINED
    assert outcome.ReasonCode == reason_code
    assert outcome.ReasonMessage == message
    assert outcome.ProcessorTransactionID == "261125A15-0C2B3E5F-7A0B-4A77-9A4E-1D2C3B4A5F60"
    assert outcome.ApprovalCode is None


def test_a_decline_without_a_message_is_do_not_honor():
    outcome = normalize("elavon", {"ssl_result": "1"})

    assert outcome.Status == DECLINED
    assert outcome.ReasonCode == "DO_NOT_HONOR"
    assert outcome.ReasonMessage == "DECLINED"


def test_a_decline_never_carries_an_approval_code_even_if_converge_sent_one():
    outcome = normalize("elavon", converge_result("1", "DECLINED", ssl_approval_code="CMC142"))

    assert outcome.Status == DECLINED
    assert outcome.ApprovalCode is None


@pytest.mark.parametrize(
    ("result", "reason_message"),
    [
        (
            {"errorCode": "5000", "errorName": "Credit Card Number Invalid", "errorMessage": "The Credit Card..."},
            "Credit Card Number Invalid",
        ),
        (
            {"errorCode": "4025", "errorMessage": "The credentials supplied are invalid."},
            "The credentials supplied are invalid.",
        ),
        ({"errorCode": "3000"}, "Converge error"),
    ],
)
def test_a_converge_error_is_an_error_outcome_with_a_converge_reason_code(result, reason_message):
    outcome = normalize("elavon", result)

    assert outcome.Status == ERROR
    assert outcome.ReasonCode == f"CONVERGE_{result['errorCode']}"
    assert outcome.ReasonMessage == reason_message
    assert outcome.ApprovalCode is None


def test_an_error_code_wins_over_an_approval_result():
    # Never report money taken when Converge says it failed
    result = converge_result("0", "APPROVAL", ssl_approval_code="CMC142", errorCode="4017", errorName="Timeout")

    outcome = normalize("elavon", result)

    assert outcome.Status == ERROR
    assert outcome.ReasonCode == "CONVERGE_4017"


@pytest.mark.parametrize("processor_id", ["stripe", "Elavon", ""])
def test_an_unknown_processor_has_no_normalizer(processor_id):
    with pytest.raises(ValueError, match="no adapter"):
        normalize(processor_id, converge_result("0", "APPROVAL"))
