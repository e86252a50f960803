"""Converge's own result as the canonical outcome: APPROVED, DECLINED or ERROR, with a stable reason code."""

from __future__ import annotations

from payments.state import APPROVED, DECLINED, ERROR, ProcessorOutcome

_APPROVAL_MESSAGES = frozenset({"APPROVAL", "APPROVED", "PARTIAL APPROVAL"})
# Words Converge's decline messages are made of (DECLINED, DECLINE CVV2, CALL AUTH CENTER, ...).
_DECLINE_MARKERS = ("DECLIN", "CALL", "PICK UP", "EXPIRED", "NSF", "INSUFFICIENT", "INVALID CARD", "REFER", "CVV")
# ssl_trans_status of transactions that a post-auth, fraud or pre-auth rule failed.
_FAILED_STATUSES = frozenset({"PST", "FPR", "PRE"})
# Converge puts the reason of a decline in ssl_result_message; we keep a stable code beside it.
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


def _result_of_queried(result: dict[str, str]) -> str | None:
    """A transaction read back with txnquery has no ssl_result: its message and status tell."""
    message = result.get("ssl_result_message", "").upper()
    if not message:
        return None
    if result.get("ssl_trans_status") in _FAILED_STATUSES:
        return "1"
    if message in _APPROVAL_MESSAGES:
        return "0"
    if any(marker in message for marker in _DECLINE_MARKERS):
        return "1"
    return None  # not a message we know: no money state is known


def decline_code(message: str) -> str:
    upper = message.upper()
    return next((code for marker, code in _DECLINE_REASONS if marker in upper), "DO_NOT_HONOR")
