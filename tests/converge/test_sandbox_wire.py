"""The sandbox's wire format, pinned with raw HTTP only: processxml.do, process.do and the control API."""

import datetime as dt
import http.client
import json
import re
import uuid
from urllib.parse import urlencode, urlsplit
from xml.etree import ElementTree

import pytest

from local.payment_requests import new_transaction_id
from payments.cards import luhn_valid

XML_PATH = "/VirtualMerchantDemo/processxml.do"
KEY_VALUE_PATH = "/VirtualMerchantDemo/process.do"
VISA = "4111111111111111"
TXN_ID = re.compile(r"(\d{6})A15-[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}")
TXN_TIME = re.compile(r"(0[1-9]|1[0-2])/\d\d/\d{4} (0[1-9]|1[0-2]):[0-5]\d:[0-5]\d (AM|PM)")
ENTITY_BOMB = (
    '<?xml version="1.0"?>'
    '<!DOCTYPE txn [<!ENTITY a "aaaaaaaaaa">'
    '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">'
    '<!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>'
    "<txn><ssl_transaction_type>&d;</ssl_transaction_type></txn>"
)


# -- raw HTTP ---------------------------------------------------------------------------------------


def http_request(sandbox, method, path, body=None, headers=None):
    """One request on a fresh connection: (status, content type, body text)."""
    parts = urlsplit(sandbox.base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read().decode()
    finally:
        connection.close()


def post_form(sandbox, path, form, headers=None):
    headers = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
    return http_request(sandbox, "POST", path, urlencode(form), headers)


def xml_document(fields):
    return "<txn>" + "".join(f"<{name}>{value}</{name}>" for name, value in fields.items()) + "</txn>"


def post_xml(sandbox, document, headers=None):
    """processxml.do with xmldata=document: (status, content type, parsed root element)."""
    status, content_type, body = post_form(sandbox, XML_PATH, {"xmldata": document}, headers)
    return status, content_type, ElementTree.fromstring(body)


def leaves(element):
    return {child.tag: child.text or "" for child in element}


def post_ascii(sandbox, fields):
    """process.do in ASCII mode: (status, content type, the body's key=value lines as pairs)."""
    form = {"ssl_show_form": "false", "ssl_result_format": "ASCII", **fields}
    status, content_type, body = post_form(sandbox, KEY_VALUE_PATH, form)
    pairs = [tuple(line.split("=", 1)) for line in body.splitlines()]
    assert all(len(pair) == 2 for pair in pairs), f"not key=value lines: {body!r}"
    return status, content_type, pairs


def get_json(sandbox, path):
    status, content_type, body = http_request(sandbox, "GET", path)
    assert content_type.startswith("application/json")
    return status, body, json.loads(body)


@pytest.fixture
def login(sandbox):
    given = sandbox.credentials
    return {"ssl_merchant_id": given.ssl_merchant_id, "ssl_user_id": given.ssl_user_id, "ssl_pin": given.ssl_pin}


@pytest.fixture
def merchant_txn_id():
    return new_transaction_id("wire", 20)  # letters: a scan of the record meets no digit run in it


@pytest.fixture
def sale_fields(login, merchant_txn_id):
    return {
        **login,
        "ssl_transaction_type": "ccsale",
        "ssl_amount": "12.50",
        "ssl_transaction_currency": "USD",
        "ssl_card_number": VISA,
        "ssl_exp_date": "1230",
        "ssl_cvv2cvc2_indicator": "1",
        "ssl_cvv2cvc2": "123",
        "ssl_merchant_txn_id": merchant_txn_id,
    }


def records_for(sandbox, merchant_txn_id):
    """The sandbox's own record of one merchant_txn_id, read through its control API."""
    return [t for t in get_json(sandbox, "/_sandbox/transactions")[2] if t["ssl_merchant_txn_id"] == merchant_txn_id]


def assert_sale_fields(fields, amount="12.50"):
    assert fields["ssl_result"] == "0"
    assert fields["ssl_result_message"] == "APPROVAL"
    match = TXN_ID.fullmatch(fields["ssl_txn_id"])
    assert match, fields["ssl_txn_id"]
    dt.datetime.strptime(match.group(1), "%d%m%y")  # DDMMYY: a real date
    assert len(fields["ssl_approval_code"]) == 6
    assert TXN_TIME.fullmatch(fields["ssl_txn_time"]), fields["ssl_txn_time"]
    assert fields["ssl_amount"] == amount
    assert fields["ssl_card_number"] == "41**********1111"
    assert fields["ssl_card_short_description"] == "VISA"
    assert fields["ssl_transaction_type"] == "SALE"


# -- processxml.do ----------------------------------------------------------------------------------


def test_xml_sale_is_an_http_200_txn_document(sandbox, sale_fields, merchant_txn_id):
    status, content_type, root = post_xml(sandbox, xml_document(sale_fields))

    assert status == 200
    assert content_type.startswith("text/xml")
    assert root.tag == "txn"
    fields = leaves(root)
    assert_sale_fields(fields)
    assert fields["ssl_merchant_txn_id"] == merchant_txn_id
    assert VISA not in ElementTree.tostring(root, encoding="unicode")
    assert [t["ssl_txn_id"] for t in records_for(sandbox, merchant_txn_id)] == [fields["ssl_txn_id"]]


def test_xml_whole_amount_is_answered_with_two_decimals(sandbox, sale_fields):
    _, _, root = post_xml(sandbox, xml_document({**sale_fields, "ssl_amount": "12"}))

    assert leaves(root)["ssl_amount"] == "12.00"


def test_xml_txnquery_is_a_txnlist_without_ssl_result(sandbox, login, sale_fields, merchant_txn_id):
    _, _, sale = post_xml(sandbox, xml_document(sale_fields))
    txn_id = leaves(sale)["ssl_txn_id"]

    query = {**login, "ssl_transaction_type": "txnquery", "ssl_merchant_txn_id": merchant_txn_id}
    status, content_type, root = post_xml(sandbox, xml_document(query))

    assert status == 200
    assert content_type.startswith("text/xml")
    assert root.tag == "txnlist"
    assert root.findtext("ssl_txn_count") == "1"
    (txn,) = root.findall("txn")
    found = leaves(txn)
    assert found["ssl_txn_id"] == txn_id
    assert found["ssl_result_message"] == "APPROVAL"
    assert found["ssl_trans_status"] == "OPN"
    assert "ssl_result" not in found


def test_xml_txnquery_with_no_match_is_an_empty_txnlist(sandbox, login, merchant_txn_id):
    query = {**login, "ssl_transaction_type": "txnquery", "ssl_merchant_txn_id": merchant_txn_id}

    _, _, root = post_xml(sandbox, xml_document(query))

    assert root.tag == "txnlist"
    assert root.findtext("ssl_txn_count") == "0"
    assert root.findall("txn") == []


@pytest.mark.parametrize(
    ("change", "code", "name"),
    [
        ({"ssl_pin": "WRONG"}, "4025", "Invalid Credentials"),
        ({"ssl_amount": ""}, "4009", "Required Field Not Supplied"),
        ({"ssl_transaction_type": "ccteleport"}, "4010", "Invalid Transaction Type"),
        ({"ssl_card_number": "4111111111111112"}, "5000", "Credit Card Number Invalid"),
        ({"ssl_exp_date": "1330"}, "5001", "Exp Date Invalid"),
        ({"ssl_amount": "12.345"}, "5021", "Invalid Amount"),
        ({"ssl_transaction_currency": "SEK"}, "5092", "Transaction Currency Not Allowed"),
    ],
)
def test_xml_error_is_an_http_200_txn_with_error_fields(sandbox, sale_fields, merchant_txn_id, change, code, name):
    status, content_type, root = post_xml(sandbox, xml_document({**sale_fields, **change}))

    assert status == 200
    assert content_type.startswith("text/xml")
    assert root.tag == "txn"
    fields = leaves(root)
    assert set(fields) == {"errorCode", "errorName", "errorMessage"}
    assert (fields["errorCode"], fields["errorName"]) == (code, name)
    assert fields["errorMessage"]
    assert records_for(sandbox, merchant_txn_id) == []


@pytest.mark.parametrize(
    "document",
    [
        "<txn><ssl_transaction_type>ccsale</ssl_transaction_type>",
        "not xml at all",
        "",
        "<response><ssl_transaction_type>ccsale</ssl_transaction_type></response>",
        ENTITY_BOMB,
    ],
    ids=["unclosed", "text", "empty", "wrong-root", "entity-bomb"],
)
def test_xml_that_cannot_be_read_is_answered_with_an_error(sandbox, sale_fields, document):
    status, content_type, root = post_xml(sandbox, document)

    assert status == 200
    assert content_type.startswith("text/xml")
    assert leaves(root)["errorCode"] == "4000"
    assert "aaaaaaaaaa" not in ElementTree.tostring(root, encoding="unicode")

    # And the sandbox keeps serving
    _, _, after = post_xml(sandbox, xml_document(sale_fields))
    assert leaves(after)["ssl_result"] == "0"


def test_a_body_over_the_limit_is_refused(sandbox):
    status, _, _ = post_form(sandbox, XML_PATH, {"xmldata": "<txn>" + "a" * 70_000 + "</txn>"})

    assert status == 413


def test_an_unknown_path_is_404(sandbox):
    assert http_request(sandbox, "GET", "/VirtualMerchantDemo/nothing")[0] == 404
    assert post_form(sandbox, "/VirtualMerchantDemo/nothing", {"a": "b"})[0] == 404


# -- process.do, ASCII ------------------------------------------------------------------------------


def test_ascii_sale_is_key_value_lines_with_the_xml_fields(sandbox, sale_fields, merchant_txn_id):
    status, content_type, pairs = post_ascii(sandbox, sale_fields)

    assert status == 200
    assert content_type.startswith("text/plain")
    fields = dict(pairs)
    assert len(fields) == len(pairs), "each field once"
    assert_sale_fields(fields)
    assert fields["ssl_merchant_txn_id"] == merchant_txn_id
    assert VISA not in str(pairs)
    assert [t["ssl_txn_id"] for t in records_for(sandbox, merchant_txn_id)] == [fields["ssl_txn_id"]]

    # The XML endpoint answers the same sale with the same fields
    _, _, root = post_xml(sandbox, xml_document({**sale_fields, "ssl_merchant_txn_id": merchant_txn_id + "x"}))
    assert set(leaves(root)) == set(fields)


def test_ascii_error_is_error_code_lines(sandbox, sale_fields):
    status, content_type, pairs = post_ascii(sandbox, {**sale_fields, "ssl_pin": "WRONG"})

    assert status == 200
    assert content_type.startswith("text/plain")
    assert [key for key, _ in pairs] == ["errorCode", "errorName", "errorMessage"]
    assert dict(pairs)["errorCode"] == "4025"


def test_ascii_txnquery_starts_with_the_count(sandbox, login, sale_fields, merchant_txn_id):
    # Given two sales for one merchant_txn_id
    first = dict(post_ascii(sandbox, sale_fields)[2])["ssl_txn_id"]
    second = dict(post_ascii(sandbox, sale_fields)[2])["ssl_txn_id"]

    status, content_type, pairs = post_ascii(
        sandbox, {**login, "ssl_transaction_type": "txnquery", "ssl_merchant_txn_id": merchant_txn_id}
    )

    assert status == 200
    assert content_type.startswith("text/plain")
    assert pairs[0] == ("ssl_txn_count", "2")
    # Newest first, as Converge lists query results
    assert [value for key, value in pairs if key == "ssl_txn_id"] == [second, first]
    assert "ssl_result" not in {key for key, _ in pairs}


def test_ascii_txnquery_with_no_match_is_a_zero_count(sandbox, login, merchant_txn_id):
    _, _, pairs = post_ascii(
        sandbox, {**login, "ssl_transaction_type": "txnquery", "ssl_merchant_txn_id": merchant_txn_id}
    )

    assert pairs == [("ssl_txn_count", "0")]


def test_process_do_without_ascii_answers_an_html_form(sandbox, sale_fields):
    status, content_type, body = post_form(sandbox, KEY_VALUE_PATH, sale_fields)

    assert status == 200
    assert content_type.startswith("text/html")
    assert '<input type="hidden" name="ssl_result" value="0">' in body
    assert VISA not in body


# -- control API ------------------------------------------------------------------------------------


def test_transactions_are_json_with_masked_card_numbers_only(sandbox, sale_fields, merchant_txn_id):
    post_xml(sandbox, xml_document(sale_fields))
    post_ascii(sandbox, {**sale_fields, "ssl_card_number": "5500000000000004"})

    status, body, records = get_json(sandbox, "/_sandbox/transactions")

    assert status == 200
    mine = [r for r in records if r["ssl_merchant_txn_id"] == merchant_txn_id]
    assert [r["ssl_card_number"] for r in mine] == ["41**********1111", "55**********0004"]
    assert all(r["ssl_amount"] == "12.50" and r["approved_charge"] is True for r in mine)
    runs = re.findall(r"\d{12,19}", body)
    assert not [run for run in runs if luhn_valid(run)], "a PAN-shaped number in the record"
    assert VISA not in body
    assert "5500000000000004" not in body


def test_fault_rules_are_added_listed_and_cleared(sandbox):
    rule = {"fault": "latency", "match": {"ssl_merchant_txn_id": "nobody"}, "times": 2, "delay_ms": 5}

    status, _, body = http_request(
        sandbox, "POST", "/_sandbox/faults", json.dumps(rule), {"Content-Type": "application/json"}
    )

    assert status == 201
    added = json.loads(body)
    assert {k: added[k] for k in rule} == rule
    assert added["fired"] == 0
    assert get_json(sandbox, "/_sandbox/faults")[2] == [added]

    status, _, body = http_request(sandbox, "DELETE", "/_sandbox/faults")

    assert (status, json.loads(body)) == (200, [])
    assert get_json(sandbox, "/_sandbox/faults")[2] == []


@pytest.mark.parametrize(
    "rule",
    [
        '{"fault": "meteor_strike"}',
        '{"fault": "latency", "colour": "red"}',
        '{"fault": "latency", "probability": 2}',
        '{"fault": "latency", "times": -1}',
        '{"match": {}}',
        "not json",
    ],
)
def test_an_invalid_fault_rule_is_a_400(sandbox, rule):
    status, content_type, body = http_request(
        sandbox, "POST", "/_sandbox/faults", rule, {"Content-Type": "application/json"}
    )

    assert status == 400
    assert content_type.startswith("application/json")
    assert "error" in json.loads(body)
    assert get_json(sandbox, "/_sandbox/faults")[2] == []


def test_a_fault_rule_posted_over_http_applies_to_converge_requests(sandbox, sale_fields, merchant_txn_id):
    rule = {"fault": "error_4022", "match": {"ssl_merchant_txn_id": merchant_txn_id}, "times": 1}
    assert http_request(sandbox, "POST", "/_sandbox/faults", json.dumps(rule))[0] == 201

    _, _, root = post_xml(sandbox, xml_document(sale_fields))
    assert leaves(root)["errorCode"] == "4022"
    assert records_for(sandbox, merchant_txn_id) == []

    _, _, root = post_xml(sandbox, xml_document(sale_fields))
    assert leaves(root)["ssl_result"] == "0"


def test_the_fault_header_gives_an_http_500_once(sandbox, sale_fields, merchant_txn_id):
    status, content_type, _ = post_form(
        sandbox, XML_PATH, {"xmldata": xml_document(sale_fields)}, {"X-Sandbox-Fault": "http_500"}
    )

    assert status == 500
    assert content_type.startswith("text/html")
    assert records_for(sandbox, merchant_txn_id) == []

    status, _, root = post_xml(sandbox, xml_document(sale_fields))
    assert status == 200
    assert leaves(root)["ssl_result"] == "0"
    assert len(records_for(sandbox, merchant_txn_id)) == 1


# -- process.do, as a third-party key-value client reads it -----------------------------------------


def read_like_a_key_value_client(body):
    """As a plain key-value client reads process.do: split on every newline, each line on '='."""
    fields = {}
    for line in body.split("\n"):
        parts = line.split("=")
        assert len(parts) == 2, f"not one key=value: {line!r} in {body!r}"
        fields[parts[0]] = parts[1]
    return fields


def post_ascii_raw(sandbox, fields):
    form = {"ssl_show_form": "false", "ssl_result_format": "ASCII", **fields}
    status, _, body = post_form(sandbox, KEY_VALUE_PATH, form)
    assert status == 200
    return body


@pytest.mark.parametrize(
    "change",
    [{}, {"ssl_card_number": "4000000000000002"}, {"ssl_pin": "WRONG"}],
    ids=["approval", "decline", "error"],
)
def test_a_key_value_reply_reads_line_by_line_with_no_empty_line(sandbox, sale_fields, change):
    body = post_ascii_raw(sandbox, {**sale_fields, **change})

    assert not body.endswith("\n")
    fields = read_like_a_key_value_client(body)
    assert "ssl_result" in fields or fields["errorCode"] == "4025"


def test_a_key_value_listing_reads_line_by_line_with_no_empty_line(sandbox, login, sale_fields, merchant_txn_id):
    post_ascii_raw(sandbox, sale_fields)

    for merchant, count in ((merchant_txn_id, "1"), (merchant_txn_id + "-none", "0")):
        body = post_ascii_raw(sandbox, {**login, "ssl_transaction_type": "txnquery", "ssl_merchant_txn_id": merchant})

        assert not body.endswith("\n")
        assert body.split("\n")[0] == f"ssl_txn_count={count}"
        assert read_like_a_key_value_client(body)["ssl_txn_count"] == count


# -- settlement -------------------------------------------------------------------------------------


def test_settle_closes_the_open_batch(sandbox, login, sale_fields, merchant_txn_id):
    # Given an approved sale and a declined one, both in the open batch
    _, _, approved = post_xml(sandbox, xml_document(sale_fields))
    _, _, declined = post_xml(sandbox, xml_document({**sale_fields, "ssl_card_number": "4000000000000002"}))
    approved_id, declined_id = leaves(approved)["ssl_txn_id"], leaves(declined)["ssl_txn_id"]

    status, content_type, body = http_request(sandbox, "POST", "/_sandbox/settle")

    # Then the approved sale settled, and txnquery and the record say so; the decline moved no money
    assert (status, content_type.split(";")[0]) == (200, "application/json")
    settled = json.loads(body)["settled"]
    assert approved_id in settled and declined_id not in settled
    _, _, listing = post_xml(
        sandbox, xml_document({**login, "ssl_transaction_type": "txnquery", "ssl_txn_id": approved_id})
    )
    assert listing.find("txn").findtext("ssl_trans_status") == "STL"
    statuses = {r["ssl_txn_id"]: r["ssl_trans_status"] for r in records_for(sandbox, merchant_txn_id)}
    assert statuses == {approved_id: "STL", declined_id: "OPN"}
    # And a second settlement finds the batch empty of them
    assert approved_id not in json.loads(http_request(sandbox, "POST", "/_sandbox/settle")[2])["settled"]


# -- amounts by the currency's exponent ---------------------------------------------------------------


def test_a_yen_amount_is_whole_yen_on_the_wire_and_in_the_record(sandbox, sale_fields, merchant_txn_id):
    _, _, root = post_xml(
        sandbox, xml_document({**sale_fields, "ssl_amount": "2500", "ssl_transaction_currency": "JPY"})
    )

    fields = leaves(root)
    assert (fields["ssl_result"], fields["ssl_amount"], fields["ssl_transaction_currency"]) == ("0", "2500", "JPY")
    assert [r["ssl_amount"] for r in records_for(sandbox, merchant_txn_id)] == ["2500"]


@pytest.mark.parametrize("amount", ["2500.00", "2500.5", "12.345"])
def test_a_yen_amount_with_decimals_is_refused(sandbox, sale_fields, merchant_txn_id, amount):
    _, _, root = post_xml(
        sandbox, xml_document({**sale_fields, "ssl_amount": amount, "ssl_transaction_currency": "JPY"})
    )

    assert leaves(root)["errorCode"] == "5021"
    assert records_for(sandbox, merchant_txn_id) == []


def test_a_yen_amount_ending_in_a_trigger_s_digits_is_not_a_trigger(sandbox, sale_fields):
    # .51 declines a dollar amount; yen have no cents, so 2551 yen is just an amount
    _, _, root = post_xml(
        sandbox, xml_document({**sale_fields, "ssl_amount": "2551", "ssl_transaction_currency": "JPY"})
    )

    assert leaves(root)["ssl_result"] == "0"


# -- fields Converge sends, and does not ---------------------------------------------------------------


def test_a_token_reply_carries_its_processing_time(sandbox, sale_fields):
    card = {k: sale_fields[k] for k in ("ssl_card_number", "ssl_exp_date")}
    login = {k: sale_fields[k] for k in ("ssl_merchant_id", "ssl_user_id", "ssl_pin")}
    _, _, root = post_xml(sandbox, xml_document({**login, **card, "ssl_transaction_type": "ccgettoken"}))

    fields = leaves(root)
    assert fields["ssl_transaction_type"] == "GETTOKEN"
    assert TXN_TIME.fullmatch(fields["ssl_txn_time"]), fields


def test_a_delete_reply_carries_no_authorization_of_its_own(sandbox, login, sale_fields):
    _, _, auth = post_xml(sandbox, xml_document({**sale_fields, "ssl_transaction_type": "ccauthonly"}))
    txn_id = leaves(auth)["ssl_txn_id"]

    _, _, root = post_xml(sandbox, xml_document({**login, "ssl_transaction_type": "ccdelete", "ssl_txn_id": txn_id}))

    fields = leaves(root)
    assert (fields["ssl_result"], fields["ssl_result_message"], fields["ssl_transaction_type"]) == (
        "0",
        "APPROVAL",
        "DELETE",
    )
    assert not {"ssl_approval_code", "ssl_avs_response", "ssl_cvv2_response"} & set(fields)
    assert TXN_TIME.fullmatch(fields["ssl_txn_time"])


# -- follow-ons filed under their own merchant transaction id -------------------------------------------


def test_a_completion_and_a_delete_show_their_merchant_txn_id_in_the_record_and_a_listing(
    sandbox, login, sale_fields, merchant_txn_id
):
    # Given two authorizations, one completed for less and one deleted, each by a tagged request
    authorizations = [
        leaves(post_xml(sandbox, xml_document({**sale_fields, "ssl_transaction_type": "ccauthonly"}))[2])["ssl_txn_id"]
        for _ in range(2)
    ]
    completion_id, delete_id = new_transaction_id("wirecap", 20), new_transaction_id("wiredel", 20)
    follow_ons = [
        {"ssl_transaction_type": "cccomplete", "ssl_amount": "10.00", "ssl_merchant_txn_id": completion_id},
        {"ssl_transaction_type": "ccdelete", "ssl_merchant_txn_id": delete_id},
    ]
    for txn_id, fields in zip(authorizations, follow_ons, strict=True):
        _, _, root = post_xml(sandbox, xml_document({**login, "ssl_txn_id": txn_id, **fields}))
        assert leaves(root)["ssl_result"] == "0"

    # Then the control API shows on each authorization which request completed or deleted it
    completed, deleted = (
        next(r for r in records_for(sandbox, merchant_txn_id) if r["ssl_txn_id"] == t) for t in authorizations
    )
    assert (completed["completion_merchant_txn_id"], completed["delete_merchant_txn_id"]) == (completion_id, "")
    assert (deleted["completion_merchant_txn_id"], deleted["delete_merchant_txn_id"]) == ("", delete_id)

    # And txnquery by the request's merchant transaction id lists the completion and the delete
    def listed(merchant_txn_id):
        query = {**login, "ssl_transaction_type": "txnquery", "ssl_merchant_txn_id": merchant_txn_id}
        _, _, root = post_xml(sandbox, xml_document(query))
        assert root.tag == "txnlist" and root.findtext("ssl_txn_count") == "1"
        return leaves(root.find("txn"))

    completion = listed(completion_id)
    assert (completion["ssl_transaction_type"], completion["ssl_amount"], completion["ssl_txn_id"]) == (
        "FORCE",
        "10.00",
        authorizations[0],
    )
    assert (completion["ssl_merchant_txn_id"], completion["ssl_trans_status"]) == (completion_id, "OPN")
    delete = listed(delete_id)
    assert (delete["ssl_transaction_type"], delete["ssl_txn_id"], delete["ssl_merchant_txn_id"]) == (
        "DELETE",
        authorizations[1],
        delete_id,
    )


def test_a_void_and_a_return_are_filed_under_the_merchant_txn_id_they_carry(
    sandbox, login, sale_fields, merchant_txn_id
):
    # Given a settled sale (returned) and an open one (voided), both tagged with the payment's merchant_txn_id
    _, _, returned = post_xml(sandbox, xml_document(sale_fields))
    http_request(sandbox, "POST", "/_sandbox/settle")
    _, _, fresh = post_xml(sandbox, xml_document(sale_fields))
    void_id, return_id = new_transaction_id("wirevoid", 20), new_transaction_id("wireret", 20)

    # When each is voided or returned by a request carrying its own ssl_merchant_txn_id
    _, _, void = post_xml(
        sandbox,
        xml_document(
            {
                **login,
                "ssl_transaction_type": "ccvoid",
                "ssl_txn_id": leaves(fresh)["ssl_txn_id"],
                "ssl_merchant_txn_id": void_id,
            }
        ),
    )
    _, _, refund = post_xml(
        sandbox,
        xml_document(
            {
                **login,
                "ssl_transaction_type": "ccreturn",
                "ssl_txn_id": leaves(returned)["ssl_txn_id"],
                "ssl_merchant_txn_id": return_id,
            }
        ),
    )

    # Then each is filed under the id its request carried, none under the payment's
    assert [r["ssl_transaction_type"] for r in records_for(sandbox, void_id)] == ["VOID"]
    assert [r["ssl_transaction_type"] for r in records_for(sandbox, return_id)] == ["RETURN"]
    assert records_for(sandbox, void_id)[0]["ssl_txn_id"] == leaves(void)["ssl_txn_id"]
    assert records_for(sandbox, return_id)[0]["ssl_txn_id"] == leaves(refund)["ssl_txn_id"]
    assert {r["ssl_transaction_type"] for r in records_for(sandbox, merchant_txn_id)} == {"SALE"}


def test_a_transaction_id_never_holds_twelve_digits_in_a_row(monkeypatch):
    # A UUID's last group can be twelve digits, some of them passing Luhn: such a draw is drawn again
    from local.sandbox import terminal

    draws = iter(
        [
            uuid.UUID("12345678-abcd-4abc-8abc-019655158467"),  # twelve digits, Luhn-valid
            uuid.UUID("12345678-abcd-4abc-8abc-0196551584ab"),
        ]
    )
    monkeypatch.setattr(terminal.uuid, "uuid4", lambda: next(draws))

    txn_id = terminal._new_txn_id(dt.datetime(2026, 11, 28, tzinfo=dt.UTC))

    assert txn_id == "281126A15-12345678-ABCD-4ABC-8ABC-0196551584AB"
    assert luhn_valid("019655158467")
