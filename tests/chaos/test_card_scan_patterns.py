"""local.card_scan's PAN patterns find exactly what the plain way of writing them finds: a PAN as one run of
digits anywhere, or with up to three non-digits between its digits as a number of its own."""

import random
import re

import pytest

from local import card_scan
from local.card_scan import SCANNED_PANS, card_data_in


def plain_pattern(pan: str) -> re.Pattern[str]:
    return re.compile(rf"{pan}|(?<![0-9]){card_scan._SEPARATOR.join(pan)}(?![0-9])")


def written(rng: random.Random, pan: str) -> str:
    separators = ["", "", "", " ", "-", "  ", "...", "....", "a", "1", "/ ", "\n"]
    text = "".join(digit + rng.choice(separators) for digit in pan)
    return rng.choice(["", "x", "9", " ", "12", '"', "4", "Number: "]) + text + rng.choice(["", "x", "9", " ", "0"])


@pytest.mark.parametrize("pan", SCANNED_PANS)
def test_the_pattern_matches_exactly_where_the_plain_one_does(pan):
    rng = random.Random(pan)
    texts = [written(rng, candidate) for candidate in SCANNED_PANS for _ in range(1500)]
    pattern, plain = card_scan._PAN_PATTERNS[pan], plain_pattern(pan)

    found = [bool(pattern.search(text)) for text in texts]

    assert found == [bool(plain.search(text)) for text in texts]
    assert 0 < sum(found) < len(texts)  # both kinds of text were drawn


def test_a_pan_between_digits_counts_only_as_one_run():
    pan = SCANNED_PANS[0]
    spaced = " ".join(pan[i : i + 4] for i in range(0, 16, 4))

    assert card_data_in(f"ref 7{pan}7") == [f"PAN {pan[:2]}…{pan[-4:]}"]
    assert card_data_in(f"ref 7{spaced}") == []
    assert card_data_in(f"card {spaced}.") == [f"PAN {pan[:2]}…{pan[-4:]}"]
