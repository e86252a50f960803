"""Tokenize: read the execution input, take the card out of the vault, and replace it with a SecureToken."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from payments import crypto, settings, snapshot
from payments.errors import InvalidPaymentRequest
from payments.observability import logger, tracer
from payments.state import TokenizeEvent, parse_state
from payments.tokenization import tokenize
from payments.vault import vault_from_environment
from payments.workflow_input import parse_workflow_input

# SnapStart (payments.snapshot): the Encryption SDK loaded before the snapshot.
snapshot.register(crypto.load)


# No correlation_id_path: the raw input is untrusted, and its TransactionID could hold anything.
@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse_state(event, TokenizeEvent)
    try:
        request = parse_workflow_input(step.Request, execution_name=step.ExecutionName)
    except InvalidPaymentRequest as rejection:
        logger.warning(
            "payment request rejected",
            extra={"transaction_id": rejection.transaction_id, "field": rejection.field, "reason": rejection.message},
        )
        raise
    logger.set_correlation_id(request.TransactionID)
    key_arn = settings.kms_key_arn()
    vault = vault_from_environment()
    state = tokenize(request, key_arn=key_arn, vault=vault)
    logger.info("payment tokenized", extra={"card_brand": (state["Payment"]["Card"] or {}).get("Brand")})
    return state
