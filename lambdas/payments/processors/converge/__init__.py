"""Elavon Converge: the XML API client, its result codes, and the adapter behind the processor port."""

from payments.processors.converge.adapter import ConvergeProcessor, from_environment, normalize
from payments.processors.converge.client import (
    RESULT_FIELDS,
    ConvergeCall,
    ConvergeClient,
    ConvergeCredentials,
    ConvergeSettings,
    from_xml,
    kept_fields,
    sale_of,
    to_xml,
)
from payments.processors.port import CardDetails

__all__ = [
    "RESULT_FIELDS",
    "CardDetails",
    "ConvergeCall",
    "ConvergeClient",
    "ConvergeCredentials",
    "ConvergeProcessor",
    "ConvergeSettings",
    "from_environment",
    "from_xml",
    "kept_fields",
    "normalize",
    "sale_of",
    "to_xml",
]
