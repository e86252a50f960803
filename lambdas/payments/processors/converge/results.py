"""Converge's own result as the canonical outcome: APPROVED, DECLINED or ERROR, with a stable reason code."""

from __future__ import annotations

from types import MappingProxyType

from payments.state import APPROVED, DECLINED, ERROR, ProcessorOutcome

# Converge's authorization response messages (its Integration Guide, "Authorization Response Codes":
# AA and AP approve; N7, NC, ND and NR decline). Card messages only: the table's check (ACH) ones
# never answer a card sale.
_APPROVAL_MESSAGES = frozenset({"APPROVAL", "APPROVED", "APPROBAT", "PARTIAL APPROVAL"})
_DECLINE_MESSAGES: MappingProxyType[str, str] = MappingProxyType(
    {
        "DECLINED": "DO_NOT_HONOR",
        "DECLINE CVV2": "CVV_MISMATCH",  # N7
        "PICK UP CARD": "PICK_UP_CARD",  # NC
        "CALL AUTH. CENTER": "CALL_ISSUER",  # NR, refer to issuer
        "EXPIRED CARD": "EXPIRED_CARD",
        "REQ. EXCEEDS BAL.": "INSUFFICIENT_FUNDS",
        "SERV NOT ALLOWED": "DO_NOT_HONOR",  # the service is not allowed for this card or terminal
        "INVALID CARD": "DO_NOT_HONOR",
        "AMOUNT ERROR": "DO_NOT_HONOR",
        "AMT OVER SVC LMT": "DO_NOT_HONOR",
        "APPL TYPE ERROR": "DO_NOT_HONOR",
        "DECLINED-HELP 9999": "DO_NOT_HONOR",
        "INCORRECT PIN": "DO_NOT_HONOR",
        "INVALID CAVV": "DO_NOT_HONOR",
        "INVALID TERM ID": "DO_NOT_HONOR",
        "INVLD TERM ID 1": "DO_NOT_HONOR",
        "INVLD TERM ID 2": "DO_NOT_HONOR",
        "INVLD VOID DATA": "DO_NOT_HONOR",
        "MAX MONTHLY VOL": "DO_NOT_HONOR",
        "NETWORK ERROR": "DO_NOT_HONOR",
        "PLEASE RETRY": "DO_NOT_HONOR",
        "RECORD NOT FOUND": "DO_NOT_HONOR",
        "SEQ ERR PLS CALL": "DO_NOT_HONOR",
    }
)
# Words other decline messages are made of (the sandbox's DECLINED: NSF, an issuer's INSUFFICIENT
# FUNDS, ...): a fallback for messages the table above does not name.
_DECLINE_MARKERS = ("DECLIN", "CALL", "PICK UP", "EXPIRED", "NSF", "INSUFFICIENT", "INVALID CARD", "REFER", "CVV")
# ssl_trans_status of transactions that a post-auth, fraud or pre-auth rule failed.
_FAILED_STATUSES = frozenset({"PST", "FPR", "PRE"})
# The reason a message not in the table gives, by the first word of it found.
_DECLINE_REASONS = (
    ("CVV", "CVV_MISMATCH"),
    ("NSF", "INSUFFICIENT_FUNDS"),
    ("INSUFFICIENT", "INSUFFICIENT_FUNDS"),
    ("EXPIRED", "EXPIRED_CARD"),
    ("CALL", "CALL_ISSUER"),
    ("PICK UP", "PICK_UP_CARD"),
    ("AVS", "AVS_MISMATCH"),
)


def normalize_converge_result(result: dict[str, str]) -> ProcessorOutcome:
    if "errorCode" in result:
        return ProcessorOutcome(
            Status=ERROR,
            ReasonCode=f"CONVERGE_{result['errorCode']}",
            ReasonMessage=result.get("errorName") or result.get("errorMessage") or "Converge error",
        )
    message = result.get("ssl_result_message", "")
    code = result.get("ssl_result") or _result_of_queried(result)
    if code not in ("0", "1"):
        # The adapter refuses such replies; if one gets here, it is not a decline: no money state is known.
        return ProcessorOutcome(Status=ERROR, ReasonCode="UNRECOGNIZED_RESULT", ReasonMessage="no ssl_result")
    if code == "0":
        return ProcessorOutcome(
            Status=APPROVED,
            ReasonMessage=message,
            ProcessorTransactionID=result.get("ssl_txn_id"),
            ApprovalCode=result.get("ssl_approval_code"),
        )
    return ProcessorOutcome(
        Status=DECLINED,
        ReasonCode=decline_code(message),
        ReasonMessage=message or "DECLINED",
        ProcessorTransactionID=result.get("ssl_txn_id"),
    )


def approved_in_listing(transaction: dict[str, str]) -> bool:
    """Whether a transaction read back with txnquery was approved, by the same rule normalize uses."""
    return _result_of_queried(transaction) == "0"


def declined_in_listing(transaction: dict[str, str]) -> bool:
    """Whether a transaction read back with txnquery was declined (or failed), by the same rule."""
    return _result_of_queried(transaction) == "1"


def _result_of_queried(result: dict[str, str]) -> str | None:
    """A transaction read back with txnquery has no ssl_result: its message and status tell."""
    message = _plain(result.get("ssl_result_message", ""))
    if not message:
        return None
    if result.get("ssl_trans_status") in _FAILED_STATUSES:
        return "1"
    if message in _APPROVAL_MESSAGES:
        return "0"
    if message in _DECLINE_MESSAGES or any(marker in message for marker in _DECLINE_MARKERS):
        return "1"
    return None  # not a message we know: no money state is known


def decline_code(message: str) -> str:
    plain = _plain(message)
    if plain in _DECLINE_MESSAGES:
        return _DECLINE_MESSAGES[plain]
    return next((code for marker, code in _DECLINE_REASONS if marker in plain), "DO_NOT_HONOR")


def _plain(message: str) -> str:
    return " ".join(message.upper().split())
