"""The intake: where a payment starts. A card is vaulted, and the execution starts with a reference to it.

Idempotent by TransactionID, which names the execution: the same request again is answered with
the same execution and writes nothing new; another request under a used TransactionID is refused
with DuplicateTransactionID and changes nothing. Requests are told apart by their fingerprint
(payments.fingerprints), which the execution input carries. Two intakes racing with the same
request both get the execution: StartExecution itself answers an identical start of a running
execution with that execution. See docs/architecture.md#card-data-handling.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from payments import aws
from payments.cards import card_brand
from payments.errors import DuplicateTransactionID, StorageUnavailable
from payments.fingerprints import request_fingerprint
from payments.intake import parse_payment_request
from payments.models import CardPaymentMethod, PaymentRequest
from payments.vault import CardVault, VaultedCard
from payments.workflow_input import workflow_input


@dataclass(frozen=True)
class Intake:
    state_machine_arn: str
    vault: CardVault
    stepfunctions: Any

    def accept(self, event: Any, request_id: str) -> dict[str, Any]:
        """Validate, vault the card, start the execution: {"TransactionID", "ExecutionArn", "AlreadyStarted"}.

        `request_id` is this invocation's Lambda request id, recorded with the payment: CloudTrail's
        Invoke data event with the same id names who asked for it."""
        request = parse_payment_request(event)
        fingerprint = request_fingerprint(request)
        arn = execution_arn_for(self.state_machine_arn, request.TransactionID)
        if self._started_already(arn, fingerprint):
            return _answer(request, arn, already_started=True)
        facts = self._vault_card(request, fingerprint)
        body = json.dumps(workflow_input(request, fingerprint, facts, request_id), separators=(",", ":"))
        try:
            aws.call_with_transient_mapping(
                lambda: self.stepfunctions.start_execution(
                    stateMachineArn=self.state_machine_arn, name=request.TransactionID, input=body
                ),
                StorageUnavailable,
                "Step Functions StartExecution",
            )
        except ClientError as error:
            if aws.error_code(error) != "ExecutionAlreadyExists":
                raise
            if not self._started_already(arn, fingerprint):  # raced by the same request: it started first
                raise
            return _answer(request, arn, already_started=True)
        return _answer(request, arn, already_started=False)

    def _vault_card(self, request: PaymentRequest, fingerprint: str) -> dict[str, str] | None:
        method = request.PaymentMethod
        if not isinstance(method, CardPaymentMethod):
            return None
        card = VaultedCard(method.Number, method.ExpiryMonth, method.ExpiryYear, method.HolderName)
        vaulted_for = self.vault.deposit(request.TransactionID, card, method.Cvv, fingerprint)
        if vaulted_for is not None and vaulted_for != fingerprint:
            raise _duplicate(request.TransactionID)
        return {"Brand": card_brand(method.Number), "Last4": method.Number[-4:]}

    def _started_already(self, arn: str, fingerprint: str) -> bool:
        """True when this request's execution exists; DuplicateTransactionID when another request's does."""
        try:
            existing = aws.call_with_transient_mapping(
                lambda: self.stepfunctions.describe_execution(executionArn=arn),
                StorageUnavailable,
                "Step Functions DescribeExecution",
            )
        except ClientError as error:
            if aws.error_code(error) == "ExecutionDoesNotExist":
                return False
            raise
        started_with = _json(existing.get("input", "")).get("RequestFingerprint")
        if started_with != fingerprint:
            raise _duplicate(arn.rsplit(":", 1)[-1])
        return True


def execution_arn_for(state_machine_arn: str, transaction_id: str) -> str:
    return state_machine_arn.replace(":stateMachine:", ":execution:") + ":" + transaction_id


def _answer(request: PaymentRequest, arn: str, *, already_started: bool) -> dict[str, Any]:
    return {"TransactionID": request.TransactionID, "ExecutionArn": arn, "AlreadyStarted": already_started}


def _duplicate(transaction_id: str) -> DuplicateTransactionID:
    return DuplicateTransactionID(
        json.dumps(
            {
                "TransactionID": transaction_id,
                "Message": "this TransactionID was already used for a different payment request; nothing was changed",
            }
        )
    )


def _json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
