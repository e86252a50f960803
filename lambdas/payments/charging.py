"""CallProcessor: decrypt the card in memory, charge it once, report the call for the audit."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from payments import crypto, settings, topology
from payments.audit import ProcessorCallRecord
from payments.processors.converge import (
    CardDetails,
    ConvergeCall,
    ConvergeClient,
    ConvergeCredentials,
    ConvergeSettings,
)
from payments.state import ChargeEvent

_clients: dict[ConvergeSettings, ConvergeClient] = {}
_lock = threading.Lock()


def converge_settings() -> ConvergeSettings:
    return ConvergeSettings(
        url=settings.required(topology.CONVERGE_URL),
        credentials=ConvergeCredentials(
            merchant_id=settings.required(topology.CONVERGE_MERCHANT_ID),
            user_id=settings.required(topology.CONVERGE_USER_ID),
            pin=settings.required(topology.CONVERGE_PIN),
        ),
        connect_timeout=settings.seconds(topology.CONVERGE_CONNECT_TIMEOUT_SECONDS, 3.0),
        read_timeout=settings.seconds(topology.CONVERGE_READ_TIMEOUT_SECONDS, 20.0),
    )


def converge_client() -> ConvergeClient:
    config = converge_settings()
    with _lock:
        if config not in _clients:
            _clients[config] = ConvergeClient(config)
        return _clients[config]


@dataclass(frozen=True)
class ChargeResult:
    result: dict[str, str]
    calls: list[ProcessorCallRecord]
    latency_ms: int

    def to_state(self) -> dict[str, Any]:
        return {"Result": self.result, "Calls": [asdict(call) for call in self.calls]}


def charge(event: ChargeEvent, *, client: ConvergeClient, key_arn: str, actor: str) -> ChargeResult:
    payment = event.Payment
    transaction_id = payment.TransactionID
    secret = crypto.decrypt_token(payment.SecureToken, key_arn=key_arn, transaction_id=transaction_id)
    card: CardDetails | None = None
    token: str | None = None
    if secret["Type"] == "card":
        cvv = None
        if event.CvvToken:
            cvv = crypto.decrypt(
                event.CvvToken, key_arn=key_arn, transaction_id=transaction_id, purpose=crypto.PURPOSE_SECURE_TOKEN
            )["Cvv"]
        card = CardDetails(
            number=secret["Number"],
            expiry_month=secret["ExpiryMonth"],
            expiry_year=secret["ExpiryYear"],
            cvv=cvv,
            holder_name=secret.get("HolderName"),
        )
    else:
        token = secret["Token"]
    call = client.sale(
        transaction_id=transaction_id,
        amount=Decimal(payment.Amount),
        currency=payment.Currency,
        card=card,
        token=token,
        description=payment.Description,
    )
    record = call_record(
        call, attempt=event.RetryCount + 1, key_arn=key_arn, transaction_id=transaction_id, actor=actor
    )
    return ChargeResult(result=call.result, calls=[record], latency_ms=call.latency_ms)


def call_record(
    call: ConvergeCall, *, attempt: int, key_arn: str, transaction_id: str, actor: str
) -> ProcessorCallRecord:
    """The audit view of one call: query and response masked, then encrypted for the audit purpose."""
    outcome = "ERROR" if call.is_error else ("APPROVED" if call.response.get("ssl_result") == "0" else "DECLINED")
    return ProcessorCallRecord(
        AuditID=f"{call.started_at}#{call.operation}#{attempt}",
        Operation=call.operation,
        Attempt=attempt,
        Outcome=outcome,
        ResultCode=call.result_code,
        LatencyMs=call.latency_ms,
        EncryptedQuery=crypto.encrypt_audit_payload(
            call.masked_request, key_arn=key_arn, transaction_id=transaction_id
        ),
        EncryptedResponse=crypto.encrypt_audit_payload(call.result, key_arn=key_arn, transaction_id=transaction_id),
        Actor=actor,
        CreatedAt=call.started_at,
    )
