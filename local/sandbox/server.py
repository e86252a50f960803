"""The sandbox's HTTP face: Converge's two endpoints, at Elavon's demo paths, and a control API.

- POST /VirtualMerchantDemo/processxml.do   form field xmldata=<txn>...</txn>; answers text/xml
- POST /VirtualMerchantDemo/process.do      form fields; with ssl_show_form=false and
                                            ssl_result_format=ASCII answers key=value lines,
                                            joined by newlines, none after the last
- GET  /_sandbox/transactions               the sandbox's own record, JSON (card numbers masked); a
                                            completed or deleted one names the ssl_merchant_txn_id
                                            that did it (completion_/delete_merchant_txn_id)
- POST /_sandbox/settle                     close the open batch: open sales, completions and
                                            returns become settled (STL); JSON {"settled": [ids]}
- POST /_sandbox/transactions               forge an approved transaction no request made (JSON: ssl_amount,
                                            ssl_transaction_type, ssl_transaction_currency,
                                            ssl_merchant_txn_id, ssl_trans_status, at); 201 with its record
- POST /_sandbox/transactions/<ssl_txn_id>  change what Converge holds of one: JSON with any of ssl_amount,
                                            ssl_trans_status, ssl_result_message, hidden; 200 with its record
- DELETE /_sandbox/transactions/<ssl_txn_id>  take a forged transaction out of the record again (only a
                                            forged one: 400 for any other)
- GET|POST /_sandbox/listing-limit          the most transactions one txnquery listing holds, the newest
                                            (JSON {"limit": n or null})
- GET|POST|DELETE /_sandbox/faults          list, add (JSON FaultRule) or clear fault rules
A request may also carry `X-Sandbox-Fault: <kind>` to meet one fault, just this once.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from local.sandbox.faults import CONVERGE_ERRORS, FAULT_KINDS, FaultPlan, FaultRule, FiredFault
from local.sandbox.terminal import SandboxCredentials, Terminal
from payments.processors.converge import from_xml, to_xml

XML_PATH = "/VirtualMerchantDemo/processxml.do"
KEY_VALUE_PATH = "/VirtualMerchantDemo/process.do"
TRANSACTIONS_PATH = "/_sandbox/transactions"
FAULTS_PATH = "/_sandbox/faults"
SETTLE_PATH = "/_sandbox/settle"
LISTING_LIMIT_PATH = "/_sandbox/listing-limit"
MAX_BODY_BYTES = 64 * 1024
Answer = dict[str, str] | list[dict[str, str]]


class ConvergeSandbox:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: SandboxCredentials | None = None,
        hold_seconds: float = 30.0,
        seed: int | None = None,
        listing_limit: int | None = None,
    ) -> None:
        self.terminal = Terminal(credentials, listing_limit=listing_limit)
        self.faults = FaultPlan(seed)
        self.hold_seconds = hold_seconds  # how long a timeout_after_charge answer is withheld
        self._exchanges: list[Exchange] = []
        self._exchanges_lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def credentials(self) -> SandboxCredentials:
        return self.terminal.credentials

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

    def transactions(self) -> list[dict[str, object]]:
        return [t.to_record() for t in self.terminal.transactions]

    def settle(self) -> list[str]:
        """Close the open batch (Converge settles daily); the ssl_txn_ids settled."""
        return self.terminal.settle()

    def forge(self, **fields: object) -> dict[str, object]:
        """File an approved transaction no request made (Terminal.forge); its record."""
        return self.terminal.forge(fields).to_record()

    def forget(self, ssl_txn_id: str) -> None:
        """Take a forged transaction out of the record again (Terminal.forget)."""
        self.terminal.forget(ssl_txn_id)

    def alter(self, ssl_txn_id: str, **changes: object) -> dict[str, object]:
        """Change what the terminal holds of one transaction (Terminal.alter); its record."""
        return self.terminal.alter(ssl_txn_id, changes).to_record()

    def exchanges(self) -> list[Exchange]:
        """Every Converge request received, in order, and whether the client was given an answer."""
        with self._exchanges_lock:
            return list(self._exchanges)

    def note(self, exchange: Exchange) -> None:
        with self._exchanges_lock:
            self._exchanges.append(exchange)


@dataclass(frozen=True)
class Exchange:
    operation: str
    merchant_txn_id: str
    fault: str | None
    answered: bool  # a Converge reply (approval, decline or errorCode) was sent back


def xml_answer(answer: Answer) -> bytes:
    if isinstance(answer, dict):
        return to_xml(answer).encode()
    body = "".join(to_xml(fields) for fields in answer)
    return f"<txnlist><ssl_txn_count>{len(answer)}</ssl_txn_count>{body}</txnlist>".encode()


def ascii_answer(answer: Answer) -> bytes:
    """One key=value per line, with no newline after the last: a client that splits the body on
    every newline must meet no empty line."""
    if isinstance(answer, dict):
        lines = [f"{k}={v}" for k, v in answer.items()]
    else:
        lines = [f"ssl_txn_count={len(answer)}"] + [f"{k}={v}" for fields in answer for k, v in fields.items()]
    return "\n".join(lines).encode()


def html_answer(answer: Answer) -> bytes:
    rows = answer if isinstance(answer, list) else [answer]
    inputs = "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for fields in rows for k, v in fields.items()
    )
    return f"<html><body><form>{inputs}</form></body></html>".encode()


def _handler_for(sandbox: ConvergeSandbox) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            path = self.path.split("?")[0]
            body = self._body()
            if body is None:
                return
            if path == FAULTS_PATH:
                self._add_fault(body)
            elif path == SETTLE_PATH:
                self._json(200, {"settled": sandbox.settle()})
            elif path == TRANSACTIONS_PATH:
                self._control(201, lambda given: sandbox.forge(**given), body)
            elif path.startswith(TRANSACTIONS_PATH + "/"):
                txn_id = path[len(TRANSACTIONS_PATH) + 1 :]
                self._control(200, lambda given: sandbox.alter(txn_id, **given), body)
            elif path == LISTING_LIMIT_PATH:
                self._control(200, lambda given: self._set_limit(given.get("limit")), body)
            elif path in (XML_PATH, KEY_VALUE_PATH):
                self._converge(path, body)
            else:
                self._reply(404, "text/plain", b"not found")

        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            if path == TRANSACTIONS_PATH:
                self._json(200, sandbox.transactions())
            elif path == FAULTS_PATH:
                self._json(200, [rule.to_json() for rule in sandbox.faults.rules])
            elif path == LISTING_LIMIT_PATH:
                self._json(200, {"limit": sandbox.terminal.listing_limit})
            else:
                self._reply(404, "text/plain", b"not found")

        def do_DELETE(self) -> None:
            path = self.path.split("?")[0]
            if path.startswith(TRANSACTIONS_PATH + "/"):
                txn_id = path[len(TRANSACTIONS_PATH) + 1 :]
                self._control(200, lambda _: sandbox.forget(txn_id) or {"forgotten": txn_id}, b"")
                return
            if path != FAULTS_PATH:
                self._reply(404, "text/plain", b"not found")
                return
            sandbox.faults.clear()
            self._json(200, [])

        def _body(self) -> bytes | None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self._reply(413, "text/plain", b"request too large")
                return None
            return self.rfile.read(length)

        def _control(self, status: int, action: Any, body: bytes) -> None:
            """A control request: a JSON object in, the action's answer out (400 for a bad one, 404 for an
            unknown transaction)."""
            try:
                given = json.loads(body or b"{}")
                if not isinstance(given, dict):
                    raise ValueError("the body must be a JSON object")
                answer = action(given)
            except KeyError:
                self._json(404, {"error": "no such transaction"})
                return
            except (ValueError, TypeError) as error:
                self._json(400, {"error": str(error)})
                return
            self._json(status, answer)

        def _set_limit(self, limit: Any) -> dict[str, Any]:
            sandbox.terminal.set_listing_limit(limit)
            return {"limit": sandbox.terminal.listing_limit}

        def _add_fault(self, body: bytes) -> None:
            try:
                rule = sandbox.faults.add(FaultRule.from_json(json.loads(body)))
            except (ValueError, TypeError) as error:
                self._json(400, {"error": str(error)})
                return
            self._json(201, rule.to_json())

        def _converge(self, path: str, body: bytes) -> None:
            form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
            if path == XML_PATH:
                try:
                    fields = from_xml(form.get("xmldata", ""))
                except Exception:
                    self._reply(
                        200,
                        "text/xml",
                        to_xml(
                            {
                                "errorCode": "4000",
                                "errorName": "Invalid XML",
                                "errorMessage": "The xmldata could not be parsed.",
                            }
                        ).encode(),
                    )
                    return
            else:
                fields = form
            header = (self.headers.get("X-Sandbox-Fault") or "").strip()
            fault = FiredFault(header) if header in FAULT_KINDS else sandbox.faults.draw(fields)
            kind = fault.fault if fault else None
            exchange = Exchange(
                fields.get("ssl_transaction_type", "").lower(), fields.get("ssl_merchant_txn_id", ""), kind, False
            )
            if kind == "drop_before_charge":
                sandbox.note(exchange)
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if kind == "http_500":
                sandbox.note(exchange)
                self._reply(500, "text/html", b"<html><body>500 Internal Server Error</body></html>")
                return
            if fault is not None and kind == "charge_in_flight":
                # Slow inside Converge: the client gives up first, the sale is filed afterwards.
                sandbox.note(exchange)
                time.sleep(fault.delay_ms / 1000)
                sandbox.terminal.process(fields)
                time.sleep(sandbox.hold_seconds)
                self.close_connection = True
                return
            if kind in CONVERGE_ERRORS:
                code, name, message = CONVERGE_ERRORS[kind]
                answer: Answer = {"errorCode": code, "errorName": name, "errorMessage": message}
            else:
                answer = sandbox.terminal.process(fields)
            if fault is not None and kind == "latency":
                time.sleep(fault.delay_ms / 1000)
            if kind == "timeout_after_charge":
                sandbox.note(exchange)
                time.sleep(sandbox.hold_seconds)  # charged; the client gives up before this ends
                self.close_connection = True
                return
            sandbox.note(Exchange(exchange.operation, exchange.merchant_txn_id, kind, True))
            self._answer(path, fields, answer)

        def _answer(self, path: str, fields: dict[str, str], answer: Answer) -> None:
            if path == XML_PATH:
                self._reply(200, "text/xml", xml_answer(answer))
            elif (
                fields.get("ssl_show_form", "").lower() == "false"
                and fields.get("ssl_result_format", "").upper() == "ASCII"
            ):
                self._reply(200, "text/plain", ascii_answer(answer))
            else:
                self._reply(200, "text/html", html_answer(answer))

        def _json(self, status: int, payload: Any) -> None:
            self._reply(status, "application/json", json.dumps(payload).encode())

        def _reply(self, status: int, content_type: str, body: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", f"{content_type}; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet: request lines are noise
            return

    return Handler
