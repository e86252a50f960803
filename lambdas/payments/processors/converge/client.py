"""Elavon Converge XML API client (`processxml.do`, form field `xmldata=<txn>...</txn>`).

Converge answers HTTP 200 for approvals, declines and its own errors alike: `ssl_result` 0 is
an approval, 1 a decline, and an `errorCode` element an error. A decline is a normal outcome
and is returned; transport failures and Converge errors raise, typed by what is safe to do next:

- ProcessorUnavailable: the request was not processed (could not connect, 4022). Safe to retry.
- ProcessorTimeout: it may or may not have been processed (no answer in time, a dropped
  connection, HTTP 5xx, 3000, 4017, an unreadable reply). Ask with `query` before sending again.
- ProcessorRejected: the request itself is wrong (credentials, a field, a transaction id). Never retry.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Required, TypedDict, Unpack
from urllib.parse import urlencode
from xml.sax.saxutils import escape

import urllib3
from defusedxml import ElementTree

from payments.cards import mask_card_numbers, mask_pan
from payments.currencies import format_amount
from payments.errors import ProcessorRejected, ProcessorTimeout, ProcessorUnavailable
from payments.processors.converge.results import approved_in_listing
from payments.processors.port import CardDetails, ExpectedSale, OperationInstruction

_UNAVAILABLE_ERRORS = frozenset({"4022"})
_OUTCOME_UNKNOWN_ERRORS = frozenset({"3000", "4017"})
# Operations whose reply must carry ssl_result; without it we cannot know what happened.
_RESULT_OPERATIONS = frozenset({"ccsale", "ccauthonly", "cccomplete", "ccdelete", "ccvoid", "ccreturn", "ccverify"})
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
    "ssl_transaction_type",
    "ssl_trans_status",
    "ssl_card_short_description",
    "ssl_card_number",
    "ssl_merchant_txn_id",
    "ssl_token",
    "ssl_token_response",
    "ssl_txn_count",
    "errorCode",
    "errorName",
    "errorMessage",
)
# A Converge reply is a few kilobytes (a txnquery listing a few dozen); anything far larger is not one.
MAX_REPLY_BYTES = 256 * 1024
# A listing by time (reconciliation) may hold a whole page of transactions, about 700 bytes each; no money
# moves on its answer, so it may be larger (a page of 10,000 still fits).
MAX_LISTING_REPLY_BYTES = 16 * 1024 * 1024
# Search times, written as Converge writes ssl_txn_time (and as public Converge clients send them).
SEARCH_TIME_FORMAT = "%m/%d/%Y %I:%M:%S %p"
# The most transactions we take one txnquery listing to hold: a listing this long may have been cut short,
# and the adapter pages on. Elavon's pages read here name no number; CONVERGE_LISTING_LIMIT sets it.
DEFAULT_LISTING_LIMIT = 100
_SECRET_REQUEST_FIELDS = frozenset({"ssl_pin", "ssl_cvv2cvc2"})
_MASKED_FIELDS = frozenset({"ssl_card_number", "ssl_token"})
# Free text we send: validation refuses a card number in it, the audit masks one anyway (payments.cards).
_FREE_TEXT_FIELDS = frozenset({"ssl_description", "ssl_first_name", "ssl_last_name"})


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
    listing_limit: int = DEFAULT_LISTING_LIMIT


def mask_token(token: str) -> str:
    return token[:4] + "*" * max(0, len(token) - 8) + token[-4:] if len(token) > 8 else "*" * len(token)


def _mask(name: str, value: str) -> str:
    digits = re.sub(r"\D", "", value)
    # Converge masks card numbers itself; anything that still holds a full PAN (or a PAN-shaped
    # token) is masked here.
    if len(digits) >= 12:
        return mask_pan(digits)
    return mask_token(value) if name == "ssl_token" else value


def _audit_value(name: str, value: str) -> str:
    if name in _MASKED_FIELDS:
        return _mask(name, value)
    if name in _FREE_TEXT_FIELDS:
        return mask_card_numbers(value)
    return value


def kept_fields(fields: dict[str, str]) -> dict[str, str]:
    """The whitelisted fields of one Converge transaction, card number and token masked."""
    kept = {name: fields[name] for name in RESULT_FIELDS if name in fields}
    for name in _MASKED_FIELDS & kept.keys():
        kept[name] = _mask(name, kept[name])
    return kept


@dataclass(frozen=True)
class ConvergeCall:
    """One request/response exchange, with what the audit trail needs."""

    operation: str
    request: dict[str, str] = field(repr=False)
    response: dict[str, str]
    started_at: str
    latency_ms: int
    transactions: tuple[dict[str, str], ...] = ()  # txnquery only: the <txn> elements of <txnlist>

    @property
    def masked_request(self) -> dict[str, str]:
        """The request as the audit stores it: PAN and token masked, CVV and PIN removed, and any card
        number inside the description or the name masked as the PAN is."""
        return {
            name: _audit_value(name, value)
            for name, value in self.request.items()
            if name not in _SECRET_REQUEST_FIELDS
        }

    @property
    def result(self) -> dict[str, str]:
        return kept_fields(self.response)

    @property
    def masked_response(self) -> dict[str, object]:
        """The response as the audit stores it, query results included."""
        masked: dict[str, object] = dict(self.result)
        if self.operation == "txnquery":
            masked["transactions"] = [kept_fields(t) for t in self.transactions]
        return masked

    @property
    def is_error(self) -> bool:
        return "errorCode" in self.response

    @property
    def result_code(self) -> str:
        return (
            self.response.get("errorCode") or self.response.get("ssl_result") or self.response.get("ssl_txn_count", "")
        )


def to_xml(fields: dict[str, str]) -> str:
    """`<txn>` with one element per field; values are escaped, so they are data, never markup."""
    body = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in fields.items())
    return f"<txn>{body}</txn>"


def from_xml(document: str | bytes) -> dict[str, str]:
    """A `<txn>` document as a flat dict. Untrusted input: parsed with defusedxml."""
    fields, _ = parse_reply(document)
    if fields.get("_root") != "txn":
        raise ValueError(f"unexpected Converge document root <{fields.get('_root')}>")
    del fields["_root"]
    return fields


def parse_reply(document: str | bytes) -> tuple[dict[str, str], tuple[dict[str, str], ...]]:
    """A reply: `<txn>` (one transaction or an error) or `<txnlist>` (txnquery results).

    A reply that could be read two ways is not read at all: a field given twice
    (`<ssl_result>1</ssl_result>…<ssl_result>0</ssl_result>`), or a field holding elements, raises
    ValueError, which the client turns into an unknown outcome, never an approval or a decline.
    """
    root = ElementTree.fromstring(document)
    if root.tag not in ("txn", "txnlist"):
        raise ValueError(f"unexpected Converge document root <{root.tag}>")
    fields = {"_root": root.tag}
    transactions = []
    for child in root:
        if root.tag == "txnlist" and child.tag == "txn":
            transactions.append(_leaves(child))
        elif len(child) or child.tag in fields:
            raise ValueError("a field appears twice, or holds elements")
        else:
            fields[child.tag] = child.text or ""
    return fields, tuple(transactions)


def _leaves(element: Any) -> dict[str, str]:
    """The fields of one element: each child a leaf, each name once."""
    leaves: dict[str, str] = {}
    for leaf in element:
        if len(leaf) or leaf.tag in leaves:
            raise ValueError("a field appears twice, or holds elements")
        leaves[leaf.tag] = leaf.text or ""
    return leaves


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


class PaymentFields(TypedDict, total=False):
    """What a sale or an authorization takes: a card or a token, and our TransactionID."""

    transaction_id: Required[str]
    amount: Required[Decimal]
    currency: Required[str]
    card: CardDetails | None
    token: str | None
    description: str | None


class ConvergeClient:
    """Speaks Converge's XML API. One instance per process: it keeps the HTTP connection pool."""

    def __init__(self, settings: ConvergeSettings, http: urllib3.PoolManager | None = None) -> None:
        self.settings = settings
        self._http = http or urllib3.PoolManager(retries=False)

    # -- money-moving operations ------------------------------------------------------------
    def sale(self, **payment: Unpack[PaymentFields]) -> ConvergeCall:
        """`ccsale`, tagged `ssl_merchant_txn_id` = TransactionID so that `query` can find it again."""
        return self._send("ccsale", self._payment_fields(**payment))

    def auth_only(self, **payment: Unpack[PaymentFields]) -> ConvergeCall:
        return self._send("ccauthonly", self._payment_fields(**payment))

    def complete(
        self,
        txn_id: str,
        amount: Decimal | None = None,
        currency: str | None = None,
        *,
        merchant_txn_id: str | None = None,
    ) -> ConvergeCall:
        """`cccomplete`: capture an authorization in full, or for a smaller amount in the authorization's
        currency. Converge takes the currency from the authorization; ours only formats the amount."""
        return self._send(
            "cccomplete", {"ssl_txn_id": txn_id, **_amount_field(amount, currency), **_tagged(merchant_txn_id)}
        )

    def void(self, txn_id: str, *, merchant_txn_id: str | None = None) -> ConvergeCall:
        """`ccvoid`: cancel a sale or refund that has not settled."""
        return self._send("ccvoid", {"ssl_txn_id": txn_id, **_tagged(merchant_txn_id)})

    def delete(self, txn_id: str, *, merchant_txn_id: str | None = None) -> ConvergeCall:
        """`ccdelete`: release an authorization that will not be captured."""
        return self._send("ccdelete", {"ssl_txn_id": txn_id, **_tagged(merchant_txn_id)})

    def refund(
        self,
        txn_id: str,
        amount: Decimal | None = None,
        currency: str | None = None,
        *,
        merchant_txn_id: str | None = None,
    ) -> ConvergeCall:
        """`ccreturn`: give back all or part of a settled sale, a partial amount in the sale's currency."""
        return self._send(
            "ccreturn", {"ssl_txn_id": txn_id, **_amount_field(amount, currency), **_tagged(merchant_txn_id)}
        )

    # -- no money moves ---------------------------------------------------------------------
    def verify(self, card: CardDetails) -> ConvergeCall:
        """`ccverify`: check card, AVS and CVV without charging."""
        return self._send("ccverify", _card_fields(card))

    def get_token(self, card: CardDetails) -> ConvergeCall:
        """`ccgettoken`: a reusable `ssl_token` for the card."""
        return self._send("ccgettoken", {**_card_fields(card), "ssl_verify": "N", "ssl_add_token": "Y"})

    def query(
        self,
        *,
        txn_id: str | None = None,
        merchant_txn_id: str | None = None,
        start: dt.date | None = None,
        end: dt.date | None = None,
    ) -> ConvergeCall:
        """`txnquery` by Converge's id, or by our TransactionID over a date range (default: yesterday to today)."""
        if txn_id:
            return self._send("txnquery", {"ssl_txn_id": txn_id})
        if not merchant_txn_id:
            raise ValueError("query needs txn_id or merchant_txn_id")
        start = start or _today() - dt.timedelta(days=1)
        end = end or _today()
        return self._send(
            "txnquery",
            {
                "ssl_merchant_txn_id": merchant_txn_id,
                "ssl_search_start_date": f"{start:%m/%d/%Y}",
                "ssl_search_end_date": f"{end:%m/%d/%Y}",
            },
        )

    def list_between(self, start: dt.datetime, end: dt.datetime) -> ConvergeCall:
        """`txnquery` by date and time: what Converge lists from `start` to `end` (aware datetimes, both
        included, to the second), in UTC both ways (ssl_time_zone_request_utc, ssl_time_zone_response_utc).
        Converge lists newest first and may cut a listing short; the adapter pages (transactions_between).
        A reply whose ssl_txn_count disagrees with the transactions it holds cannot be read (ProcessorTimeout)."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("list_between needs aware datetimes")
        call = self._send(
            "txnquery",
            {
                "ssl_search_start_date": search_time(start),
                "ssl_search_end_date": search_time(end),
                "ssl_time_zone_request_utc": "Y",
                "ssl_time_zone_response_utc": "Y",
            },
            max_reply_bytes=MAX_LISTING_REPLY_BYTES,
        )
        count = call.response.get("ssl_txn_count")
        if count is not None and count != str(len(call.transactions)):
            raise ProcessorTimeout(
                f"Converge txnquery: ssl_txn_count {count} but {len(call.transactions)} transactions listed", call
            )
        return call

    # -- the wire -----------------------------------------------------------------------------
    @staticmethod
    def _payment_fields(
        transaction_id: str,
        amount: Decimal,
        currency: str,
        card: CardDetails | None = None,
        token: str | None = None,
        description: str | None = None,
    ) -> dict[str, str]:
        fields = {"ssl_amount": format_amount(amount, currency), "ssl_transaction_currency": currency}
        if card is not None:
            fields |= _card_fields(card)
        elif token is not None:
            fields["ssl_token"] = token
        else:
            raise ValueError("a payment needs a card or a token")
        fields["ssl_merchant_txn_id"] = transaction_id
        if description:
            fields["ssl_description"] = description[:255]
        return fields

    def _send(self, operation: str, fields: dict[str, str], max_reply_bytes: int = MAX_REPLY_BYTES) -> ConvergeCall:
        credentials = self.settings.credentials
        request = {
            "ssl_merchant_id": credentials.merchant_id,
            "ssl_user_id": credentials.user_id,
            "ssl_pin": credentials.pin,
            "ssl_transaction_type": operation,
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
                preload_content=False,
            )
            body = reply.read(max_reply_bytes + 1)
            reply.release_conn()
        except (urllib3.exceptions.ConnectTimeoutError, urllib3.exceptions.NewConnectionError) as error:
            raise ProcessorUnavailable(f"Converge {operation}: could not connect ({type(error).__name__})") from None
        except urllib3.exceptions.ReadTimeoutError:
            raise ProcessorTimeout(f"Converge {operation}: no answer within {self.settings.read_timeout}s") from None
        except urllib3.exceptions.HTTPError as error:
            raise ProcessorTimeout(f"Converge {operation}: connection lost ({type(error).__name__})") from None
        latency_ms = round((time.perf_counter() - start) * 1000)
        if reply.status >= 500:
            raise ProcessorTimeout(f"Converge {operation}: HTTP {reply.status}, outcome unknown")
        if reply.status == 429:
            raise ProcessorUnavailable(f"Converge {operation}: HTTP 429, not processed")
        if reply.status == 408:
            raise ProcessorTimeout(f"Converge {operation}: HTTP 408, outcome unknown")
        if reply.status != 200:
            raise ProcessorRejected(f"Converge {operation}: HTTP {reply.status}")
        if len(body) > max_reply_bytes:
            raise ProcessorTimeout(f"Converge {operation}: reply over {max_reply_bytes} bytes, outcome unknown")
        try:
            response, transactions = parse_reply(body)
        except Exception:
            raise ProcessorTimeout(f"Converge {operation}: unreadable reply, outcome unknown") from None
        response.pop("_root")
        call = ConvergeCall(operation, request, response, started_at, latency_ms, transactions)
        _raise_for_error(call)
        if operation in _RESULT_OPERATIONS and response.get("ssl_result") not in ("0", "1"):
            raise ProcessorTimeout(f"Converge {operation}: reply without ssl_result, outcome unknown", call)
        return call


def search_time(moment: dt.datetime) -> str:
    """A moment as a txnquery search date, in UTC: `11/27/2026 09:36:01 AM`."""
    return moment.astimezone(dt.UTC).strftime(SEARCH_TIME_FORMAT)


def listed_time(text: str) -> dt.datetime | None:
    """A listed transaction's ssl_txn_time (asked in UTC), or None when it cannot be read."""
    try:
        return dt.datetime.strptime(text.strip(), SEARCH_TIME_FORMAT).replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def _amount_field(amount: Decimal | None, currency: str | None) -> dict[str, str]:
    """A partial amount, in the original transaction's currency: JPY 2500 goes out as 2500, never 2500.00.

    The adjustment itself carries no ssl_transaction_currency (Converge takes the original's), so
    the currency is needed here only to write the amount; without it there is no right way to.
    """
    if amount is None:
        return {}
    if currency is None:
        raise ValueError("a partial amount needs its currency: Converge reads it in that currency's minor units")
    return {"ssl_amount": format_amount(amount, currency)}


def _tagged(merchant_txn_id: str | None) -> dict[str, str]:
    """A follow-on operation's own id (our OperationID) as `ssl_merchant_txn_id`, so `query` can find it again.

    A follow-on sent without one carries none: Converge then files it as it does (the sandbox: under
    the original's merchant transaction id)."""
    if merchant_txn_id is None:
        return {}
    if not merchant_txn_id:
        raise ValueError("merchant_txn_id, when given, must not be empty")
    return {"ssl_merchant_txn_id": merchant_txn_id}


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
    message = f"Converge {call.operation}: error {code} {call.response.get('errorName', '')}".strip()
    if code in _UNAVAILABLE_ERRORS:
        raise ProcessorUnavailable(message, call)
    if code in _OUTCOME_UNKNOWN_ERRORS:
        raise ProcessorTimeout(message, call)
    raise ProcessorRejected(message, call)


# What a txnquery listing calls the transaction each kind of charge creates.
_TRANSACTION_TYPE_OF = {"sale": "SALE", "authorization": "AUTHONLY"}


def sale_of(call: ConvergeCall, expected: ExpectedSale) -> dict[str, str] | None:
    """From a txnquery by merchant id: the sale we sent for this TransactionID, if Converge has one.

    Fails closed: a transaction counts only if it echoes our `ssl_merchant_txn_id`, is a SALE of
    our amount in our currency, and (for a card) ends in our card's last four digits. One that
    lacks any of these is not adopted, so a retry can never take another customer's approval;
    the outcome then stays unknown for the retries and reconciliation to settle. An approved
    sale wins over a declined one.
    """
    sales = [
        t
        for t in call.transactions
        if t.get("ssl_merchant_txn_id") == expected.transaction_id
        and t.get("ssl_transaction_type", "").upper() == _TRANSACTION_TYPE_OF[expected.kind]
        and _same_amount(t.get("ssl_amount", ""), expected.amount)
        and t.get("ssl_transaction_currency") == expected.currency
        and (expected.card_last4 is None or _last4(t.get("ssl_card_number", "")) == expected.card_last4)
    ]
    approved = [t for t in sales if approved_in_listing(t)]
    found = approved or sales
    return found[0] if found else None


# What a txnquery listing by ssl_merchant_txn_id calls the transaction each follow-on operation creates.
# A completion is listed as its cccomplete reply names it (FORCE), a ccvoid as VOID, a ccdelete (the void
# of an authorization never captured) as DELETE, a ccreturn as RETURN. Elavon's public pages do not say
# how Converge lists a completion or a delete by the merchant transaction id that came with it: FORCE and
# DELETE are the sandbox's choice (README, "The Converge sandbox"); anything else listed fails closed.
COMPLETION_LISTING_TYPE = "FORCE"
_OPERATION_TYPE_OF = {"capture": COMPLETION_LISTING_TYPE, "refund": "RETURN", "void": "VOID"}
DELETE_LISTING_TYPE = "DELETE"


def operation_listing_type(instruction: OperationInstruction) -> str:
    """The transaction type a txnquery listing gives the transaction `instruction` creates."""
    if instruction.kind == "void" and instruction.of_authorization:
        return DELETE_LISTING_TYPE
    return _OPERATION_TYPE_OF[instruction.kind]


def operation_of(call: ConvergeCall, instruction: OperationInstruction) -> dict[str, str] | None:
    """From a txnquery by merchant id: the transaction our capture, void or refund created, if listed.

    Fails closed as `sale_of` does: a transaction counts only if it echoes our OperationID as
    `ssl_merchant_txn_id`, has the type this operation creates, and is in our currency and (capture
    and refund, when the instruction names an amount) of our amount. A void moves whatever the
    original holds, so its amount is not compared. An approved one wins over a declined one.
    """
    kind = operation_listing_type(instruction)
    found = [
        t
        for t in call.transactions
        if t.get("ssl_merchant_txn_id") == instruction.operation_id
        and t.get("ssl_transaction_type", "").upper() == kind
        and t.get("ssl_transaction_currency") == instruction.currency
        and (
            instruction.kind == "void"
            or instruction.amount is None
            or _same_amount(t.get("ssl_amount", ""), instruction.amount)
        )
    ]
    approved = [t for t in found if approved_in_listing(t)]
    chosen = approved or found
    return chosen[0] if chosen else None


def _last4(masked: str) -> str | None:
    tail = masked[-4:]
    return tail if len(tail) == 4 and tail.isdigit() else None


def _same_amount(text: str, amount: Decimal) -> bool:
    try:
        return Decimal(text) == amount
    except ArithmeticError:
        return False
