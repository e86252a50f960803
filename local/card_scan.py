"""Finds card data in text: a PAN anywhere, or a CVV where a value would stand (not inside base64).

Used by the tests and by the chaos run's invariant 7; the cards are the sandbox's test cards."""

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


def events_that_must_be_clean(events: list[dict]) -> list[dict]:
    """The history events that may not hold card data.

    Step Functions records every state's input, so the execution input (the card included)
    appears in ExecutionStarted, and in each TaskStateEntered and TaskScheduled of Tokenize
    until Tokenize exits (one TaskScheduled per attempt). Every other event must be clean.
    """
    clean_from = next((i for i, e in enumerate(events) if e["type"] == "TaskStateExited"), len(events))
    return [
        e
        for i, e in enumerate(events)
        if i >= clean_from or e["type"] not in ("ExecutionStarted", "TaskStateEntered", "TaskScheduled")
    ]
