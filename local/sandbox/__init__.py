"""A Converge sandbox on loopback: Elavon's XML and key-value APIs, a transaction record, and faults.

See README.md, "The Converge sandbox", for endpoints, test cards, amount triggers and faults.
"""

from local.sandbox.faults import FAULT_KINDS, FaultRule
from local.sandbox.server import ConvergeSandbox
from local.sandbox.terminal import SandboxCredentials, Terminal, follow_ons_of

__all__ = ["FAULT_KINDS", "ConvergeSandbox", "FaultRule", "SandboxCredentials", "Terminal", "follow_ons_of"]
