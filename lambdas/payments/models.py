"""The payment request (docs/architecture.md#contracts) as Pydantic models.

Every error message here names what is wrong and never repeats the value: a request may carry
a PAN or CVV in any field, including the wrong one.

Every string field refuses what XML 1.0 cannot carry (the Converge request is an XML document):
lone surrogates (U+D800-U+DFFF) and the noncharacters U+FFFE and U+FFFF, and the free-text
fields refuse control characters (C0, DEL, C1; tab, LF and CR included). Free text and the
TransactionID are searched for card numbers by `payments.cards` (its docstring states the rule).
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from payments import currencies
from payments.cards import contains_card_number, identifier_contains_card_number, is_card_number, luhn_valid
from payments.currencies import ISO_4217_EXPONENTS
from payments.processors import registry
from payments.state import AUTOMATIC, MANUAL

MAX_AMOUNT = Decimal("99999999.99")
_AMOUNT_FORMAT = re.compile(r"^(0|[1-9][0-9]{0,7})(\.[0-9]+)?$")
_TRANSACTION_ID = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Outside XML 1.0's Char production and not control characters: a str from JSON may still hold them.
_SURROGATES = re.compile("[\ud800-\udfff]")
_NONCHARACTERS = re.compile("[\ufffe\uffff]")
# A cardholder's name: letters of any script, combining marks, spaces, and ' - . between them.
_NAME_CHARACTER = re.compile(r"[^\W\d_]|[\u0300-\u036f' .-]")
# What a statement description needs; no markup, no statement separators, no shell or template syntax.
_FORBIDDEN_IN_DESCRIPTION = re.compile(r"[<>;=`{}\[\]|\\$]|--")


def reject(message: str, field: str | None = None) -> PydanticCustomError:
    """A validation error whose text is exactly `message` (no 'Value error,' prefix)."""
    context = {"message": message} if field is None else {"message": message, "field": field}
    return PydanticCustomError("payment_request", "{message}", context)


def _holder_name(value: Any) -> str:
    name = _text(value, 100)
    if not all(_NAME_CHARACTER.fullmatch(character) for character in name):
        raise reject("may hold only letters, spaces, apostrophes, hyphens and periods")
    return name


def _description(value: Any) -> str:
    description = _text(value, 255)
    if _FORBIDDEN_IN_DESCRIPTION.search(description):
        raise reject("must not contain < > ; = ` { } [ ] | \\ $ or --")
    return description


def _xml_safe(value: Any) -> Any:
    """value, unless it is a string XML 1.0 cannot carry; the message names the class, never the character."""
    if isinstance(value, str):
        if _SURROGATES.search(value):
            raise reject("must not contain lone surrogates (U+D800 to U+DFFF): they are not characters")
        if _NONCHARACTERS.search(value):
            raise reject("must not contain the noncharacters U+FFFE or U+FFFF: XML cannot carry them")
    return value


def _text(value: Any, max_length: int) -> str:
    if not isinstance(value, str):
        raise reject("must be a string")
    _xml_safe(value)
    if not value.strip():
        raise reject("must not be blank")
    if len(value) > max_length:
        raise reject(f"must be at most {max_length} characters")
    if _CONTROL_CHARACTERS.search(value):
        raise reject("must not contain control characters")
    if contains_card_number(value):
        raise reject("must not contain a card number")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True, strict=True)


class CardPaymentMethod(_Strict):
    Type: Literal["card"]
    Number: str = Field(repr=False)
    ExpiryMonth: int = Field(ge=1, le=12)
    ExpiryYear: int = Field(ge=2000, le=2099)
    Cvv: str = Field(repr=False)
    HolderName: str | None = None

    @field_validator("Number", mode="before")
    @classmethod
    def _pan(cls, value: Any) -> str:
        value = _xml_safe(value)
        if not isinstance(value, str) or not value.isascii() or not value.isdigit():
            raise reject("must be a string of digits")
        if not 12 <= len(value) <= 19:
            raise reject("must be 12 to 19 digits long")
        if not luhn_valid(value):
            raise reject("is not a valid card number (Luhn check failed)")
        return value

    @field_validator("Cvv", mode="before")
    @classmethod
    def _cvv(cls, value: Any) -> str:
        value = _xml_safe(value)
        if not isinstance(value, str) or not value.isascii() or not value.isdigit() or not 3 <= len(value) <= 4:
            raise reject("must be a string of 3 or 4 digits")
        return value

    @field_validator("HolderName", mode="before")
    @classmethod
    def _holder(cls, value: Any) -> str | None:
        return None if value is None else _holder_name(value)

    @model_validator(mode="after")
    def _not_expired(self) -> CardPaymentMethod:
        today = dt.datetime.now(dt.UTC).date()
        if (self.ExpiryYear, self.ExpiryMonth) < (today.year, today.month):
            raise reject("the card has expired", field="PaymentMethod.ExpiryYear")
        return self


class ProcessorTokenPaymentMethod(_Strict):
    Type: Literal["processor_token"]
    Token: str = Field(repr=False)

    @field_validator("Token", mode="before")
    @classmethod
    def _token(cls, value: Any) -> str:
        value = _xml_safe(value)
        if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9]{12,32}", value):
            raise reject("must be a Converge ssl_token of 12 to 32 letters and digits")
        if is_card_number(value):  # a card number sent as a token would travel in clear
            raise reject("must be a processor token, not a card number")
        return value


# The capture methods live with the workflow state (which carries them), so that a step reading them
# does not load the request models: re-exported here, where the request is validated.
CaptureMethod = Literal["automatic", "manual"]

PaymentMethod = Annotated[CardPaymentMethod | ProcessorTokenPaymentMethod, Field(discriminator="Type")]


class PaymentRequest(_Strict):
    """The execution input: what an upstream service sends to StartExecution."""

    TransactionID: str
    Amount: str
    Currency: str
    ProcessorID: str
    PaymentMethod: PaymentMethod
    Description: str | None = None
    # automatic (or absent): a sale, money taken now. manual: an authorization, captured later. Kept
    # only when manual, so that a sale's fingerprint and token binding are what they always were.
    Capture: Literal["manual"] | None = None

    @field_validator("TransactionID", mode="before")
    @classmethod
    def _transaction_id(cls, value: Any) -> str:
        value = _xml_safe(value)
        if not isinstance(value, str) or not _TRANSACTION_ID.fullmatch(value):
            raise reject("must be 1 to 36 characters of letters, digits, '-' and '_'")
        if identifier_contains_card_number(value):
            raise reject("must not contain a card number")
        return value

    @field_validator("ProcessorID", mode="before")
    @classmethod
    def _processor_id(cls, value: Any) -> str:
        value = _xml_safe(value)
        if not isinstance(value, str) or value not in registry.processor_ids():
            raise reject("is not a supported processor")
        return value

    @field_validator("Amount", mode="before")
    @classmethod
    def _amount(cls, value: Any) -> str:
        value = _xml_safe(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise reject('must be a decimal string such as "25.00", not a JSON number')
        if isinstance(value, str) and value.startswith("-"):
            raise reject("must be greater than zero")
        if not isinstance(value, str) or not _AMOUNT_FORMAT.fullmatch(value):
            raise reject('must be a decimal string such as "25.00"')
        try:
            amount = Decimal(value)
        except InvalidOperation as error:  # pragma: no cover - the pattern admits only valid decimals
            raise reject("is not a decimal number") from error
        if amount <= 0:
            raise reject("must be greater than zero")
        if amount > MAX_AMOUNT:
            raise reject("must be at most 99999999.99")
        return value

    @field_validator("Currency", mode="before")
    @classmethod
    def _currency(cls, value: Any) -> str:
        value = _xml_safe(value)
        if not isinstance(value, str) or value not in ISO_4217_EXPONENTS:
            raise reject("must be an ISO 4217 alphabetic currency code such as USD")
        return value

    @field_validator("Description", mode="before")
    @classmethod
    def _description(cls, value: Any) -> str | None:
        return None if value is None else _description(value)

    @field_validator("Capture", mode="before")
    @classmethod
    def _capture(cls, value: Any) -> str | None:
        if value is None:
            return None  # absent, like any optional field given as null
        if value not in (AUTOMATIC, MANUAL):
            raise reject(f'must be "{AUTOMATIC}" (a sale) or "{MANUAL}" (authorize now, capture later)')
        return MANUAL if value == MANUAL else None

    @property
    def capture_mode(self) -> CaptureMethod:
        return MANUAL if self.Capture == MANUAL else AUTOMATIC

    @model_validator(mode="after")
    def _fits_currency_and_processor(self) -> PaymentRequest:
        if self.Currency not in currencies.PROCESSOR_CURRENCIES.get(self.ProcessorID, frozenset()):
            raise reject(f"{self.Currency} is not accepted by processor {self.ProcessorID}", field="Currency")
        exponent = ISO_4217_EXPONENTS[self.Currency]
        decimals = len(self.Amount.partition(".")[2])
        if decimals > exponent:
            raise reject(f"has {decimals} decimals but {self.Currency} allows at most {exponent}", field="Amount")
        return self

    @property
    def amount(self) -> Decimal:
        return Decimal(self.Amount)
