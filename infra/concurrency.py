"""Reserved concurrency per function: how many copies of each may run at once, in every environment.

Every payment runs each of its steps once, so those steps share one rate; every operation (capture,
void, refund) likewise runs each of its own once. The two functions that call Converge for them are
narrow on purpose: each holds a connection to Converge for the whole call (p99 alarm at 3 s; a
read may wait 20 s). CallProcessor's 10 at once is about 5 to 10 payments a second at Converge's
usual 1 to 2 s, 18,000 or more an hour: more than this merchant's peak, and a burst queues in Step
Functions (its retries of Lambda.TooManyRequestsException back off for about 15 s) instead of
reaching Converge. CallOperationProcessor gets the same 10, a pool of its own: a burst of refunds
never takes a connection from a payment, and the two together hold at most 20 connections to
Converge. Every other function is fast (tens of milliseconds of DynamoDB and KMS): 20 each carries
several times the processor steps' rate, so none of them is the bottleneck, and bounds their KMS
and DynamoDB request rates well inside the account's quotas. Normalize and Audit serve both state
machines. The intake's 20 turns a caller away (a throttle it may retry) rather than start more
payments than the steps behind it can finish. LedgerEvents is fast too (a DynamoDB write or two and
a PutEvents per terminal entry) and gets the same 20: its event source mapping runs one batch per
stream shard at a time (parallelization factor 1, which keeps each payment's entries in order), so
it uses one copy per shard of the ledger's stream, and 20 is room for the shards of a ledger many
times this merchant's; should the shards ever outnumber it, the mapping is throttled and retries,
and the Throttles alarm says so.

The scheduled workflows (status sync every five minutes, reconciliation once a day) run one
execution at a time. Their steps that call Converge, ResolveUnresolved and ListProcessorWindow, get
CALL_PROCESSOR_CONCURRENCY each, pools of their own like CallOperationProcessor's: each Map state
runs at most a few iterations at once (status sync 4), so even a run that overlaps the next fits
without a throttle, and none of them ever takes a connection from a payment or an operation. The
four pools together hold at most 40 connections to Converge. Their other steps (FindUnresolved,
PlanReconciliation, MatchLedger) run once per execution: SCHEDULED_STEP_CONCURRENCY (2) is that
run and the next one, should they overlap; a third waits in Step Functions' retries.

Reserving takes headroom from the account: Lambda keeps at least 100 of the account's concurrency
unreserved, so an account running this stack (306 reserved) needs a concurrency quota of 406 or
more (the default quota is 1,000; a new account's may be lower until raised). The Throttles alarms
(infra.monitoring) say when a number is too low.
"""

from __future__ import annotations

from payments import topology

CALL_PROCESSOR_CONCURRENCY = 10
# A step a scheduled workflow runs once per execution: that run, and the next should they overlap.
SCHEDULED_STEP_CONCURRENCY = 2
# The functions that hold a connection to Converge: each gets CALL_PROCESSOR_CONCURRENCY, its own pool.
PROCESSOR_STEPS = frozenset(spec.step for spec in topology.ALL_FUNCTIONS if spec.uses_processor)

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
    "AdmitOperation": 20,
    "OperationPending": 20,
    "CallOperationProcessor": CALL_PROCESSOR_CONCURRENCY,
    "OperationSuccess": 20,
    "OperationFailed": 20,
    topology.EVENTS_FUNCTION.step: 20,
    # Status sync (topology.STATUS_SYNC_WORKFLOW; Audit is the payments' and operations' too).
    "FindUnresolved": SCHEDULED_STEP_CONCURRENCY,
    "ResolveUnresolved": CALL_PROCESSOR_CONCURRENCY,
    # Reconciliation (topology.RECONCILIATION_WORKFLOW).
    "PlanReconciliation": SCHEDULED_STEP_CONCURRENCY,
    "ListProcessorWindow": CALL_PROCESSOR_CONCURRENCY,
    "MatchLedger": SCHEDULED_STEP_CONCURRENCY,
}
if set(RESERVED_CONCURRENCY) != {spec.step for spec in topology.ALL_FUNCTIONS}:
    raise RuntimeError("RESERVED_CONCURRENCY must name every function of payments.topology, and only those")
if {step for step, n in RESERVED_CONCURRENCY.items() if n == CALL_PROCESSOR_CONCURRENCY} != PROCESSOR_STEPS:
    raise RuntimeError("the functions that call the processor, and only those, get CALL_PROCESSOR_CONCURRENCY")
