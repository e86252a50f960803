"""Reserved concurrency per function: how many copies of each may run at once, in every environment.

Every payment runs each step once, so the steps share one rate. CallProcessor is the narrowest on
purpose: it holds a connection to Converge for the whole call (p99 alarm at 3 s; a read may wait
20 s), and 10 at once is about 5 to 10 payments a second at Converge's usual 1 to 2 s, 18,000 or
more an hour: more than this merchant's peak, and a burst queues in Step Functions (its retries
of Lambda.TooManyRequestsException back off for about 15 s) instead of reaching Converge. Every
other function is fast (tens of milliseconds of DynamoDB and KMS): 20 each carries several times
CallProcessor's rate, so none of them is the bottleneck, and bounds their KMS and DynamoDB request
rates well inside the account's quotas. The intake's 20 turns a caller away (a throttle it may
retry) rather than start more payments than the steps behind it can finish.

Reserving takes headroom from the account: Lambda keeps at least 100 of the account's concurrency
unreserved, so an account running this stack (170 reserved) needs a concurrency quota of 270 or
more (the default quota is 1,000; a new account's may be lower until raised). The Throttles alarms
(infra.monitoring) say when a number is too low.
"""

from __future__ import annotations

from payments import topology

CALL_PROCESSOR_CONCURRENCY = 10

RESERVED_CONCURRENCY: dict[str, int] = {
    topology.INTAKE_FUNCTION.step: 20,
    "Tokenize": 20,
    "LedgerInitiated": 20,
    "LedgerPending": 20,
    "CallProcessor": CALL_PROCESSOR_CONCURRENCY,
    "Normalize": 20,
    "LedgerSuccess": 20,
    "LedgerFailed": 20,
    "Audit": 20,
}
if set(RESERVED_CONCURRENCY) != {spec.step for spec in topology.ALL_FUNCTIONS}:
    raise RuntimeError("RESERVED_CONCURRENCY must name every function of payments.topology, and only those")
