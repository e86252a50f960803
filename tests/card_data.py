"""Finds card data in text: a PAN anywhere, or a CVV where a value would stand (not inside base64)."""

import re

TEST_PANS = ("4111111111111111", "4000000000000002", "4111111111111112", "5500000000000004")
TEST_CVV = "847"  # the CVV every scanned test payment uses


def card_data_in(text: str, pans=TEST_PANS, cvv: str = TEST_CVV) -> list[str]:
    found = [f"PAN {pan[:2]}…{pan[-4:]}" for pan in pans if pan in text]
    if re.search(r'"(Cvv|ssl_cvv2cvc2)"|<ssl_cvv2cvc2>|ssl_cvv2cvc2=', text):
        found.append("a CVV field")
    if re.search(rf'"{cvv}"|>{cvv}<|=\s*{cvv}\b|:\s*{cvv}\b', text):
        found.append("the CVV value")
    return found
