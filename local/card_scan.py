"""Finds card data: a test card number anywhere, whatever separates its digits, or a CVV where a
value would stand (not inside base64); and opens the audit trail's encrypted payloads to scan
what they hold.

Used by the tests and by the chaos run's invariant 7. The cards are the sandbox's test cards, as
`local.payment_requests` hands them out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from local import scoped_environ
from local.payment_requests import TEST_AMEX_CVV, TEST_CVV, TEST_PANS
from local.stack import CREDENTIALS, StackInfo
from payments import crypto

# Fails the Luhn check: the tests send it to show that a rejected request leaves no trace either.
LUHN_INVALID_PAN = "4111111111111112"
SCANNED_PANS = (*TEST_PANS, LUHN_INVALID_PAN)
SCANNED_CVVS = (TEST_CVV, TEST_AMEX_CVV)
AUDIT_PAYLOADS = ("EncryptedQuery", "EncryptedResponse")

# Between two digits of a PAN: up to three characters that are not digits (spaces, dots, dashes,
# slashes...), so "4111 1111 1111 1111" and "4111-1111-1111-1111" are the card they write.
_SEPARATOR = "[^0-9]{0,3}"
_CVV_FIELD = re.compile(r'"(Cvv|ssl_cvv2cvc2)"|<ssl_cvv2cvc2>|ssl_cvv2cvc2=')
# Numbers under these keys are measurements and counters, never card data: a call that took
# 847 ms is not a CVV.
_MEASUREMENT = re.compile(
    r'"(LatencyMs|latency_ms|ProcessorLatency|Attempt|EntryNumber|RetryCount|seconds)"\s*:\s*"?[0-9.]+"?'
)
_UNICODE_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
# What the audit trail may keep of a card number: at most ten of its digits (first six, last four).
_MASKED_PAN_DIGITS = 10
_deserialize = TypeDeserializer().deserialize


def _pan_pattern(pan: str) -> re.Pattern[str]:
    # Written as one run of digits it counts anywhere; with separators, only as a number of its own. Each
    # alternative starts with the PAN's first digit, its "no digit before" checked once that digit is read:
    # then `re` jumps from one such digit to the next rather than trying every position of the text (25 x
    # faster over a chaos run's histories, the same matches).
    first, rest = pan[0], pan[1:]
    return re.compile(rf"{pan}|{first}(?<![0-9]{first}){_SEPARATOR}{_SEPARATOR.join(rest)}(?![0-9])")


def _cvv_pattern(cvv: str) -> re.Pattern[str]:
    return re.compile(rf'"{cvv}"|>{cvv}<|=\s*{cvv}\b|:\s*{cvv}\b')


_PAN_PATTERNS = {pan: _pan_pattern(pan) for pan in SCANNED_PANS}


def card_data_in(text: str, pans: Iterable[str] = SCANNED_PANS, cvvs: Iterable[str] = SCANNED_CVVS) -> list[str]:
    """What card data `text` holds, e.g. ["PAN 41…1111", "a CVV field"]; [] when it holds none."""
    text = _UNICODE_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    found = [f"PAN {pan[:2]}…{pan[-4:]}" for pan in pans if (_PAN_PATTERNS.get(pan) or _pan_pattern(pan)).search(text)]
    if _CVV_FIELD.search(text):
        found.append("a CVV field")
    values = _MEASUREMENT.sub('"measurement": 0', text)
    if any(_cvv_pattern(cvv).search(values) for cvv in cvvs):
        found.append("the CVV value")
    return found


def table_items(info: StackInfo, table: str) -> list[dict[str, Any]]:
    """Every item of `table`, page after page, as plain Python values."""
    dynamodb = info.client("dynamodb")
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = dynamodb.scan(**kwargs)
        items += [{key: _deserialize(value) for key, value in item.items()} for item in page["Items"]]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@contextmanager
def stack_credentials(info: StackInfo) -> Iterator[None]:
    """In this thread, the environment a function of the stack sees: its region, credentials and endpoint.

    The AWS Encryption SDK makes its own KMS client from the environment; this points it at the stack.
    """
    env = {
        "AWS_REGION": info.region,
        "AWS_DEFAULT_REGION": info.region,
        "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
        "AWS_ENDPOINT_URL": info.endpoint_url,
        "TZ": "UTC",
    }
    with scoped_environ.install().scoped(env):
        yield


def audit_payloads(info: StackInfo, items: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The encrypted payloads of audit items, decrypted with the stack's key under each item's own
    TransactionID and the audit purpose: one {"TransactionID", "AuditID", "Field", "Plaintext"} per
    payload, with "Error" instead of "Plaintext" when it cannot be opened."""
    opened = []
    with stack_credentials(info):
        for item in items:
            for name in AUDIT_PAYLOADS:
                ciphertext = item.get(name)
                if ciphertext is None:
                    continue
                payload: dict[str, Any] = {
                    "TransactionID": item.get("TransactionID"),
                    "AuditID": item.get("AuditID"),
                    "Field": name,
                }
                try:
                    payload["Plaintext"] = crypto.decrypt(
                        str(ciphertext),
                        key_arn=info.audit_kms_key_arn,
                        transaction_id=str(item.get("TransactionID")),
                        purpose=crypto.PURPOSE_AUDIT,
                    )
                except Exception as error:  # any reason it stays closed means the scan cannot vouch for it
                    payload["Error"] = f"{type(error).__name__}: {error}"
                opened.append(payload)
    return opened


def audit_payload_findings(payload: Mapping[str, Any]) -> list[str]:
    """What is wrong with one opened audit payload: card data in it, a card number that is not
    masked, or a payload that could not be opened (nothing can then be said of what it holds)."""
    if "Plaintext" not in payload:
        return [f"an audit payload that cannot be decrypted ({payload.get('Error')})"]
    plaintext = payload["Plaintext"]
    found = card_data_in(json.dumps(plaintext, default=str))
    found += [f"an unmasked ssl_card_number {number[:2]}…" for number in _unmasked_card_numbers(plaintext)]
    return found


def _unmasked_card_numbers(value: Any) -> list[str]:
    if isinstance(value, Mapping):
        found = []
        for key, inner in value.items():
            if key == "ssl_card_number" and len(re.sub("[^0-9]", "", str(inner))) > _MASKED_PAN_DIGITS:
                found.append(str(inner))
            else:
                found += _unmasked_card_numbers(inner)
        return found
    if isinstance(value, list | tuple):
        return [number for inner in value for number in _unmasked_card_numbers(inner)]
    return []
