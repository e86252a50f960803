"""What the sandbox's Converge terminal does with a request: Converge's transaction semantics.

A request is a dict of `ssl_*` fields; the answer is a dict of fields (one transaction or an
error) or, for txnquery, a list of transactions. The record keeps masked card numbers only;
the token vault keeps a card's masked number, brand and test behaviour, never the PAN.

A transaction's life, as Converge's Integration Guide describes it: sales, completions and returns
join the open batch (`ssl_trans_status` OPN) and `settle` closes it (STL). Only an open one can be
voided or deleted; only a settled one can be returned. An authorization completes once, in full or
for less (the rest is released). Amounts are written with exactly the currency's minor-unit digits
(25.00 USD, 2500 JPY).

A follow-on (cccomplete, ccdelete, ccvoid, ccreturn) is filed under the request's own
`ssl_merchant_txn_id` (our OperationID) when it carries one, else under the original's. A void and
a return are records of their own; a completion and a delete change the original, which remembers
the merchant transaction id that completed or deleted it, and txnquery by that id lists them.

txnquery by date lists each record at its creation, and a completion or a delete at the moment it
happened, newest first (as Converge's guide says its query results come), within search dates that may
carry a time of day (to the second, both ends included), at most `listing_limit` of them: the newest
ones. The control API can forge what a reconciliation must catch: a transaction the ledger never
recorded (`forge`), and a listed one changed or hidden (`alter`).
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from payments.cards import card_brand, identifier_contains_card_number, luhn_valid, mask_pan
from payments.currencies import exponent_of, format_amount

APPROVING_CARDS = frozenset({"4111111111111111", "5500000000000004", "370000000000002", "6011000000000012"})
DECLINING_CARDS = frozenset({"4000000000000002"})
ACCEPTED_CURRENCIES = frozenset({"USD", "CAD", "EUR", "GBP", "JPY", "AUD", "CHF", "MXN"})
# Cents that make the issuer answer in a particular way (sandbox triggers; Elavon publishes none).
# Only amounts with cents meet them: a zero-decimal amount (JPY) never does.
AMOUNT_TRIGGERS = {
    "51": ("1", "DECLINED: NSF", "N", "M"),
    "52": ("1", "CALL AUTH CENTER", "N", "M"),
    "53": ("1", "EXPIRED CARD", "N", "M"),
    "54": ("1", "PICK UP CARD", "N", "M"),
    "55": ("1", "DECLINE CVV2", "Y", "N"),
    "56": ("0", "APPROVAL", "N", "M"),  # approved, but the address did not match
    "57": ("1", "SERV NOT ALLOWED", "N", "M"),  # Converge's own decline messages, as its guide spells them
    "58": ("1", "REQ. EXCEEDS BAL.", "N", "M"),
}
_SHORT_BRAND = {"VISA": "VISA", "MASTERCARD": "MC", "AMEX": "AMEX", "DISCOVER": "DISC", "JCB": "JCB"}
_CHARGE_TYPES = frozenset({"SALE", "AUTHONLY"})
# ssl_trans_status: open (in the current batch) and settled, as txnquery reports them.
OPEN = "OPN"
SETTLED = "STL"
# What Converge's ccdelete reply leaves out of the original's fields (a DELETE carries no
# authorization of its own).
_NOT_IN_A_DELETE = frozenset({"ssl_approval_code", "ssl_avs_response", "ssl_cvv2_response"})
# The transaction type a cccomplete reply names, and (the sandbox's choice) how txnquery by the
# completion's merchant transaction id lists it; a delete is listed as DELETE.
COMPLETION_TYPE = "FORCE"
DELETE_TYPE = "DELETE"
# Follow-on records of their own (ccvoid, ccreturn), filed under the merchant transaction id they came with.
_FOLLOW_ON_RECORD_TYPES = frozenset({"VOID", "RETURN"})
# Filing order: listings of the same moment come newest-filed first.
_filed = itertools.count(1)
# What `alter` may change of a transaction, as the control API forges a mismatch for reconciliation.
ALTERABLE = frozenset({"ssl_amount", "ssl_trans_status", "ssl_result_message", "hidden"})
_STATUSES = frozenset({OPEN, SETTLED, "PEN", "REV", "PST", "FPR", "PRE"})


@dataclass(frozen=True)
class SandboxCredentials:
    ssl_merchant_id: str = "009999"
    ssl_user_id: str = "webpage"
    ssl_pin: str = "SANDBOXPIN0000000000000000000000000000000000000000000000000000"


@dataclass
class SandboxTransaction:
    """One transaction as the sandbox records it; `to_record` is what the control API shows."""

    ssl_txn_id: str
    ssl_transaction_type: str
    ssl_merchant_txn_id: str
    ssl_amount: Decimal
    ssl_transaction_currency: str
    ssl_card_number: str  # masked
    ssl_card_short_description: str
    ssl_result: str
    ssl_result_message: str
    ssl_approval_code: str
    ssl_avs_response: str
    ssl_cvv2_response: str
    ssl_txn_time: str
    ssl_trans_status: str = OPEN
    original_txn_id: str = ""
    voided: bool = False
    deleted: bool = False
    completed_amount: Decimal | None = None
    refunded_amount: Decimal = Decimal("0.00")
    # The ssl_merchant_txn_id the cccomplete (ccdelete) of this transaction carried, "" if it carried
    # none or none came: txnquery by it lists the completion (the delete).
    completion_merchant_txn_id: str = ""
    delete_merchant_txn_id: str = ""
    completed_at: dt.datetime | None = None
    deleted_at: dt.datetime | None = None
    created: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    # Forged by the control API: txnquery no longer knows it (a transaction lost from Converge's listings);
    # no request made it (a transaction no ledger can hold).
    hidden: bool = False
    forged: bool = False
    filed: int = field(default_factory=lambda: next(_filed))

    @property
    def settled(self) -> bool:
        return self.ssl_trans_status == SETTLED

    @property
    def is_completed_authorization(self) -> bool:
        return self.ssl_transaction_type == "AUTHONLY" and self.completed_amount is not None

    @property
    def in_open_batch(self) -> bool:
        """Money that the next settlement moves: an approved sale, completion or return, not taken back."""
        if self.ssl_result != "0" or self.voided or self.deleted or self.settled:
            return False
        return self.ssl_transaction_type in ("SALE", "RETURN") or self.is_completed_authorization

    @property
    def is_approved_charge(self) -> bool:
        """Money taken and not given back by void or delete (refunds are separate RETURN records)."""
        if self.ssl_result != "0" or self.voided or self.deleted:
            return False
        return self.ssl_transaction_type == "SALE" or (
            self.ssl_transaction_type == "AUTHONLY" and self.completed_amount is not None
        )

    def to_record(self) -> dict[str, object]:
        record = {k: v for k, v in asdict(self).items() if k not in ("created", "completed_at", "deleted_at", "filed")}
        record["ssl_amount"] = self.money(self.ssl_amount)
        record["refunded_amount"] = self.money(self.refunded_amount)
        record["completed_amount"] = None if self.completed_amount is None else self.money(self.completed_amount)
        record["approved_charge"] = self.is_approved_charge
        return record

    def to_fields(self) -> dict[str, str]:
        """The fields Converge returns for this transaction."""
        return {
            "ssl_txn_id": self.ssl_txn_id,
            "ssl_transaction_type": self.ssl_transaction_type,
            "ssl_result": self.ssl_result,
            "ssl_result_message": self.ssl_result_message,
            "ssl_approval_code": self.ssl_approval_code,
            "ssl_amount": self.money(self.ssl_amount),
            "ssl_transaction_currency": self.ssl_transaction_currency,
            "ssl_card_number": self.ssl_card_number,
            "ssl_card_short_description": self.ssl_card_short_description,
            "ssl_avs_response": self.ssl_avs_response,
            "ssl_cvv2_response": self.ssl_cvv2_response,
            "ssl_txn_time": self.ssl_txn_time,
        }

    def to_query_fields(self) -> dict[str, str]:
        """As txnquery lists it: no ssl_result; the status and message say what happened."""
        fields = self.to_fields()
        del fields["ssl_result"]
        fields["ssl_trans_status"] = self.ssl_trans_status
        # Our choice: the adapter adopts only a transaction that echoes our merchant transaction id.
        fields["ssl_merchant_txn_id"] = self.ssl_merchant_txn_id
        # A completed authorization stays AUTHONLY (OPN, then STL once its completion settles). Voided or
        # deleted, a transaction is listed as what ended it, so a retry can never adopt it as a live sale.
        if self.voided:
            fields["ssl_transaction_type"] = "VOID"
        elif self.deleted:
            fields["ssl_transaction_type"] = "DELETE"
        return fields

    def to_completion_query_fields(self) -> dict[str, str]:
        """The completion, as txnquery by its own merchant transaction id lists it (the sandbox's choice):
        the authorization's ssl_txn_id and status, typed as the cccomplete reply names it, for the
        completed amount, at the time it completed. Voided or deleted since, it is listed as that."""
        fields = self.to_query_fields()
        fields["ssl_merchant_txn_id"] = self.completion_merchant_txn_id
        fields["ssl_amount"] = self.money(self.ssl_amount if self.completed_amount is None else self.completed_amount)
        if not (self.voided or self.deleted):
            fields["ssl_transaction_type"] = COMPLETION_TYPE
        if self.completed_at is not None:
            fields["ssl_txn_time"] = _txn_time(self.completed_at)
        return fields

    def to_delete_query_fields(self) -> dict[str, str]:
        """The delete, as txnquery by its own merchant transaction id lists it (the sandbox's choice): as
        the ccdelete reply carried it (the original's ssl_txn_id, amount and status, no approval code,
        AVS or CVV result), typed DELETE, at the time it was deleted."""
        fields = {k: v for k, v in self.to_query_fields().items() if k not in _NOT_IN_A_DELETE}
        fields["ssl_merchant_txn_id"] = self.delete_merchant_txn_id
        fields["ssl_transaction_type"] = DELETE_TYPE
        fields["ssl_result_message"] = "APPROVAL"
        if self.deleted_at is not None:
            fields["ssl_txn_time"] = _txn_time(self.deleted_at)
        return fields

    def listings_for(self, merchant_txn_id: str | None) -> list[tuple[dt.datetime, dict[str, str]]]:
        """What txnquery lists of this record, with the moment each listing dates from: the transaction
        itself under its own merchant transaction id, and its completion or delete under theirs (asked by
        merchant transaction id), or at the moment it happened (asked by date alone). A hidden record
        lists nothing."""
        if self.hidden:
            return []
        listings = []
        if not merchant_txn_id or self.ssl_merchant_txn_id == merchant_txn_id:
            listings.append((self.created, self.to_query_fields()))
        if self.completed_at is not None and (
            not merchant_txn_id or self.completion_merchant_txn_id == merchant_txn_id
        ):
            listings.append((self.completed_at, self.to_completion_query_fields()))
        if self.deleted_at is not None and (not merchant_txn_id or self.delete_merchant_txn_id == merchant_txn_id):
            listings.append((self.deleted_at, self.to_delete_query_fields()))
        return listings

    def money(self, amount: Decimal) -> str:
        return _money(amount, self.ssl_transaction_currency)


def follow_ons_of(records: list[dict[str, object]], merchant_txn_id: str) -> list[dict[str, object]]:
    """The follow-on transactions the sandbox holds for one merchant transaction id (an OperationID),
    as the control-API records (`to_record`) that show them: its VOID and RETURN records, and the
    records it completed (`completion_merchant_txn_id`) or deleted (`delete_merchant_txn_id`), a
    record once for each. A checker counts them: an operation run exactly once holds exactly one."""
    held: list[dict[str, object]] = []
    for record in records:
        if (
            record.get("ssl_transaction_type") in _FOLLOW_ON_RECORD_TYPES
            and record.get("ssl_merchant_txn_id") == merchant_txn_id
        ):
            held.append(record)
        held.extend(
            record
            for name in ("completion_merchant_txn_id", "delete_merchant_txn_id")
            if record.get(name) == merchant_txn_id
        )
    return held


def approved_charges(records: list[dict[str, Any]], merchant_txn_id: str) -> list[dict[str, Any]]:
    """The approved sales and authorizations the processor holds under one merchant transaction id."""
    return [
        record
        for record in records
        if record.get("ssl_merchant_txn_id") == merchant_txn_id
        and record.get("ssl_transaction_type") in ("SALE", "AUTHONLY")
        and record.get("ssl_result") == "0"
    ]


def charged_by(original: dict[str, Any]) -> Decimal:
    """What one approved sale or authorization charged: a sale in full, an authorization what was
    completed of it, nothing once voided or deleted."""
    if original.get("voided") or original.get("deleted"):
        return Decimal(0)
    if original["ssl_transaction_type"] == "SALE":
        return Decimal(str(original["ssl_amount"]))
    return Decimal(str(original.get("completed_amount") or 0))


def returned_of(records: list[dict[str, Any]], original: dict[str, Any]) -> Decimal:
    """What the approved returns of one charge that were not voided themselves gave back."""
    return sum(
        (
            Decimal(str(record["ssl_amount"]))
            for record in records
            if record.get("ssl_transaction_type") == "RETURN"
            and record.get("original_txn_id") == original["ssl_txn_id"]
            and record.get("ssl_result") == "0"
            and not record.get("voided")
        ),
        Decimal(0),
    )


def net_charged(records: list[dict[str, Any]], merchant_txn_id: str) -> Decimal:
    """What the processor holds as charged under one merchant transaction id, net of what it returned."""
    return sum(
        (charged_by(c) - returned_of(records, c) for c in approved_charges(records, merchant_txn_id)),
        Decimal(0),
    )


@dataclass(frozen=True)
class VaultedCard:
    masked: str
    short_brand: str
    declines: bool
    exp_date: str


class ConvergeError(Exception):
    def __init__(self, code: str, name: str, message: str) -> None:
        super().__init__(f"{code} {name}")
        self.fields = {"errorCode": code, "errorName": name, "errorMessage": message}


def _missing(name: str) -> ConvergeError:
    return ConvergeError("4009", "Required Field Not Supplied", f"The field {name} is required.")


INVALID_TXN_ID = ("5040", "Invalid Transaction ID", "The transaction ID is invalid for this transaction type")
# Converge voids and deletes only before the batch settles, and returns only what has settled
# (Elavon's guide), but names no error for either: answering as for any transaction id the
# transaction type cannot take (5040, Converge's answer to a second void) is the sandbox's choice.
NOT_BEFORE_SETTLEMENT = INVALID_TXN_ID
NOT_AFTER_SETTLEMENT = INVALID_TXN_ID
AMOUNT_ABOVE_ORIGINAL = (
    "5091",
    "Invalid amount",
    "The amount exceeded the original transaction amount. "
    "Amount must be equal or lower than the original transaction amount.",
)
# Elavon's text; the code number is the sandbox's choice (not found in Elavon's public pages).
CURRENCY_NOT_ALLOWED = (
    "5092",
    "Transaction Currency Not Allowed",
    "Transaction currency is not allowed for this terminal.  Your terminal must be setup with Multi currency",
)


def _money(amount: Decimal, currency: str) -> str:
    return format_amount(amount, currency)


def _txn_time(moment: dt.datetime) -> str:
    return moment.strftime("%m/%d/%Y %I:%M:%S %p")


class Terminal:
    """The merchant terminal: validates, decides, records. Thread-safe.

    `listing_limit`: the most transactions one txnquery listing holds (None: no limit); the newest
    ones are listed. Elavon's pages read here name no number, so the limit is the sandbox's setting,
    and the client pages by it (payments.processors.converge.adapter)."""

    def __init__(self, credentials: SandboxCredentials | None = None, listing_limit: int | None = None) -> None:
        self.credentials = credentials or SandboxCredentials()
        self.listing_limit = _valid_limit(listing_limit)
        self._transactions: dict[str, SandboxTransaction] = {}
        self._vault: dict[str, VaultedCard] = {}
        # Re-entrant, so that a condition given to wait_until may read the record.
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)

    @property
    def transactions(self) -> list[SandboxTransaction]:
        with self._lock:
            return list(self._transactions.values())

    def settle(self) -> list[str]:
        """Close the open batch, as Converge's daily settlement does: every open sale, completion and
        return becomes settled. Returns their ssl_txn_ids."""
        with self._changed:
            closing = [t for t in self._transactions.values() if t.in_open_batch]
            for transaction in closing:
                transaction.ssl_trans_status = SETTLED
            self._changed.notify_all()
            return [t.ssl_txn_id for t in closing]

    def set_listing_limit(self, limit: int | None) -> None:
        with self._lock:
            self.listing_limit = _valid_limit(limit)

    def forge(self, fields: dict[str, object]) -> SandboxTransaction:
        """File an approved transaction as if Converge had processed it, with no request behind it (so no
        ledger entry either): `ssl_transaction_type` (SALE, AUTHONLY or RETURN; SALE by default),
        `ssl_amount`, `ssl_transaction_currency` (USD), `ssl_merchant_txn_id`, `ssl_trans_status` (OPN) and
        `at` (ISO 8601, when it happened; now by default). Raises ValueError for anything else."""
        unknown = set(fields) - {
            "ssl_transaction_type",
            "ssl_amount",
            "ssl_transaction_currency",
            "ssl_merchant_txn_id",
            "ssl_trans_status",
            "at",
        }
        if unknown:
            raise ValueError(f"forge takes no {sorted(unknown)}")
        kind = str(fields.get("ssl_transaction_type", "SALE")).upper()
        if kind not in ("SALE", "AUTHONLY", "RETURN"):
            raise ValueError("ssl_transaction_type must be SALE, AUTHONLY or RETURN")
        currency = str(fields.get("ssl_transaction_currency", "USD"))
        if currency not in ACCEPTED_CURRENCIES:
            raise ValueError(f"currency {currency} is not accepted by this terminal")
        amount = _forged_amount(fields.get("ssl_amount"), currency)
        at = _forged_time(fields.get("at"))
        status = str(fields.get("ssl_trans_status", OPEN))
        if status not in _STATUSES:
            raise ValueError(f"ssl_trans_status must be one of {sorted(_STATUSES)}")
        card = VaultedCard(mask_pan(min(APPROVING_CARDS)), "VISA", False, "1230")
        with self._changed:
            transaction = self._new(
                kind,
                {
                    "ssl_merchant_txn_id": str(fields.get("ssl_merchant_txn_id", "")),
                    "ssl_transaction_currency": currency,
                },
                card,
                amount,
                "0",
                "APPROVAL",
                avs="Y",
                at=at,
            )
            transaction.ssl_trans_status = status
            transaction.forged = True
            self._changed.notify_all()
            return transaction

    def forget(self, ssl_txn_id: str) -> None:
        """Take a forged transaction out of the record again, once a test has judged it: only a forged one
        (Converge forgets nothing it processed). KeyError for an unknown id, ValueError for a real one."""
        with self._changed:
            if not self._transactions[ssl_txn_id].forged:
                raise ValueError("only a forged transaction can be forgotten")
            del self._transactions[ssl_txn_id]
            self._changed.notify_all()

    def alter(self, ssl_txn_id: str, changes: dict[str, object]) -> SandboxTransaction:
        """Change what Converge holds of one transaction, behind the workflow's back: its `ssl_amount`, its
        `ssl_trans_status`, its `ssl_result_message` (an approval message approves it, any other declines
        it), or `hidden` (true: txnquery no longer knows it). KeyError for an unknown id, ValueError for
        anything else."""
        unknown = set(changes) - ALTERABLE
        if unknown:
            raise ValueError(f"alter takes no {sorted(unknown)}; it takes {sorted(ALTERABLE)}")
        with self._changed:
            transaction = self._transactions[ssl_txn_id]
            if "ssl_amount" in changes:
                transaction.ssl_amount = _forged_amount(changes["ssl_amount"], transaction.ssl_transaction_currency)
            if "ssl_trans_status" in changes:
                status = str(changes["ssl_trans_status"])
                if status not in _STATUSES:
                    raise ValueError(f"ssl_trans_status must be one of {sorted(_STATUSES)}")
                transaction.ssl_trans_status = status
            if "ssl_result_message" in changes:
                message = str(changes["ssl_result_message"])
                if not message or len(message) > 40:
                    raise ValueError("ssl_result_message must be 1 to 40 characters")
                transaction.ssl_result_message = message
                transaction.ssl_result = "0" if message in ("APPROVAL", "APPROVED") else "1"
            if "hidden" in changes:
                if not isinstance(changes["hidden"], bool):
                    raise ValueError("hidden must be true or false")
                transaction.hidden = changes["hidden"]
            self._changed.notify_all()
            return transaction

    def wait_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Wait, without polling, until `condition` holds after some request: for one filed late."""
        with self._changed:
            return self._changed.wait_for(condition, timeout)

    def process(self, fields: dict[str, str]) -> dict[str, str] | list[dict[str, str]]:
        """One Converge request in; one transaction's fields, a query's list, or an error out."""
        try:
            return self._process(fields)
        except ConvergeError as error:
            return error.fields

    def _process(self, fields: dict[str, str]) -> dict[str, str] | list[dict[str, str]]:
        expected = asdict(self.credentials)
        if any(fields.get(name) != value for name, value in expected.items()):
            raise ConvergeError(
                "4025", "Invalid Credentials", "The credentials supplied in the authorization request are invalid."
            )
        kind = fields.get("ssl_transaction_type", "").lower()
        operations = {
            "ccsale": lambda: self._charge(fields, "SALE"),
            "ccauthonly": lambda: self._charge(fields, "AUTHONLY"),
            "cccomplete": lambda: self._complete(fields),
            "ccdelete": lambda: self._delete(fields),
            "ccvoid": lambda: self._void(fields),
            "ccreturn": lambda: self._return(fields),
            "ccverify": lambda: self._verify(fields),
            "ccgettoken": lambda: self._get_token(fields),
            "txnquery": lambda: self._query(fields),
        }
        if not kind:
            raise _missing("ssl_transaction_type")
        if kind not in operations:
            raise ConvergeError(
                "4010", "Invalid Transaction Type", "The authorization request included an invalid Transaction Type"
            )
        with self._changed:
            try:
                return operations[kind]()
            finally:
                self._changed.notify_all()

    # -- card and amount checks --------------------------------------------------------------
    def _card(self, fields: dict[str, str]) -> VaultedCard:
        """The card a request pays with: its PAN and expiry, or a vaulted ssl_token."""
        if fields.get("ssl_token"):
            card = self._vault.get(fields["ssl_token"])
            if card is None:
                raise ConvergeError("5087", "Invalid Token", "The token supplied is not valid for this merchant.")
            return card
        for name in ("ssl_card_number", "ssl_exp_date"):
            if not fields.get(name):
                raise _missing(name)
        pan = fields["ssl_card_number"]
        if not (pan.isascii() and pan.isdigit() and 12 <= len(pan) <= 19 and luhn_valid(pan)):
            raise ConvergeError(
                "5000",
                "Credit Card Number Invalid",
                "The Credit Card Number supplied in the authorization request appears to be invalid.",
            )
        if not re.fullmatch(r"(0[1-9]|1[0-2])\d\d", fields["ssl_exp_date"]):
            raise ConvergeError("5001", "Exp Date Invalid", "The Expiration Date supplied is invalid (MMYY).")
        return VaultedCard(
            mask_pan(pan), _SHORT_BRAND.get(card_brand(pan), "OTHER"), pan in DECLINING_CARDS, fields["ssl_exp_date"]
        )

    @staticmethod
    def _amount(fields: dict[str, str], currency: str, required: bool = True) -> Decimal | None:
        """ssl_amount in `currency`: whole units, or exactly its minor-unit digits (12 or 12.50 USD; 2500 JPY).

        A JPY amount with decimals is refused rather than read (the sandbox's choice: it shows a
        client that writes every currency with two decimals)."""
        text = fields.get("ssl_amount")
        if not text:
            if required:
                raise _missing("ssl_amount")
            return None
        exponent = exponent_of(currency)
        shape = rf"\d{{1,8}}(\.\d{{{exponent}}})?" if exponent else r"\d{1,8}"
        try:
            amount = Decimal(text)
        except InvalidOperation:
            amount = Decimal(-1)
        if amount <= 0 or not re.fullmatch(shape, text):
            digits = f"with {exponent} decimals" if exponent else "without decimals"
            raise ConvergeError(
                "5021", "Invalid Amount", f"The amount supplied is invalid: {currency} amounts are digits {digits}."
            )
        return amount

    def _new(
        self,
        kind: str,
        fields: dict[str, str],
        card: VaultedCard,
        amount: Decimal,
        result: str,
        message: str,
        avs: str = "",
        cvv: str = "",
        original: str = "",
        at: dt.datetime | None = None,
    ) -> SandboxTransaction:
        now = at or dt.datetime.now(dt.UTC)
        transaction = SandboxTransaction(
            ssl_txn_id=_new_txn_id(now),
            ssl_transaction_type=kind,
            ssl_merchant_txn_id=fields.get("ssl_merchant_txn_id", "")[:39],
            ssl_amount=amount,
            ssl_transaction_currency=fields.get("ssl_transaction_currency", "USD"),
            ssl_card_number=card.masked,
            ssl_card_short_description=card.short_brand,
            ssl_result=result,
            ssl_result_message=message,
            ssl_approval_code=secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") + f"{secrets.randbelow(10**5):05d}"
            if result == "0" and kind != "VOID"
            else "",
            ssl_avs_response=avs,
            ssl_cvv2_response=cvv,
            ssl_txn_time=_txn_time(now),
            original_txn_id=original,
            created=now,
        )
        self._transactions[transaction.ssl_txn_id] = transaction
        return transaction

    def _original(self, fields: dict[str, str], kinds: frozenset[str]) -> SandboxTransaction:
        txn_id = fields.get("ssl_txn_id")
        if not txn_id:
            raise _missing("ssl_txn_id")
        original = self._transactions.get(txn_id)
        if original is None or original.ssl_transaction_type not in kinds or original.ssl_result != "0":
            raise ConvergeError(*INVALID_TXN_ID)
        if original.voided or original.deleted:
            raise ConvergeError(*INVALID_TXN_ID)
        return original

    # -- operations ---------------------------------------------------------------------------
    def _charge(self, fields: dict[str, str], kind: str) -> dict[str, str]:
        currency = fields.get("ssl_transaction_currency", "USD")
        if currency not in ACCEPTED_CURRENCIES:
            raise ConvergeError(*CURRENCY_NOT_ALLOWED)
        amount = self._amount(fields, currency)
        assert amount is not None
        card = self._card(fields)
        cvv = "M" if fields.get("ssl_cvv2cvc2") else ""
        result, message, avs = ("1", "DECLINED", "N") if card.declines else ("0", "APPROVAL", "Y")
        if not card.declines and _expired(card.exp_date):
            result, message = "1", "EXPIRED CARD"
        trigger = _trigger_of(amount, currency)
        if trigger and not card.declines:
            result, message, avs, cvv_trigger = trigger
            cvv = cvv_trigger if cvv else ""
        transaction = self._new(kind, fields, card, amount, result, message, avs=avs, cvv=cvv)
        reply = {
            **transaction.to_fields(),
            "ssl_merchant_txn_id": transaction.ssl_merchant_txn_id,
            "ssl_exp_date": card.exp_date,
        }
        if fields.get("ssl_token"):
            reply["ssl_token"] = fields["ssl_token"]  # echoed as sent, as a ccgettoken reply holds it
        return reply

    def _complete(self, fields: dict[str, str]) -> dict[str, str]:
        auth = self._original(fields, frozenset({"AUTHONLY"}))
        if auth.completed_amount is not None:
            raise ConvergeError(*INVALID_TXN_ID)  # completed once: the rest was released
        amount = self._amount(fields, auth.ssl_transaction_currency, required=False) or auth.ssl_amount
        if amount > auth.ssl_amount:
            raise ConvergeError(*AMOUNT_ABOVE_ORIGINAL)
        auth.completed_amount = amount
        auth.completion_merchant_txn_id = _follow_on_merchant_txn_id(fields)
        auth.completed_at = dt.datetime.now(dt.UTC)
        return {**auth.to_fields(), "ssl_amount": auth.money(amount), "ssl_transaction_type": COMPLETION_TYPE}

    def _delete(self, fields: dict[str, str]) -> dict[str, str]:
        original = self._original(fields, _CHARGE_TYPES)
        if original.settled:
            raise ConvergeError(*NOT_AFTER_SETTLEMENT)
        original.deleted = True
        original.delete_merchant_txn_id = _follow_on_merchant_txn_id(fields)
        original.deleted_at = dt.datetime.now(dt.UTC)
        reply = {k: v for k, v in original.to_fields().items() if k not in _NOT_IN_A_DELETE}
        now = _txn_time(original.deleted_at)
        return {**reply, "ssl_transaction_type": DELETE_TYPE, "ssl_result_message": "APPROVAL", "ssl_txn_time": now}

    def _void(self, fields: dict[str, str]) -> dict[str, str]:
        # ccvoid takes a sale, a completion (the sale it became) or a return; an authorization is deleted.
        original = self._original(fields, frozenset({"SALE", "RETURN", "AUTHONLY"}))
        if original.ssl_transaction_type == "AUTHONLY" and not original.is_completed_authorization:
            raise ConvergeError(*INVALID_TXN_ID)
        if original.settled:
            raise ConvergeError(*NOT_AFTER_SETTLEMENT)
        if original.refunded_amount:
            raise ConvergeError(*INVALID_TXN_ID)
        original.voided = True
        if original.ssl_transaction_type == "RETURN":  # the refund never happened: it may be refunded again
            sale = self._transactions[original.original_txn_id]
            sale.refunded_amount -= original.ssl_amount
        # Converge: "The Void transaction returns a new Transaction ID" and the original's data.
        card = VaultedCard(original.ssl_card_number, original.ssl_card_short_description, False, "")
        void = self._new(
            "VOID",
            {
                "ssl_transaction_currency": original.ssl_transaction_currency,
                "ssl_merchant_txn_id": _follow_on_merchant_txn_id(fields) or original.ssl_merchant_txn_id,
            },
            card,
            original.completed_amount if original.completed_amount is not None else original.ssl_amount,
            "0",
            "APPROVAL",
            original=original.ssl_txn_id,
        )
        return void.to_fields()

    def _return(self, fields: dict[str, str]) -> dict[str, str]:
        sale = self._original(fields, _CHARGE_TYPES)
        if not sale.is_approved_charge:
            raise ConvergeError(*INVALID_TXN_ID)
        if not sale.settled:
            raise ConvergeError(*NOT_BEFORE_SETTLEMENT)  # still in the open batch: void it instead
        charged = sale.completed_amount if sale.completed_amount is not None else sale.ssl_amount
        remaining = charged - sale.refunded_amount
        if remaining <= 0:
            raise ConvergeError(*AMOUNT_ABOVE_ORIGINAL)
        amount = self._amount(fields, sale.ssl_transaction_currency, required=False) or remaining
        if amount > remaining:
            raise ConvergeError(*AMOUNT_ABOVE_ORIGINAL)
        sale.refunded_amount += amount
        card = VaultedCard(sale.ssl_card_number, sale.ssl_card_short_description, False, "")
        refund = self._new(
            "RETURN",
            {
                "ssl_transaction_currency": sale.ssl_transaction_currency,
                "ssl_merchant_txn_id": _follow_on_merchant_txn_id(fields) or sale.ssl_merchant_txn_id,
            },
            card,
            amount,
            "0",
            "APPROVAL",
            original=sale.ssl_txn_id,
        )
        return refund.to_fields()

    def _verify(self, fields: dict[str, str]) -> dict[str, str]:
        card = self._card(fields)
        result, message = ("1", "DECLINED") if card.declines else ("0", "APPROVAL")
        cvv = "M" if fields.get("ssl_cvv2cvc2") else ""
        transaction = self._new("CARDVERIFICATION", fields, card, Decimal("0.00"), result, message, avs="Y", cvv=cvv)
        return transaction.to_fields()

    def _get_token(self, fields: dict[str, str]) -> dict[str, str]:
        card = self._card(fields)
        token = _new_token()
        self._vault[token] = card
        return {
            "ssl_result": "0",
            "ssl_result_message": "",
            "ssl_transaction_type": "GETTOKEN",
            "ssl_txn_time": _txn_time(dt.datetime.now(dt.UTC)),
            "ssl_token": token,
            "ssl_token_response": "SUCCESS",
            "ssl_add_token_response": "Card Added",
            "ssl_card_number": card.masked,
            "ssl_card_short_description": card.short_brand,
            "ssl_exp_date": card.exp_date,
        }

    def _query(self, fields: dict[str, str]) -> list[dict[str, str]]:
        """A listing, newest first, at most `listing_limit` long. Search dates are read to the second (a
        date alone: its first second as a start, its last as an end), both ends included, in the terminal's
        time zone, which is UTC (so ssl_time_zone_request_utc and ssl_time_zone_response_utc change nothing)."""
        if fields.get("ssl_txn_id"):
            found = self._transactions.get(fields["ssl_txn_id"])
            if found is None or found.hidden:
                raise ConvergeError(*INVALID_TXN_ID)
            return [found.to_query_fields()]
        merchant_txn_id = fields.get("ssl_merchant_txn_id")
        start = _search_time(fields.get("ssl_search_start_date"), end_of_day=False)
        end = _search_time(fields.get("ssl_search_end_date"), end_of_day=True)
        if not (merchant_txn_id or start or end):
            raise _missing("ssl_search_start_date")
        matches = []
        for transaction in self._transactions.values():
            for moment, listed in transaction.listings_for(merchant_txn_id):
                second = moment.replace(microsecond=0)
                if (start and second < start) or (end and second > end):
                    continue
                matches.append((moment, transaction.filed, listed))
        matches.sort(key=lambda match: (match[0], match[1]), reverse=True)
        listed_now = [listed for _, _, listed in matches]
        return listed_now if self.listing_limit is None else listed_now[: self.listing_limit]


def _follow_on_merchant_txn_id(fields: dict[str, str]) -> str:
    """The ssl_merchant_txn_id a follow-on request carries (our OperationID), as _new files one."""
    return fields.get("ssl_merchant_txn_id", "")[:39]


_SEARCH_FORMATS = ("%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y")


def _search_time(text: str | None, *, end_of_day: bool) -> dt.datetime | None:
    """A search date as the terminal reads it, in UTC: `MM/DD/YYYY`, `MM/DD/YYYY hh:mm:ss AM` (as
    ssl_txn_time is written) or `MM/DD/YYYY HH:MM:SS`. A date alone is its whole day."""
    if not text:
        return None
    for form in _SEARCH_FORMATS:
        try:
            moment = dt.datetime.strptime(text.strip(), form).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
        if form == "%m/%d/%Y" and end_of_day:
            moment += dt.timedelta(days=1, seconds=-1)
        return moment
    raise ConvergeError(
        "4009", "Required Field Not Supplied", "Search dates must be MM/DD/YYYY, optionally with hh:mm:ss AM/PM."
    )


def _valid_limit(limit: int | None) -> int | None:
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise ValueError("a listing limit is a whole number of at least 1, or none")
    return limit


def _forged_amount(value: object, currency: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError("ssl_amount must be a decimal string") from None
    if not amount.is_finite() or amount <= 0 or amount != round(amount, exponent_of(currency)):
        raise ValueError(f"ssl_amount must be above zero, with at most {exponent_of(currency)} decimals")
    return amount.quantize(Decimal(1).scaleb(-exponent_of(currency)))


def _forged_time(value: object) -> dt.datetime:
    if value is None:
        return dt.datetime.now(dt.UTC)
    try:
        moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("at must be an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise ValueError("at must name its time zone (Z for UTC)")
    return moment.astimezone(dt.UTC)


def _trigger_of(amount: Decimal, currency: str) -> tuple[str, str, str, str] | None:
    """The amount trigger its cents meet; amounts of a currency without cents meet none."""
    if exponent_of(currency) != 2:
        return None
    return AMOUNT_TRIGGERS.get(_money(amount, currency)[-2:])


def _expired(exp_date: str) -> bool:
    month, year = int(exp_date[:2]), 2000 + int(exp_date[2:])
    today = dt.datetime.now(dt.UTC).date()
    return (year, month) < (today.year, today.month)


_TWELVE_DIGITS = re.compile(r"\d{12}")


def _new_txn_id(now: dt.datetime) -> str:
    """Converge's shape, DDMMYY, a host code and a UUID; never one that holds a run of digits a
    card-data scan would (rightly) have to weigh as a possible card number, across dashes too, nor
    twelve digits in a row (a UUID's last group can be all digits: a scan for PAN-shaped runs of
    12 to 19 digits that pass Luhn would flag one in about 3,000 records)."""
    while True:
        txn_id = f"{now:%d%m%y}A15-{uuid.uuid4()}".upper()
        if not identifier_contains_card_number(txn_id) and not _TWELVE_DIGITS.search(txn_id):
            return txn_id


def _new_token() -> str:
    """16 digits that fail Luhn on purpose, so a token can never be mistaken for a card number."""
    while True:
        token = "4421" + f"{secrets.randbelow(10**12):012d}"
        if not luhn_valid(token):
            return token
