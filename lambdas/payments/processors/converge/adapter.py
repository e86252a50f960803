"""Converge behind the processor port: the workflow's operations mapped onto Converge transaction types."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from decimal import Decimal

from payments import settings, topology
from payments.errors import ProcessorTimeout
from payments.processors.converge.client import (
    ConvergeCall,
    ConvergeClient,
    ConvergeCredentials,
    ConvergeSettings,
    kept_fields,
)
from payments.processors.converge.client import sale_of as converge_sale_of
from payments.processors.converge.results import normalize_converge_result
from payments.processors.port import (
    AuditView,
    CallOutcome,
    ExpectedSale,
    PaymentInstruction,
    ProcessorCall,
    ProcessorTimeouts,
    StoredToken,
)
from payments.state import ProcessorOutcome

PROCESSOR_ID = topology.PROCESSOR_ELAVON


class ConvergeProcessor:
    """sale → ccsale, authorize → ccauthonly, capture → cccomplete, void → ccvoid, refund → ccreturn,
    find by merchant transaction id → txnquery by ssl_merchant_txn_id."""

    processor_id = PROCESSOR_ID

    def __init__(self, client: ConvergeClient) -> None:
        self.client = client
        self.timeouts = ProcessorTimeouts(connect=client.settings.connect_timeout, read=client.settings.read_timeout)

    def sale(self, instruction: PaymentInstruction) -> ConvergeCall:
        return self._pay(self.client.sale, instruction)

    def authorize(self, instruction: PaymentInstruction) -> ConvergeCall:
        return self._pay(self.client.auth_only, instruction)

    def capture(
        self, processor_transaction_id: str, amount: Decimal | None = None, currency: str | None = None
    ) -> ConvergeCall:
        # A partial amount is written in its currency's minor units (JPY 2500, USD 25.00), so it needs
        # the currency; without it a partial capture is refused before anything is sent.
        return self.client.complete(processor_transaction_id, amount, currency)

    def void(self, processor_transaction_id: str) -> ConvergeCall:
        return self.client.void(processor_transaction_id)

    def refund(
        self, processor_transaction_id: str, amount: Decimal | None = None, currency: str | None = None
    ) -> ConvergeCall:
        return self.client.refund(processor_transaction_id, amount, currency)

    def find_by_merchant_transaction_id(self, transaction_id: str, since: dt.date) -> ConvergeCall:
        # Converge searches by date; a day either side covers its time zone and ours.
        tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
        return self.client.query(merchant_txn_id=transaction_id, start=since - dt.timedelta(days=1), end=tomorrow)

    def sale_found(self, lookup: ProcessorCall, expected: ExpectedSale) -> dict[str, str] | None:
        assert isinstance(lookup, ConvergeCall)
        found = converge_sale_of(lookup, expected)
        if found is not None:
            return kept_fields(found)
        if lookup.transactions:
            raise ProcessorTimeout(
                f"Converge lists {len(lookup.transactions)} transaction(s) for this TransactionID, none shown to be "
                "our sale (merchant id, type, amount, currency and card must all match): outcome unknown"
            )
        return None

    def normalize(self, result: dict[str, str]) -> ProcessorOutcome:
        return normalize(result)

    @staticmethod
    def _pay(operation: Callable[..., ConvergeCall], instruction: PaymentInstruction) -> ConvergeCall:
        source = instruction.source
        return operation(
            transaction_id=instruction.transaction_id,
            amount=instruction.amount,
            currency=instruction.currency,
            card=None if isinstance(source, StoredToken) else source,
            token=source.token if isinstance(source, StoredToken) else None,
            description=instruction.description,
        )

    def audit_view(self, call: ProcessorCall) -> AuditView:
        assert isinstance(call, ConvergeCall)
        return AuditView(
            operation=call.operation,
            outcome=_outcome_of(call),
            result_code=call.result_code,
            query=call.masked_request,
            response=call.masked_response,
            started_at=call.started_at,
            latency_ms=call.latency_ms,
        )


def _outcome_of(call: ConvergeCall) -> CallOutcome:
    if call.is_error:
        return "ERROR"
    if call.operation == "txnquery":
        return "FOUND" if call.transactions else "NOT_FOUND"
    return "APPROVED" if call.response.get("ssl_result") == "0" else "DECLINED"


def normalize(result: dict[str, str]) -> ProcessorOutcome:
    return normalize_converge_result(result)


def from_environment() -> ConvergeProcessor:
    """Credentials from Secrets Manager in AWS (cached by Powertools), from plain variables locally."""
    secret_arn = settings.optional(topology.CONVERGE_SECRET_ARN)
    if secret_arn:
        from aws_lambda_powertools.utilities import parameters

        secret: dict[str, str] = parameters.get_secret(secret_arn, transform="json", max_age=300)
        credentials = ConvergeCredentials(secret["ssl_merchant_id"], secret["ssl_user_id"], secret["ssl_pin"])
    else:
        credentials = ConvergeCredentials(
            merchant_id=settings.required(topology.CONVERGE_MERCHANT_ID),
            user_id=settings.required(topology.CONVERGE_USER_ID),
            pin=settings.required(topology.CONVERGE_PIN),
        )
    budget = topology.PROCESSOR_TIME_BUDGET
    return _processor(
        ConvergeSettings(
            url=settings.required(topology.CONVERGE_URL),
            credentials=credentials,
            connect_timeout=settings.seconds(topology.CONVERGE_CONNECT_TIMEOUT_SECONDS, budget.connect_seconds),
            read_timeout=settings.seconds(topology.CONVERGE_READ_TIMEOUT_SECONDS, budget.read_seconds),
        )
    )


@functools.cache
def _processor(config: ConvergeSettings) -> ConvergeProcessor:
    """One client per configuration and process: it keeps the HTTP connection pool."""
    return ConvergeProcessor(ConvergeClient(config))
