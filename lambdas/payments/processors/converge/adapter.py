"""Converge behind the processor port: the workflow's operations mapped onto Converge transaction types."""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

from payments import settings, snapshot, topology
from payments.errors import ProcessorRejected, ProcessorTimeout
from payments.processors.converge.client import (
    DEFAULT_LISTING_LIMIT,
    ConvergeCall,
    ConvergeClient,
    ConvergeCredentials,
    ConvergeSettings,
    kept_fields,
    listed_time,
    operation_listing_type,
    operation_of,
)
from payments.processors.converge.client import sale_of as converge_sale_of
from payments.processors.converge.results import approved_in_listing, declined_in_listing, normalize_converge_result
from payments.processors.port import (
    AuditView,
    CallOutcome,
    ExpectedSale,
    ListedKind,
    ListedOutcome,
    ListedTransaction,
    Listing,
    OperationInstruction,
    PaymentInstruction,
    ProcessorCall,
    ProcessorTimeouts,
    StoredToken,
)
from payments.state import ProcessorOutcome

PROCESSOR_ID = topology.PROCESSOR_ELAVON
# Converge's batch status of a settled transaction (txnquery `ssl_trans_status`); OPN is the open batch.
SETTLED_STATUS = "STL"
# An OperationID as it goes out in ssl_merchant_txn_id: what txnquery can search by, never card-like text.
_OPERATION_ID = re.compile(r"[A-Za-z0-9_-]{1,36}")
# What a listing by time calls each kind of transaction (client.py: FORCE for a completion, DELETE for the
# release of an authorization; a voided or deleted charge is listed as VOID or DELETE under its own id).
_LISTED_KINDS: dict[str, ListedKind] = {
    "SALE": "sale",
    "AUTHONLY": "authorization",
    "FORCE": "capture",
    "VOID": "void",
    "DELETE": "void",
    "RETURN": "refund",
}
# What moves no money, of the requests this adapter knows to send (ccverify, ccgettoken): the only types
# left out of reconciliation. Any other type is "unknown", and judged as money.
_NOT_MONEY_TYPES = frozenset({"CARDVERIFICATION", "GETTOKEN"})
# A listing call never outlives the function: stop paging with this much time left for the last answer.
_PAGE_MARGIN_SECONDS = 2.0
# However many pages: a window needing more is left incomplete, for a smaller window.
MAX_PAGES = 1000


class ConvergeProcessor:
    """sale → ccsale, authorize → ccauthonly, capture → cccomplete, void → ccvoid (ccdelete for an
    authorization never captured), refund → ccreturn, find by merchant transaction id → txnquery by
    ssl_merchant_txn_id, settlement → txnquery by ssl_txn_id, transactions between two times → txnquery by
    search dates and times, paged."""

    processor_id = PROCESSOR_ID

    def __init__(self, client: ConvergeClient) -> None:
        self.client = client
        self.timeouts = ProcessorTimeouts(connect=client.settings.connect_timeout, read=client.settings.read_timeout)

    def sale(self, instruction: PaymentInstruction) -> ConvergeCall:
        return self._pay(self.client.sale, instruction)

    def authorize(self, instruction: PaymentInstruction) -> ConvergeCall:
        return self._pay(self.client.auth_only, instruction)

    def capture(
        self, processor_transaction_id: str, amount: Decimal | None = None, currency: str | None = None
    ) -> ConvergeCall:
        # A partial amount is written in its currency's minor units (JPY 2500, USD 25.00), so it needs
        # the currency; without it a partial capture is refused before anything is sent.
        return self.client.complete(processor_transaction_id, amount, currency)

    def void(self, processor_transaction_id: str) -> ConvergeCall:
        return self.client.void(processor_transaction_id)

    def refund(
        self, processor_transaction_id: str, amount: Decimal | None = None, currency: str | None = None
    ) -> ConvergeCall:
        return self.client.refund(processor_transaction_id, amount, currency)

    def send_operation(self, instruction: OperationInstruction) -> ConvergeCall:
        """The operation, tagged ssl_merchant_txn_id = OperationID; a capture's or refund's amount is
        always sent, written in the original's currency (Converge takes the currency from the original)."""
        if not _OPERATION_ID.fullmatch(instruction.operation_id):
            raise ValueError("an OperationID is 1-36 characters of A-Z, a-z, 0-9, '_' and '-'")
        txn_id, tag = instruction.processor_transaction_id, instruction.operation_id
        if instruction.kind == "capture":
            return self.client.complete(txn_id, instruction.amount, instruction.currency, merchant_txn_id=tag)
        if instruction.kind == "refund":
            return self.client.refund(txn_id, instruction.amount, instruction.currency, merchant_txn_id=tag)
        if instruction.kind == "void":
            if instruction.of_authorization:
                return self.client.delete(txn_id, merchant_txn_id=tag)
            return self.client.void(txn_id, merchant_txn_id=tag)
        raise ValueError(f"unknown operation kind {instruction.kind!r}")

    def settlement_of(self, processor_transaction_id: str) -> tuple[ConvergeCall, bool]:
        """txnquery by ssl_txn_id: settled iff Converge lists the transaction with ssl_trans_status STL.

        Converge's errors come as the client raises them (an unknown ssl_txn_id is 5040: rejected). A
        listing without that transaction is rejected too (Converge holds no such transaction: asking
        again cannot help); one that lists only others cannot be read, so the answer is unknown."""
        call = self.client.query(txn_id=processor_transaction_id)
        if not call.transactions:
            raise ProcessorRejected("Converge txnquery lists no transaction for this ssl_txn_id", call)
        listed = [t for t in call.transactions if t.get("ssl_txn_id") == processor_transaction_id]
        if not listed:
            raise ProcessorTimeout(
                f"Converge txnquery lists {len(call.transactions)} transaction(s), none with this ssl_txn_id: "
                "settlement unknown",
                call,
            )
        return call, all(t.get("ssl_trans_status") == SETTLED_STATUS for t in listed)

    def operation_found(self, lookup: ProcessorCall, instruction: OperationInstruction) -> dict[str, str] | None:
        assert isinstance(lookup, ConvergeCall)
        found = operation_of(lookup, instruction)
        if found is not None:
            return kept_fields(found)
        if lookup.transactions:
            raise ProcessorTimeout(
                f"Converge lists {len(lookup.transactions)} transaction(s) for this OperationID, none shown to be "
                f"our {instruction.kind} (merchant id, type {operation_listing_type(instruction)}, amount and "
                "currency must all match): outcome unknown"
            )
        return None

    def transactions_between(
        self, start: dt.datetime, end: dt.datetime, *, seconds_left: Callable[[], float] | None = None
    ) -> Listing:
        """txnquery by time, paged as Converge pages: it lists newest first and at most `listing_limit`
        transactions (the client's setting), so a listing that long may have been cut short, and the next page
        is asked up to the second of the oldest transaction listed (that second again: its other transactions
        may be on the next page). A row listed on two pages (its ssl_txn_id, merchant transaction id and
        ssl_txn_time) is kept once, as the later page lists it: it may have changed in between (its batch
        closed, a void landed and it is listed VOID). A full page all within one second cannot be paged by
        time: the listing is then left incomplete, as it is when the function runs short of time."""
        limit = self.client.settings.listing_limit
        budget = _PAGE_MARGIN_SECONDS + self.timeouts.connect + self.timeouts.read
        # row -> (the page that last listed it, its copies on that page by transaction type: one row each)
        listed: dict[tuple[str, str, str], tuple[int, dict[str, dict[str, str]]]] = {}
        calls: list[ConvergeCall] = []
        until, complete = end, False
        while len(calls) < MAX_PAGES and (seconds_left is None or seconds_left() > budget):
            call = self.client.list_between(start, until)
            calls.append(call)
            page = len(calls)
            for transaction in call.transactions:
                row = (
                    transaction.get("ssl_txn_id", ""),
                    transaction.get("ssl_merchant_txn_id", ""),
                    transaction.get("ssl_txn_time", ""),
                )
                seen_on, copies = listed.get(row, (page, {}))
                if seen_on != page:
                    copies = {}  # listed again: this page's copy is the latest
                copies[transaction.get("ssl_transaction_type", "").upper()] = transaction
                listed[row] = (page, copies)
            if len(call.transactions) < limit:
                complete = True
                break
            times = [_time_of(transaction) for transaction in call.transactions]
            if min(times) == max(times) or min(times) >= until.replace(microsecond=0):
                break  # a full page within one second: no time to page by
            until = min(times)
        return Listing(
            transactions=tuple(
                _listed(transaction) for _, copies in listed.values() for transaction in copies.values()
            ),
            calls=tuple(calls),
            complete=complete,
            pages=len(calls),
        )

    def find_by_merchant_transaction_id(self, transaction_id: str, since: dt.date) -> ConvergeCall:
        # Converge searches by date; a day either side covers its time zone and ours.
        tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
        return self.client.query(merchant_txn_id=transaction_id, start=since - dt.timedelta(days=1), end=tomorrow)

    def sale_found(self, lookup: ProcessorCall, expected: ExpectedSale) -> dict[str, str] | None:
        assert isinstance(lookup, ConvergeCall)
        found = converge_sale_of(lookup, expected)
        if found is not None:
            return kept_fields(found)
        if lookup.transactions:
            raise ProcessorTimeout(
                f"Converge lists {len(lookup.transactions)} transaction(s) for this TransactionID, none shown to be "
                "our sale (merchant id, type, amount, currency and card must all match): outcome unknown"
            )
        return None

    def normalize(self, result: dict[str, str]) -> ProcessorOutcome:
        return normalize(result)

    @staticmethod
    def _pay(operation: Callable[..., ConvergeCall], instruction: PaymentInstruction) -> ConvergeCall:
        source = instruction.source
        return operation(
            transaction_id=instruction.transaction_id,
            amount=instruction.amount,
            currency=instruction.currency,
            card=None if isinstance(source, StoredToken) else source,
            token=source.token if isinstance(source, StoredToken) else None,
            description=instruction.description,
        )

    def audit_view(self, call: ProcessorCall) -> AuditView:
        assert isinstance(call, ConvergeCall)
        return AuditView(
            operation=call.operation,
            outcome=_outcome_of(call),
            result_code=call.result_code,
            query=call.masked_request,
            response=call.masked_response,
            started_at=call.started_at,
            latency_ms=call.latency_ms,
        )


def _time_of(transaction: dict[str, str]) -> dt.datetime:
    moment = listed_time(transaction.get("ssl_txn_time", ""))
    if moment is None:
        raise ProcessorTimeout("Converge txnquery lists a transaction without a readable ssl_txn_time: cannot page")
    return moment


def _listed(transaction: dict[str, str]) -> ListedTransaction:
    """One listed transaction, processor-neutral: no card number, no token, nothing but what is compared."""
    outcome: ListedOutcome = (
        "APPROVED"
        if approved_in_listing(transaction)
        else "DECLINED"
        if declined_in_listing(transaction)
        else "UNKNOWN"
    )
    try:
        amount: Decimal | None = Decimal(transaction.get("ssl_amount", ""))
    except InvalidOperation:
        amount = None
    return ListedTransaction(
        processor_transaction_id=transaction.get("ssl_txn_id", ""),
        reference=transaction.get("ssl_merchant_txn_id", ""),
        kind=_kind_of(transaction.get("ssl_transaction_type", "").upper()),
        amount=amount,
        currency=transaction.get("ssl_transaction_currency", ""),
        outcome=outcome,
        settled=transaction.get("ssl_trans_status") == SETTLED_STATUS,
        at=_time_of(transaction),
    )


def _kind_of(transaction_type: str) -> ListedKind:
    if transaction_type in _LISTED_KINDS:
        return _LISTED_KINDS[transaction_type]
    return "other" if transaction_type in _NOT_MONEY_TYPES else "unknown"


def _outcome_of(call: ConvergeCall) -> CallOutcome:
    if call.is_error:
        return "ERROR"
    if call.operation == "txnquery":
        return "FOUND" if call.transactions else "NOT_FOUND"
    return "APPROVED" if call.response.get("ssl_result") == "0" else "DECLINED"


def normalize(result: dict[str, str]) -> ProcessorOutcome:
    return normalize_converge_result(result)


def from_environment() -> ConvergeProcessor:
    """Credentials from Secrets Manager in AWS (cached by Powertools), from plain variables locally."""
    secret_arn = settings.optional(topology.CONVERGE_SECRET_ARN)
    if secret_arn:
        from aws_lambda_powertools.utilities import parameters

        secret: dict[str, str] = parameters.get_secret(secret_arn, transform="json", max_age=300)
        credentials = ConvergeCredentials(secret["ssl_merchant_id"], secret["ssl_user_id"], secret["ssl_pin"])
    else:
        credentials = ConvergeCredentials(
            merchant_id=settings.required(topology.CONVERGE_MERCHANT_ID),
            user_id=settings.required(topology.CONVERGE_USER_ID),
            pin=settings.required(topology.CONVERGE_PIN),
        )
    budget = topology.PROCESSOR_TIME_BUDGET
    return _processor(
        ConvergeSettings(
            url=settings.required(topology.CONVERGE_URL),
            credentials=credentials,
            connect_timeout=settings.seconds(topology.CONVERGE_CONNECT_TIMEOUT_SECONDS, budget.connect_seconds),
            read_timeout=settings.seconds(topology.CONVERGE_READ_TIMEOUT_SECONDS, budget.read_seconds),
            listing_limit=settings.whole_number(topology.CONVERGE_LISTING_LIMIT, DEFAULT_LISTING_LIMIT),
        )
    )


@snapshot.forget_on_restore
@functools.cache
def _processor(config: ConvergeSettings) -> ConvergeProcessor:
    """One client per configuration and process: it keeps the HTTP connection pool."""
    return ConvergeProcessor(ConvergeClient(config))
