"""Elavon Converge XML API client (`processxml.do`, form field `xmldata=<txn>...</txn>`).

Converge answers HTTP 200 for approvals, declines and its own errors alike; `ssl_result` 0 is
an approval, any other result a decline, and an `errorCode` element an error. A decline is a
normal outcome, returned; only transport failures and Converge errors raise.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import urlencode
from xml.sax.saxutils import escape

import urllib3
from defusedxml import ElementTree

from payments.cards import mask_pan
from payments.errors import ProcessorRejected, ProcessorTimeout, ProcessorUnavailable

# Converge error codes that mean "the gateway did not take the request".
_UNAVAILABLE_ERRORS = frozenset({"4022"})
# Converge error codes after which the transaction may or may not have gone through.
_OUTCOME_UNKNOWN_ERRORS = frozenset({"3000", "4017"})
# Only these response fields leave the adapter: enough to normalize and audit, no card data.
RESULT_FIELDS = (
    "ssl_result",
    "ssl_result_message",
    "ssl_txn_id",
    "ssl_approval_code",
    "ssl_avs_response",
    "ssl_cvv2_response",
    "ssl_txn_time",
    "ssl_amount",
    "ssl_transaction_currency",
    "ssl_card_short_description",
    "ssl_card_number",
    "ssl_merchant_txn_id",
    "errorCode",
    "errorName",
    "errorMessage",
)
_SECRET_REQUEST_FIELDS = frozenset({"ssl_pin", "ssl_cvv2cvc2"})
_MASKED_REQUEST_FIELDS = frozenset({"ssl_card_number", "ssl_token"})


@dataclass(frozen=True)
class ConvergeCredentials:
    merchant_id: str
    user_id: str
    pin: str = field(repr=False)


@dataclass(frozen=True)
class ConvergeSettings:
    url: str  # the full processxml.do URL
    credentials: ConvergeCredentials
    connect_timeout: float = 3.0
    read_timeout: float = 20.0


@dataclass(frozen=True)
class CardDetails:
    """Plaintext card data: exists only in memory inside CallProcessor."""

    number: str = field(repr=False)
    expiry_month: int
    expiry_year: int
    cvv: str | None = field(default=None, repr=False)
    holder_name: str | None = None


@dataclass(frozen=True)
class ConvergeCall:
    """One request/response exchange, with what the audit trail needs."""

    operation: str
    request: dict[str, str] = field(repr=False)
    response: dict[str, str]
    started_at: str
    latency_ms: int

    @property
    def masked_request(self) -> dict[str, str]:
        """The request as the audit stores it: PAN masked, CVV and PIN removed."""
        masked = {}
        for name, value in self.request.items():
            if name in _SECRET_REQUEST_FIELDS:
                continue
            masked[name] = mask_pan(value) if name in _MASKED_REQUEST_FIELDS else value
        return masked

    @property
    def result(self) -> dict[str, str]:
        """The response fields we keep, PAN masked even if Converge sent it in clear."""
        kept = {name: self.response[name] for name in RESULT_FIELDS if name in self.response}
        digits = re.sub(r"\D", "", kept.get("ssl_card_number", ""))
        if len(digits) >= 12:  # Converge masks it; if a clear PAN ever comes back, we mask it ourselves
            kept["ssl_card_number"] = mask_pan(digits)
        return kept

    @property
    def is_error(self) -> bool:
        return "errorCode" in self.response

    @property
    def result_code(self) -> str:
        return self.response.get("errorCode") or self.response.get("ssl_result", "")


def to_xml(fields: dict[str, str]) -> str:
    """`<txn>` with one element per field; values are escaped, so they are data, never markup."""
    body = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in fields.items())
    return f"<txn>{body}</txn>"


def from_xml(document: str | bytes) -> dict[str, str]:
    root = ElementTree.fromstring(document)
    if root.tag != "txn":
        raise ValueError(f"unexpected Converge response root <{root.tag}>")
    return {child.tag: (child.text or "") for child in root}


class ConvergeClient:
    """Speaks Converge's XML API. One instance per process: it keeps the HTTP connection pool."""

    def __init__(self, settings: ConvergeSettings, http: urllib3.PoolManager | None = None) -> None:
        self.settings = settings
        self._http = http or urllib3.PoolManager(retries=False)

    def sale(
        self,
        *,
        transaction_id: str,
        amount: Decimal,
        currency: str,
        card: CardDetails | None = None,
        token: str | None = None,
        description: str | None = None,
    ) -> ConvergeCall:
        """`ccsale`, tagged with `ssl_merchant_txn_id` = TransactionID so it can be found again."""
        fields = {"ssl_transaction_type": "ccsale", "ssl_amount": f"{amount:.2f}", "ssl_transaction_currency": currency}
        if card is not None:
            fields |= _card_fields(card)
        elif token is not None:
            fields["ssl_token"] = token
        else:
            raise ValueError("a sale needs a card or a token")
        fields["ssl_merchant_txn_id"] = transaction_id
        if description:
            fields["ssl_description"] = description[:255]
        return self._send("ccsale", fields)

    def _send(self, operation: str, fields: dict[str, str]) -> ConvergeCall:
        credentials = self.settings.credentials
        request = {
            "ssl_merchant_id": credentials.merchant_id,
            "ssl_user_id": credentials.user_id,
            "ssl_pin": credentials.pin,
            **fields,
        }
        started_at = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        start = time.perf_counter()
        try:
            reply = self._http.request(
                "POST",
                self.settings.url,
                body=urlencode({"xmldata": to_xml(request)}),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                timeout=urllib3.Timeout(connect=self.settings.connect_timeout, read=self.settings.read_timeout),
            )
        except (urllib3.exceptions.ConnectTimeoutError, urllib3.exceptions.NewConnectionError) as error:
            raise ProcessorUnavailable(f"Converge {operation}: could not connect ({type(error).__name__})") from None
        except urllib3.exceptions.ReadTimeoutError:
            raise ProcessorTimeout(f"Converge {operation}: no response within {self.settings.read_timeout}s") from None
        except urllib3.exceptions.HTTPError as error:
            raise ProcessorTimeout(f"Converge {operation}: connection lost ({type(error).__name__})") from None
        latency_ms = round((time.perf_counter() - start) * 1000)
        if reply.status >= 500:
            raise ProcessorTimeout(f"Converge {operation}: HTTP {reply.status}, outcome unknown")
        if reply.status != 200:
            raise ProcessorRejected(f"Converge {operation}: HTTP {reply.status}")
        try:
            response = from_xml(reply.data)
        except Exception:
            raise ProcessorTimeout(f"Converge {operation}: unreadable response, outcome unknown") from None
        call = ConvergeCall(operation, request, response, started_at, latency_ms)
        _raise_for_error(call)
        if response.get("ssl_result") not in ("0", "1"):
            raise ProcessorTimeout(f"Converge {operation}: reply without ssl_result, outcome unknown", call)
        return call


def _card_fields(card: CardDetails) -> dict[str, str]:
    fields = {
        "ssl_card_number": card.number,
        "ssl_exp_date": f"{card.expiry_month:02d}{card.expiry_year % 100:02d}",
    }
    if card.cvv:
        fields |= {"ssl_cvv2cvc2_indicator": "1", "ssl_cvv2cvc2": card.cvv}
    if card.holder_name:
        first, _, last = card.holder_name.partition(" ")
        fields["ssl_first_name"] = first[:20]
        if last:
            fields["ssl_last_name"] = last[:30]
    return fields


def _raise_for_error(call: ConvergeCall) -> None:
    if not call.is_error:
        return
    code = call.response["errorCode"]
    name = call.response.get("errorName", "")
    message = f"Converge {call.operation}: error {code} {name}".strip()
    if code in _UNAVAILABLE_ERRORS:
        raise ProcessorUnavailable(message, call)
    if code in _OUTCOME_UNKNOWN_ERRORS:
        raise ProcessorTimeout(message, call)
    raise ProcessorRejected(message, call)
