"""The card-data scan, for the tests: see local.card_scan."""

from local.card_scan import (
    LUHN_INVALID_PAN,
    SCANNED_PANS,
    TEST_CVV,
    audit_payload_findings,
    audit_payloads,
    card_data_in,
    table_items,
)

TEST_PANS = SCANNED_PANS

__all__ = [
    "LUHN_INVALID_PAN",
    "TEST_CVV",
    "TEST_PANS",
    "audit_payload_findings",
    "audit_payloads",
    "card_data_in",
    "table_items",
]
