"""A Converge sandbox on loopback: Elavon's XML API (`processxml.do`), with its own transaction record.

Requests are `POST /VirtualMerchantDemo/processxml.do` with form field `xmldata=<txn>...</txn>`;
answers are `text/xml` with a `<txn>` root, HTTP 200 even for declines and errors, as Converge does.
The record keeps masked card numbers only. `GET /_sandbox/transactions` returns it as JSON.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import threading
import uuid
from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from payments.cards import card_brand, luhn_valid, mask_pan
from payments.processors.converge import from_xml, to_xml

XML_PATH = "/VirtualMerchantDemo/processxml.do"
TRANSACTIONS_PATH = "/_sandbox/transactions"

APPROVING_CARDS = frozenset({"4111111111111111", "5500000000000004", "370000000000002", "6011000000000012"})
DECLINING_CARDS = frozenset({"4000000000000002"})
ACCEPTED_CURRENCIES = frozenset({"USD", "CAD", "EUR", "GBP", "JPY", "AUD", "CHF", "MXN"})
_SHORT_BRAND = {"VISA": "VISA", "MASTERCARD": "MC", "AMEX": "AMEX", "DISCOVER": "DISC"}


@dataclass(frozen=True)
class SandboxCredentials:
    ssl_merchant_id: str = "009999"
    ssl_user_id: str = "webpage"
    ssl_pin: str = "SANDBOXPIN0000000000000000000000000000000000000000000000000000"


@dataclass(frozen=True)
class SandboxTransaction:
    ssl_txn_id: str
    ssl_transaction_type: str
    ssl_merchant_txn_id: str
    ssl_amount: str
    ssl_transaction_currency: str
    ssl_card_number: str  # masked
    ssl_result: str
    ssl_result_message: str
    ssl_approval_code: str
    ssl_txn_time: str


class ConvergeSandbox:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, credentials: SandboxCredentials | None = None) -> None:
        self.credentials = credentials or SandboxCredentials()
        self._transactions: list[SandboxTransaction] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def xml_url(self) -> str:
        return self.base_url + XML_PATH

    def start(self) -> ConvergeSandbox:
        self._thread = threading.Thread(target=self._server.serve_forever, name="converge-sandbox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def transactions(self) -> list[SandboxTransaction]:
        with self._lock:
            return list(self._transactions)

    def process(self, fields: dict[str, str]) -> dict[str, str]:
        """One Converge request in, one Converge response out."""
        expected = asdict(self.credentials)
        if any(fields.get(name) != value for name, value in expected.items()):
            return _error(
                "4025", "Invalid Credentials", "The credentials supplied in the authorization request are invalid."
            )
        kind = fields.get("ssl_transaction_type", "").lower()
        if kind == "ccsale":
            return self._sale(fields)
        if not kind:
            return _error("4009", "Required Field Not Supplied", "The field ssl_transaction_type is required.")
        return _error("4010", "Invalid Transaction Type", f"The transaction type {kind[:20]} is not supported.")

    def _sale(self, fields: dict[str, str]) -> dict[str, str]:
        for name in ("ssl_amount", "ssl_card_number", "ssl_exp_date"):
            if not fields.get(name):
                return _error("4009", "Required Field Not Supplied", f"The field {name} is required.")
        pan = fields["ssl_card_number"]
        if not (pan.isdigit() and 12 <= len(pan) <= 19 and luhn_valid(pan)):
            return _error(
                "5000",
                "Credit Card Number Invalid",
                "The Credit Card Number supplied in the authorization request appears to be invalid.",
            )
        if not re.fullmatch(r"(0[1-9]|1[0-2])\d\d", fields["ssl_exp_date"]):
            return _error("5002", "Invalid Expiration Date", "The expiration date supplied is invalid.")
        try:
            amount = Decimal(fields["ssl_amount"])
        except InvalidOperation:
            amount = Decimal(-1)
        if amount <= 0 or not re.fullmatch(r"\d+\.\d{2}", fields["ssl_amount"]):
            return _error("5021", "Invalid Amount", "The amount supplied is invalid.")
        currency = fields.get("ssl_transaction_currency", "USD")
        if currency not in ACCEPTED_CURRENCIES:
            return _error("5087", "Transaction Currency Not Allowed", "The terminal is not set up for this currency.")
        approved = pan not in DECLINING_CARDS  # the demo host approves any other valid card
        now = dt.datetime.now(dt.UTC)
        transaction = SandboxTransaction(
            ssl_txn_id=f"{now:%d%m%y}A15-{uuid.uuid4()}".upper(),
            ssl_transaction_type="SALE",
            ssl_merchant_txn_id=fields.get("ssl_merchant_txn_id", ""),
            ssl_amount=fields["ssl_amount"],
            ssl_transaction_currency=currency,
            ssl_card_number=mask_pan(pan),
            ssl_result="0" if approved else "1",
            ssl_result_message="APPROVAL" if approved else "DECLINED",
            ssl_approval_code=secrets.token_hex(3).upper() if approved else "",
            ssl_txn_time=now.strftime("%m/%d/%Y %I:%M:%S %p"),
        )
        with self._lock:
            self._transactions.append(transaction)
        return {
            **asdict(transaction),
            "ssl_transaction_type": "SALE",
            "ssl_exp_date": fields["ssl_exp_date"],
            "ssl_card_short_description": _SHORT_BRAND.get(card_brand(pan), "OTHER"),
            "ssl_avs_response": "Y" if approved else "",
            "ssl_cvv2_response": "M" if fields.get("ssl_cvv2cvc2") else "",
        }


def _error(code: str, name: str, message: str) -> dict[str, str]:
    return {"errorCode": code, "errorName": name, "errorMessage": message}


def _handler_for(sandbox: ConvergeSandbox) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path.split("?")[0] != XML_PATH:
                self._reply(404, "text/plain", b"not found")
                return
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
            try:
                fields = from_xml(form.get("xmldata", [""])[0])
            except Exception:
                fields = None
            response = (
                _error("4000", "Invalid XML", "The xmldata could not be parsed.")
                if fields is None
                else sandbox.process(fields)
            )
            self._reply(200, "text/xml; charset=utf-8", to_xml(response).encode())

        def do_GET(self) -> None:
            if self.path.split("?")[0] != TRANSACTIONS_PATH:
                self._reply(404, "text/plain", b"not found")
                return
            body = json.dumps([asdict(t) for t in sandbox.transactions]).encode()
            self._reply(200, "application/json", body)

        def _reply(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - request lines carry no card data, but stay quiet
            return

    return Handler
