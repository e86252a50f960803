"""The Converge XML wire format, and what of a call is allowed to leave the adapter."""

import pytest
from defusedxml import EntitiesForbidden

from payments.processors.converge import RESULT_FIELDS, ConvergeCall, from_xml, to_xml

PAN = "4111111111111111"
INJECTION = "</ssl_first_name><ssl_amount>0.01</ssl_amount>"


def test_values_are_escaped_so_markup_in_a_name_stays_text():
    # Given a holder name that tries to close its element and set the amount
    fields = {"ssl_amount": "25.00", "ssl_first_name": INJECTION, "ssl_last_name": "Lovelace"}

    document = to_xml(fields)

    # Then the document has exactly the fields we sent, with the name as plain text
    assert document.count("<ssl_amount>") == 1
    assert from_xml(document) == fields


@pytest.mark.parametrize("value", ["Smith & Sons", "<b>", "a > b", "\"quoted\" 'single'", "]]>", "O'Brien &amp;"])
def test_special_characters_round_trip(value):
    assert from_xml(to_xml({"ssl_description": value})) == {"ssl_description": value}


def test_from_xml_reads_bytes_and_empty_elements():
    document = b"<txn><ssl_result>0</ssl_result><ssl_approval_code/></txn>"

    assert from_xml(document) == {"ssl_result": "0", "ssl_approval_code": ""}


def test_from_xml_refuses_an_entity_expansion_bomb():
    bomb = (
        '<?xml version="1.0"?>'
        '<!DOCTYPE txn [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
        "<txn><ssl_result_message>&c;</ssl_result_message></txn>"
    )

    with pytest.raises(EntitiesForbidden):
        from_xml(bomb)


def test_from_xml_refuses_an_external_entity():
    document = (
        '<?xml version="1.0"?><!DOCTYPE txn [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        "<txn><ssl_result_message>&x;</ssl_result_message></txn>"
    )

    with pytest.raises(EntitiesForbidden):
        from_xml(document)


def test_from_xml_refuses_a_document_that_is_not_a_txn():
    with pytest.raises(ValueError, match="root <response>"):
        from_xml("<response><ssl_result>0</ssl_result></response>")


def card_call(response=None):
    request = {
        "ssl_merchant_id": "0021234",
        "ssl_user_id": "apiuser",
        "ssl_pin": "PIN-SECRET-0000",
        "ssl_transaction_type": "ccsale",
        "ssl_amount": "25.00",
        "ssl_transaction_currency": "USD",
        "ssl_card_number": PAN,
        "ssl_exp_date": "1230",
        "ssl_cvv2cvc2_indicator": "1",
        "ssl_cvv2cvc2": "847",
        "ssl_first_name": "Ada",
        "ssl_merchant_txn_id": "order-8812-1",
    }
    return ConvergeCall("ccsale", request, response or {"ssl_result": "0"}, "2026-11-26T06:00:00.000000Z", 412)


def test_masked_request_masks_the_pan_and_drops_cvv_and_pin():
    masked = card_call().masked_request

    assert masked == {
        "ssl_merchant_id": "0021234",
        "ssl_user_id": "apiuser",
        "ssl_transaction_type": "ccsale",
        "ssl_amount": "25.00",
        "ssl_transaction_currency": "USD",
        "ssl_card_number": "41**********1111",
        "ssl_exp_date": "1230",
        "ssl_cvv2cvc2_indicator": "1",
        "ssl_first_name": "Ada",
        "ssl_merchant_txn_id": "order-8812-1",
    }


def test_masked_request_masks_a_converge_token():
    token = "4421912014039990"
    call = ConvergeCall(
        "ccsale",
        {"ssl_pin": "PIN-SECRET-0000", "ssl_token": token, "ssl_amount": "25.00"},
        {"ssl_result": "0"},
        "2026-11-26T06:00:00.000000Z",
        100,
    )

    assert call.masked_request == {"ssl_token": "44**********9990", "ssl_amount": "25.00"}


def test_masked_request_leaves_the_call_itself_untouched():
    call = card_call()

    _ = call.masked_request

    assert call.request["ssl_card_number"] == PAN
    assert call.request["ssl_cvv2cvc2"] == "847"


def test_repr_of_a_call_shows_no_request_secrets():
    text = repr(card_call())

    assert PAN not in text
    assert "PIN-SECRET-0000" not in text
    assert "847" not in text


def test_result_keeps_only_the_allowed_fields():
    response = {
        "ssl_result": "0",
        "ssl_result_message": "APPROVAL",
        "ssl_txn_id": "261125A15-0C2B3E5F",
        "ssl_approval_code": "CMC142",
        "ssl_amount": "25.00",
        "ssl_card_number": "41**********1111",
        "ssl_exp_date": "1230",
        "ssl_token": "4421912014039990",
        "ssl_first_name": "Ada",
        "ssl_cvv2cvc2": "847",
        "ssl_account_balance": "0.00",
    }

    result = card_call(response).result

    assert set(result) <= set(RESULT_FIELDS)
    assert result == {
        "ssl_result": "0",
        "ssl_result_message": "APPROVAL",
        "ssl_txn_id": "261125A15-0C2B3E5F",
        "ssl_approval_code": "CMC142",
        "ssl_amount": "25.00",
        "ssl_card_number": "41**********1111",
        "ssl_token": "44**********9990",  # kept, but masked: a token can charge the card
    }


def test_result_masks_a_pan_that_converge_sent_in_clear():
    result = card_call({"ssl_result": "0", "ssl_card_number": PAN}).result

    assert result["ssl_card_number"] == "41**********1111"


def test_result_keeps_converge_error_fields():
    response = {"errorCode": "5000", "errorName": "Credit Card Number Invalid", "errorMessage": "The card is invalid."}

    assert card_call(response).result == response


@pytest.mark.parametrize(
    ("description", "masked"),
    [
        ("card 4111 1111 1111 1111 thanks", "card 41** **** **** 1111 thanks"),
        ("ref4111-1111-1111-1111", "ref41**-****-****-1111"),
        ("\u0664\u0661" + "\u0661" * 14, "\u0664\u0661" + "*" * 10 + "\u0661" * 4),  # Arabic-Indic digits
        ("order 20261126, 3 items", "order 20261126, 3 items"),
        ("invoice 41111111111111110000", "invoice 41111111111111110000"),  # 20 digits: no card number
    ],
)
def test_masked_request_masks_a_card_number_inside_the_description(description, masked):
    call = ConvergeCall(
        "ccsale",
        {"ssl_amount": "25.00", "ssl_description": description},
        {"ssl_result": "0"},
        "2026-11-26T06:00:00.000000Z",
        100,
    )

    assert call.masked_request == {"ssl_amount": "25.00", "ssl_description": masked}
    assert call.request["ssl_description"] == description  # what was sent is untouched
