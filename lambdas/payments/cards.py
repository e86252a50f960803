"""Card facts that are safe to keep (Luhn check, brand, last four, masked PAN), and the PAN guard.

The PAN guard finds a card number where none belongs: in free text (`Description`, `HolderName`,
the processor's `ssl_description`) and in identifiers (`TransactionID`).

What counts as a card number
    12 to 19 digits that pass the Luhn check and start with an issuer prefix (IIN) of a card
    network in `CARD_IIN_RANGES`: Visa, Mastercard (51-55, 2221-2720), American Express, Discover,
    Diners Club, JCB (3528-3589 and the legacy 1800, 2131), UnionPay (62, 81), Mir (2200-2204),
    Maestro (50, 56-69), Verve (506099-506198, 507865-507964, 650002-650027), RuPay (60, 65, 81,
    82, 508, 353, 356), Elo, Dankort, Troy (65, 9792). The ranges follow the public ISO/IEC 7812 tables
    (Wikipedia "Payment card number", braintree/credit-card-type). Networks whose ranges sit inside
    broader ones are listed for the record; what matters to the guard is the union: 1800, 2131,
    2200-2204, 2221-2720, 300-305, 3095, 34, 36-39, 3528-3589, 4, 5, 6, 81, 82, 9792. That is 43.3% of
    all prefixes, so a random Luhn-valid 12-19 digit number is a "card number" 4.3% of the time
    (Luhn alone passes 10%). Not covered: UATP (15 digits from 1, JCB's 1800 aside), private-label
    cards, and numbers outside 12-19 digits.
    Every length 12-19 counts for every network: Maestro and UnionPay issue most of them, and a
    guard that trusted per-network lengths would miss the odd ones.

How digits are read (free text)
    Each character is NFKC-normalised on its own (fullwidth, mathematical and superscript digits
    become ASCII; NBSP and every other space become a space). A digit is any character with a
    Unicode digit value (`unicodedata.digit`: every script's decimal digits - Arabic-Indic,
    Devanagari, Thai, ... - and digits such as the dingbat circled ones), so one number may mix
    scripts. Format characters and combining marks (zero-width spaces, joiners, soft hyphens,
    variation selectors) are invisible and ignored altogether. Letters end a number.

    A *group* is an unbroken sequence of digits. A *gap* is what lies between two groups when it
    is neither a letter nor a digit; it *joins* the groups when it is at most
    `MAX_FREE_TEXT_GAP` (3) characters long, counting a run of spaces as one: so ``-``, ``.``,
    ``/``, ``,``, ``_``, a space, an NBSP, ``" - "``, ``", "`` and ``"..."`` all join, while a
    letter or a longer gap ends the number. A *run* is a maximal sequence of joined groups.

Identifiers
    A `TransactionID` is ``[A-Za-z0-9_-]``: letters end a run and any sequence of ``-`` and ``_``
    joins groups, whatever its length (``order-4111-1111-1111-1111`` and ``4111__1111--1111-1111``
    are one run of 16 digits).

How a run is judged
    A run is judged as a whole, never by sliding a window over its digits: the text holds a card
    number when the whole run, or a sequence of consecutive whole groups in it, is a card number.
    A group is never split, so a 20-digit order number is not refused because 16 of its digits
    happen to form a valid PAN (the every-window rule this replaces refused about a third of random
    16-digit and three fifths of random 20-digit IDs). Whole groups are tried because a writer who
    separates digits marks where the number ends: ``4111 1111 1111 1111 12/27 123`` (PAN, expiry, CVV) and
    ``order-4111111111111111-2`` are refused. For a run of one group - a plain numeric ID - the
    false-positive rate is therefore the floor: the share of random numbers that are card numbers.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

_BRAND_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("AMEX", re.compile(r"^3[47]")),
    ("DINERS", re.compile(r"^3(?:0[0-5]|[68])")),
    ("JCB", re.compile(r"^35(?:2[89]|[3-8])")),
    ("DISCOVER", re.compile(r"^6(?:011|4[4-9]|5)")),
    ("UNIONPAY", re.compile(r"^62")),
    ("MASTERCARD", re.compile(r"^(?:5[1-5]|222[1-9]|22[3-9]\d|2[3-6]\d\d|27[01]\d|2720)")),
    ("VISA", re.compile(r"^4")),
)

MIN_PAN_LENGTH = 12
MAX_PAN_LENGTH = 19
# Free text: a gap of at most this many characters (a run of spaces counting as one) joins two digit groups.
MAX_FREE_TEXT_GAP = 3

# (network, first prefix, last prefix): a number belongs to the range when its leading digits, as many
# as the bounds have, lie between them. Overlaps are deliberate: each network's own ranges, as published.
CARD_IIN_RANGES: tuple[tuple[str, str, str], ...] = (
    ("VISA", "4", "4"),
    ("MASTERCARD", "51", "55"),
    ("MASTERCARD", "2221", "2720"),
    ("AMEX", "34", "34"),
    ("AMEX", "37", "37"),
    ("DISCOVER", "6011", "6011"),
    ("DISCOVER", "644", "649"),
    ("DISCOVER", "65", "65"),
    ("DINERS", "300", "305"),
    ("DINERS", "3095", "3095"),
    ("DINERS", "36", "36"),
    ("DINERS", "38", "39"),
    ("JCB", "3528", "3589"),
    ("JCB", "1800", "1800"),
    ("JCB", "2131", "2131"),
    ("UNIONPAY", "62", "62"),
    ("UNIONPAY", "81", "81"),
    ("MIR", "2200", "2204"),
    ("MAESTRO", "50", "50"),
    ("MAESTRO", "56", "69"),
    ("VERVE", "506099", "506198"),
    ("VERVE", "507865", "507964"),
    ("VERVE", "650002", "650027"),
    ("RUPAY", "60", "60"),
    ("RUPAY", "65", "65"),
    ("RUPAY", "81", "82"),
    ("RUPAY", "508", "508"),
    ("RUPAY", "353", "353"),
    ("RUPAY", "356", "356"),
    ("ELO", "509000", "509999"),
    ("DANKORT", "5019", "5019"),
    ("TROY", "65", "65"),
    ("TROY", "9792", "9792"),
)


def luhn_valid(digits: str) -> bool:
    """True when a string of digits passes the Luhn (mod 10) check."""
    if not (digits.isascii() and digits.isdigit()):
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def has_card_prefix(digits: str) -> bool:
    """True when ASCII digits start with the issuer prefix of a card network in CARD_IIN_RANGES."""
    return any(first <= digits[: len(first)] <= last for _, first, last in CARD_IIN_RANGES if len(digits) >= len(first))


def is_card_number(digits: str) -> bool:
    """True when ASCII digits are a card number: 12 to 19 of them, a network's prefix, Luhn-valid."""
    return MIN_PAN_LENGTH <= len(digits) <= MAX_PAN_LENGTH and has_card_prefix(digits) and luhn_valid(digits)


@dataclass(frozen=True)
class CardNumberMatch:
    """A card number found in a text: its digits (ASCII) and where each digit sits in the text."""

    digits: str
    positions: tuple[int, ...]

    def __repr__(self) -> str:
        return f"CardNumberMatch(digits={mask_pan(self.digits)!r}, positions={self.positions!r})"


# One character read for the guard: a digit (value 0-9), a letter-like character (ends a number),
# a space, or another gap character. Its index is the position in the text as given.
_DIGIT, _WORD, _SPACE, _GAP = "digit", "word", "space", "gap"
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Mn", "Me", "Mc"})


def _read(text: str) -> Iterator[tuple[str, str, int]]:
    for index, original in enumerate(text):
        if unicodedata.category(original) in _INVISIBLE_CATEGORIES:
            continue
        for char in unicodedata.normalize("NFKC", original):
            value = unicodedata.digit(char, None)
            if value is not None:
                yield _DIGIT, str(value), index
            elif char.isalnum():
                yield _WORD, char, index
            elif char.isspace():
                yield _SPACE, char, index
            elif unicodedata.category(char) not in _INVISIBLE_CATEGORIES:
                yield _GAP, char, index


# A group is a list of (ASCII digit, index in the text); a run a list of groups.
_Group = list[tuple[str, int]]


def _runs(text: str, max_gap: int | None) -> Iterator[list[_Group]]:
    """The digit runs of text: groups joined by gaps of at most max_gap characters (None: any gap)."""
    run: list[_Group] = []
    group: _Group = []
    gap = 0
    after_space = False
    for kind, char, index in _read(text):
        if kind == _DIGIT:
            if not group:
                if run and max_gap is not None and gap > max_gap:
                    yield run
                    run = []
                group = []
                run.append(group)
            group.append((char, index))
            gap = 0
            after_space = False
        elif kind == _WORD:
            if run:
                yield run
            run, group, gap, after_space = [], [], 0, False
        else:
            group = []
            if not (kind == _SPACE and after_space):
                gap += 1
            after_space = kind == _SPACE
    if run:
        yield run


def _card_numbers_in(run: list[_Group]) -> Iterator[CardNumberMatch]:
    """Card numbers made of the whole run or of consecutive whole groups of it; a group is never split."""
    for first in range(len(run)):
        digits: _Group = []
        for group in run[first:]:
            digits = digits + group
            if len(digits) > MAX_PAN_LENGTH:
                break
            number = "".join(digit for digit, _ in digits)
            if is_card_number(number):
                yield CardNumberMatch(number, tuple(index for _, index in digits))


def find_card_numbers(text: str) -> list[CardNumberMatch]:
    """Every card number in free text, read by the rules in this module's docstring."""
    return [match for run in _runs(text, MAX_FREE_TEXT_GAP) for match in _card_numbers_in(run)]


def contains_card_number(text: str) -> bool:
    """True when free text holds a card number (digits of any script, separators of any kind)."""
    return any(next(_card_numbers_in(run), None) is not None for run in _runs(text, MAX_FREE_TEXT_GAP))


def identifier_contains_card_number(identifier: str) -> bool:
    """True when an identifier holds a card number: digit groups joined by any sequence of '-' and
    '_' (or any other non-letter) read as one run, letters ending it."""
    return any(next(_card_numbers_in(run), None) is not None for run in _runs(identifier, None))


def mask_card_numbers(text: str) -> str:
    """text with every card number found in it masked as mask_pan does: the first two and last four
    digits kept, every other digit (the character that carried it) replaced by '*'. Separators and
    the rest of the text are untouched."""
    hidden: set[int] = set()
    for match in find_card_numbers(text):
        hidden.update(match.positions[2:-4])
    if not hidden:
        return text
    return "".join("*" if index in hidden else char for index, char in enumerate(text))


def card_brand(pan: str) -> str:
    for brand, pattern in _BRAND_RULES:
        if pattern.match(pan):
            return brand
    return "UNKNOWN"


def mask_pan(pan: str) -> str:
    """First two and last four digits, the rest starred: the form Converge itself returns."""
    if len(pan) <= 6:
        return "*" * len(pan)
    return pan[:2] + "*" * (len(pan) - 6) + pan[-4:]
