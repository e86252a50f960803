"""Logger, Tracer and Metrics, created once and shared by every handler.

Tracer never captures responses (they may hold ciphertext we do not want in traces), and
nothing here logs an event: a payment request carries a PAN until Tokenize replaces it.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

from payments import topology

logger = Logger(service=topology.SERVICE_NAME)
tracer = Tracer(service=topology.SERVICE_NAME)
metrics = Metrics(namespace=topology.METRICS_NAMESPACE, service=topology.SERVICE_NAME)
