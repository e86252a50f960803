"""Logger, Tracer and Metrics, created once and shared by every handler.

Tracer never captures responses (they may hold ciphertext we do not want in traces), and
nothing here logs an event: a payment request carries a PAN until Tokenize replaces it.

Powertools' Tracer imports the X-Ray SDK (the largest import of any handler: `aws_xray_sdk.core`,
and the patching of botocore) as soon as it is created, even when it will not trace. So it is
created only where Powertools would trace; elsewhere (POWERTOOLS_TRACE_DISABLED, or not running in
Lambda: the local stack, the tests, the bench) `tracer` is a stand-in whose decorator hands the
handler back unchanged, which is all a disabled Tracer does for us: it sends nothing, and the
exception it logs goes to Powertools' own logger, which discards it (NullHandler, propagate off).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.tracing.tracer import Tracer

from payments import topology


def tracing_enabled() -> bool:
    """Whether Powertools' Tracer would trace here, by its own rule (`Tracer._is_tracer_disabled`, which
    reads the environment only): not when POWERTOOLS_TRACE_DISABLED is true, not outside Lambda
    (LAMBDA_TASK_ROOT unset), not under SAM local or Chalice. Asking imports no X-Ray."""
    return not Tracer._is_tracer_disabled()


class UntracedHandlers:
    """What the handlers ask of Tracer, where it would not trace: `capture_lambda_handler` returns the
    handler itself. Used the way Tracer is: `@tracer.capture_lambda_handler(capture_response=False)`."""

    disabled = True

    def capture_lambda_handler(
        self,
        lambda_handler: Callable[..., Any] | None = None,
        capture_response: bool | None = None,
        capture_error: bool | None = None,
    ) -> Callable[..., Any]:
        if lambda_handler is None:
            return lambda handler: handler
        return lambda_handler


logger = Logger(service=topology.SERVICE_NAME)
tracer: Tracer | UntracedHandlers = Tracer(service=topology.SERVICE_NAME) if tracing_enabled() else UntracedHandlers()
metrics = Metrics(namespace=topology.METRICS_NAMESPACE, service=topology.SERVICE_NAME)
