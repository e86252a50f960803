"""ProcessorID → the adapter module that speaks to that processor.

Adding a processor is its adapter module (a `from_environment()` that returns a `Processor`, and a
pure `normalize(result)`), one line in ADAPTERS, and its currencies in payments.currencies.
Adapters are imported on first use, so a step that never calls a processor never loads its client.
"""

from __future__ import annotations

import importlib
from types import MappingProxyType
from typing import TYPE_CHECKING, Protocol, cast

from payments import topology

if TYPE_CHECKING:  # the port's types are the adapters' to load: a step that only looks up ProcessorIDs does not
    from payments.processors.port import Processor
    from payments.state import ProcessorOutcome

ADAPTERS: MappingProxyType[str, str] = MappingProxyType(
    {topology.PROCESSOR_ELAVON: "payments.processors.converge"},
)


class UnknownProcessor(ValueError):
    """No adapter is registered for this ProcessorID."""


class AdapterModule(Protocol):
    def from_environment(self) -> Processor: ...

    def normalize(self, result: dict[str, str]) -> ProcessorOutcome: ...


def processor_ids() -> frozenset[str]:
    return frozenset(ADAPTERS)


def adapter(processor_id: str) -> AdapterModule:
    if processor_id not in ADAPTERS:
        raise UnknownProcessor("no adapter for this ProcessorID")
    return cast(AdapterModule, importlib.import_module(ADAPTERS[processor_id]))


def processor_for(processor_id: str) -> Processor:
    """The configured processor, from the function's environment."""
    return adapter(processor_id).from_environment()


def normalize(processor_id: str, result: dict[str, str]) -> ProcessorOutcome:
    return adapter(processor_id).normalize(result)


def load() -> None:
    """Import every adapter module, as a step's first processor call or normalization would (no client is made)."""
    for module in ADAPTERS.values():
        importlib.import_module(module)
