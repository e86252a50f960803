"""The card-number rule for identifiers, restated for the tests independently of payments.cards.

Digit groups joined by '-' and '_' form a run (letters end it); the run, or consecutive whole groups
of it, with 12-19 digits, a card network's prefix and a valid Luhn digit is a card number.
"""

import re

from payments.cards import luhn_valid

CARD_PREFIX = re.compile(
    r"1800|2131|220[0-4]|222[1-9]|22[3-9]\d|2[3-6]\d\d|27[01]\d|2720"  # JCB legacy, Mir, Mastercard
    r"|3(?:0[0-5]|095|[46-9]|5[3-8]|52[89])"  # Diners, Amex, JCB
    r"|[456]|8[12]|9792"  # Visa; Maestro, Mastercard, Discover, UnionPay, RuPay, Verve; UnionPay/RuPay; Troy
)


def identifier_holds_card_number(identifier: str) -> bool:
    for run in re.findall(r"[0-9][0-9_-]*", identifier):
        groups = re.findall(r"[0-9]+", run)
        for first in range(len(groups)):
            for last in range(first, len(groups)):
                digits = "".join(groups[first : last + 1])
                if 12 <= len(digits) <= 19 and CARD_PREFIX.match(digits) and luhn_valid(digits):
                    return True
    return False
