"""Intake: validate a payment request, vault its card, start the payment's execution.

Invoked synchronously by upstream services (lambda:InvokeFunction) with the payment request.
"""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from payments import aws, crypto, settings, snapshot, topology
from payments.card_intake import Intake
from payments.errors import DuplicateTransactionID, InvalidPaymentRequest
from payments.observability import logger, tracer
from payments.vault import vault_from_environment

# SnapStart (payments.snapshot): the Encryption SDK loaded before the snapshot.
snapshot.register(crypto.load)


# No correlation_id_path: the raw request is untrusted, and its TransactionID could hold anything.
@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    vault = vault_from_environment()
    intake = Intake(
        state_machine_arn=settings.required(topology.STATE_MACHINE_ARN),
        vault=vault,
        stepfunctions=aws.client("stepfunctions"),
    )
    try:
        answer = intake.accept(event, context.aws_request_id)
    except InvalidPaymentRequest as rejection:
        logger.warning("payment request rejected", extra={"field": rejection.field, "reason": rejection.message})
        raise
    except DuplicateTransactionID:
        logger.warning("payment request refused: TransactionID already used for another request")
        raise
    logger.set_correlation_id(answer["TransactionID"])
    logger.info("payment started", extra={"already_started": answer["AlreadyStarted"]})
    return answer
