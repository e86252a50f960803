"""A reply that could be read two ways, or is far too large to be Converge's, is an unknown outcome.

Never an approval or a decline: a retry then asks Converge what happened before it sends again.
"""

import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from payments.errors import ProcessorTimeout
from payments.processors.converge.client import MAX_REPLY_BYTES, parse_reply

APPROVAL = "<ssl_result>0</ssl_result><ssl_result_message>APPROVAL</ssl_result_message><ssl_txn_id>T-1</ssl_txn_id>"


class _Reply(BaseHTTPRequestHandler):
    body = b""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def answering():
    """A host on loopback that answers every request with the body a test sets."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Reply)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def sale_against(client_for, server, body):
    _Reply.body = body.encode() if isinstance(body, str) else body
    client = client_for(url=f"http://127.0.0.1:{server.server_port}/VirtualMerchantDemo/processxml.do")
    return client.sale(transaction_id="order-ab", amount=Decimal("25.00"), currency="USD", token="ABCDEFGHJKLMN")


def test_a_well_formed_approval_is_read(client_for, answering):
    assert sale_against(client_for, answering, f"<txn>{APPROVAL}</txn>").result["ssl_result"] == "0"


@pytest.mark.parametrize(
    "body",
    [
        "<txn><ssl_result>1</ssl_result><ssl_result>0</ssl_result><ssl_txn_id>T-1</ssl_txn_id></txn>",
        f"<txn>{APPROVAL}<ssl_txn_id>T-2</ssl_txn_id></txn>",
        f"<txn>{APPROVAL}<ssl_result_message><b>APPROVAL</b></ssl_result_message></txn>",
    ],
    ids=["result-twice", "transaction-id-twice", "a-field-holding-elements"],
)
def test_a_reply_that_reads_two_ways_is_an_unknown_outcome(client_for, answering, body):
    with pytest.raises(ProcessorTimeout, match="unreadable"):
        sale_against(client_for, answering, body)


def test_a_reply_far_larger_than_any_converge_reply_is_an_unknown_outcome(client_for, answering):
    padding = "x" * (MAX_REPLY_BYTES + 1)

    with pytest.raises(ProcessorTimeout, match="bytes"):
        sale_against(client_for, answering, f"<txn>{APPROVAL}<ssl_description>{padding}</ssl_description></txn>")


def test_a_listing_whose_transaction_holds_a_field_twice_is_refused():
    listing = "<txnlist><txn><ssl_txn_id>T-1</ssl_txn_id><ssl_txn_id>T-2</ssl_txn_id></txn></txnlist>"

    with pytest.raises(ValueError, match="twice"):
        parse_reply(listing)
