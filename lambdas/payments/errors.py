"""Error types. Step Functions matches on the class name, so each name is part of the ASL contract."""

from __future__ import annotations

import json


class PaymentError(Exception):
    """Base class for every error a step raises on purpose."""


class InvalidPaymentRequest(PaymentError):
    """The request cannot be processed as given. Never retried. The message never echoes card data."""

    def __init__(self, field: str, message: str, transaction_id: str | None = None) -> None:
        self.field = field
        self.message = message
        self.transaction_id = transaction_id
        super().__init__(json.dumps({"TransactionID": transaction_id, "Field": field, "Message": message}))


class StorageUnavailable(PaymentError):
    """DynamoDB throttled or failed after the SDK's own retries. Safe to retry: ledger writes are idempotent."""


class KeyServiceUnavailable(PaymentError):
    """KMS throttled or failed after the SDK's own retries. Safe to retry."""


class LedgerConflict(PaymentError):
    """A ledger entry already exists with different content. Never retried: someone must look."""


class WorkflowStateInvalid(PaymentError):
    """A step received state it cannot read: a bug in the workflow, not in the request."""


class ProcessorError(PaymentError):
    """A processor call that did not produce a result; `call` holds the exchange when there was one."""

    def __init__(self, message: str, call: object | None = None) -> None:
        super().__init__(message)
        self.call = call


class ProcessorUnavailable(ProcessorError):
    """The processor could not be reached or refused service; nothing was charged. Safe to retry."""


class ProcessorTimeout(ProcessorError):
    """The processor did not answer in time; the charge may or may not have happened."""


class ProcessorRejected(ProcessorError):
    """The processor rejected our request as malformed or unauthorised. Never retried."""


class DuplicateTransactionID(PaymentError):
    """The TransactionID was already used for a different payment request. Nothing was written or started."""


class CardNotVaulted(PaymentError):
    """The vaulted card, or its CVV, is gone (expired, or removed) before a sale that needs it: never retried.

    A sale is never sent without the CVV the customer gave; the payment ends PAYMENT-FAILED, nothing charged.
    """


class ChargeRefused(PaymentError):
    """CallProcessor will not charge: the ledger does not hold this payment as pending, for this request.

    Refused before any processor call, never retried: a replayed or forged CallProcessor input.
    """
