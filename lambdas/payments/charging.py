"""CallProcessor: decrypt the card in memory, charge it exactly once, audit every call.

Converge has no idempotency key, so exactly-once is ours. Every sale carries
`ssl_merchant_txn_id = TransactionID`. A first attempt just sends the sale. Any later attempt
(Step Functions retried us: the earlier one timed out, lost its connection, crashed, or its
answer was lost) first asks Converge with `txnquery` whether a sale for this TransactionID
exists, and if so uses it and sends nothing.

Each completed call is written to the audit trail as soon as it completes (write-ahead), by
the function that made it: a call followed by an error or a crash cannot hand its record to
the Audit step, which only sees what a successful attempt returns.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from payments import crypto, settings, topology
from payments.audit import AuditRecord, AuditRepository, ProcessorCallRecord
from payments.errors import ProcessorError, ProcessorTimeout
from payments.observability import logger, metrics
from payments.processors.converge import (
    CardDetails,
    ConvergeCall,
    ConvergeClient,
    ConvergeCredentials,
    ConvergeSettings,
    kept_fields,
    sale_of,
)
from payments.state import ChargeEvent

_clients: dict[ConvergeSettings, ConvergeClient] = {}
_lock = threading.Lock()


def converge_credentials() -> ConvergeCredentials:
    """From Secrets Manager in AWS (cached by Powertools), from the environment locally."""
    secret_arn = settings.optional(topology.CONVERGE_SECRET_ARN)
    if secret_arn:
        from aws_lambda_powertools.utilities import parameters

        secret: dict[str, str] = parameters.get_secret(secret_arn, transform="json", max_age=300)
        return ConvergeCredentials(secret["ssl_merchant_id"], secret["ssl_user_id"], secret["ssl_pin"])
    return ConvergeCredentials(
        merchant_id=settings.required(topology.CONVERGE_MERCHANT_ID),
        user_id=settings.required(topology.CONVERGE_USER_ID),
        pin=settings.required(topology.CONVERGE_PIN),
    )


def converge_settings() -> ConvergeSettings:
    return ConvergeSettings(
        url=settings.required(topology.CONVERGE_URL),
        credentials=converge_credentials(),
        connect_timeout=settings.seconds(topology.CONVERGE_CONNECT_TIMEOUT_SECONDS, 3.0),
        read_timeout=settings.seconds(topology.CONVERGE_READ_TIMEOUT_SECONDS, 20.0),
    )


def converge_client() -> ConvergeClient:
    config = converge_settings()
    with _lock:
        if config not in _clients:
            _clients[config] = ConvergeClient(config)
        return _clients[config]


@dataclass
class CallRecorder:
    """Turns each completed call into an encrypted audit record and stores it at once."""

    transaction_id: str
    execution_arn: str
    attempt: int
    actor: str
    key_arn: str
    audit: AuditRepository | None
    calls: list[ProcessorCallRecord] = field(default_factory=list)
    persisted: set[str] = field(default_factory=set)  # AuditIDs written ahead

    def record(self, call: ConvergeCall) -> None:
        """Best effort: a processor result already known must never be lost to an audit failure."""
        try:
            record = call_record(
                call, attempt=self.attempt, key_arn=self.key_arn, transaction_id=self.transaction_id, actor=self.actor
            )
        except Exception as error:
            logger.error("audit record lost", extra={"operation": call.operation, "error": type(error).__name__})
            metrics.add_metric(name="AuditRecordsLost", unit=MetricUnit.Count, value=1)
            return
        self.calls.append(record)
        if self.audit is None:
            return
        try:
            self.audit.append_record(AuditRecord(self.transaction_id, self.execution_arn, record))
            self.persisted.add(record.AuditID)
        except Exception as error:  # the record still travels in the state to the Audit step
            logger.warning(
                "audit write-ahead failed", extra={"audit_id": record.AuditID, "error": type(error).__name__}
            )


@dataclass(frozen=True)
class ChargeResult:
    result: dict[str, str]
    calls: list[ProcessorCallRecord]
    latency_ms: int
    found_by_query: bool = False
    persisted: frozenset[str] = frozenset()

    def to_state(self) -> dict[str, Any]:
        """The calls travel to the Audit step; those already written are marked, so it skips them."""
        calls = [asdict(call) | {"Persisted": call.AuditID in self.persisted} for call in self.calls]
        return {"Result": self.result, "Calls": calls}


def charge(
    event: ChargeEvent,
    *,
    client: ConvergeClient,
    key_arn: str,
    actor: str,
    audit: AuditRepository | None,
    seconds_left: float = 900.0,
) -> ChargeResult:
    payment = event.Payment
    transaction_id = payment.TransactionID
    recorder = CallRecorder(transaction_id, event.ExecutionArn, event.RetryCount + 1, actor, key_arn, audit)
    try:
        if event.RetryCount > 0:
            _let_an_earlier_sale_land(client.settings, seconds_left)
            lookup = _ask_before_resending(client, transaction_id)
            recorder.record(lookup)
            earlier = sale_of(lookup, transaction_id, Decimal(payment.Amount))
            if earlier is not None:
                logger.info("earlier sale found; not sending another", extra={"ssl_txn_id": earlier.get("ssl_txn_id")})
                return ChargeResult(
                    kept_fields(earlier), recorder.calls, lookup.latency_ms, True, frozenset(recorder.persisted)
                )
        call = _send_sale(event, client, key_arn)
        recorder.record(call)
        return ChargeResult(call.result, recorder.calls, call.latency_ms, False, frozenset(recorder.persisted))
    except ProcessorError as error:
        if isinstance(error.call, ConvergeCall):
            recorder.record(error.call)
        raise


def _let_an_earlier_sale_land(config: ConvergeSettings, seconds_left: float) -> None:
    """A retry must not ask too soon: the previous attempt's sale may still be on its way.

    That attempt ended after its client gave up (at most a connect and a read timeout after
    sending), and this one began after it ended. Giving Converge one more read timeout to file a
    sale it was still working on means a query that finds nothing now proves nothing was sold.
    """
    wait = config.read_timeout
    budget = seconds_left - 2 * (config.connect_timeout + config.read_timeout) - 1
    if wait > budget:
        raise ProcessorTimeout(f"not enough time left to wait {wait:.0f}s for an earlier sale; asking later")
    logger.info("waiting for any earlier sale to land before asking", extra={"seconds": wait})
    time.sleep(wait)


def _ask_before_resending(client: ConvergeClient, transaction_id: str) -> ConvergeCall:
    try:
        return client.query(merchant_txn_id=transaction_id)
    except ProcessorError as error:
        # Whatever stopped the question (unavailable, rejected, no answer), an earlier attempt may
        # have charged: its outcome is still unknown, and that is what the retries must resolve.
        raise ProcessorTimeout(f"outcome of an earlier sale unknown; {error}", error.call) from None


def _send_sale(event: ChargeEvent, client: ConvergeClient, key_arn: str) -> ConvergeCall:
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
    return client.sale(
        transaction_id=transaction_id,
        amount=Decimal(payment.Amount),
        currency=payment.Currency,
        card=card,
        token=token,
        description=payment.Description,
    )


def call_record(
    call: ConvergeCall, *, attempt: int, key_arn: str, transaction_id: str, actor: str
) -> ProcessorCallRecord:
    """The audit view of one call: query and response masked, then encrypted for the audit purpose."""
    if call.is_error:
        outcome = "ERROR"
    elif call.operation == "txnquery":
        outcome = "FOUND" if call.transactions else "NOT_FOUND"
    else:
        outcome = "APPROVED" if call.response.get("ssl_result") == "0" else "DECLINED"
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
        EncryptedResponse=crypto.encrypt_audit_payload(
            call.masked_response, key_arn=key_arn, transaction_id=transaction_id
        ),
        Actor=actor,
        CreatedAt=call.started_at,
    )
