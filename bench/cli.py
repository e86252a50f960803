"""`python -m bench [--payments N] [--concurrency C] [--output PATH]`: measure, write JSON, print tables."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from bench import chaos, coldstart, machine, report, sections, steps
from bench.counting import CallCounts, EndpointCounter
from bench.sections import Level
from bench.workload import BenchStackInfo, HandlerTimer, run_payments
from infra import config
from local import operations
from local.stack import LocalStack

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results.json"
SCHEMA_VERSION = 1


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--payments", type=int, default=200, help="measured payments per concurrency level")
    parser.add_argument("--concurrency", type=int, default=8, help="the concurrent level, run after the sequential one")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured payments before each level")
    parser.add_argument("--import-repeats", type=int, default=7, help="fresh processes per module for cold import")
    parser.add_argument("--memory-env", default="prod", help="cdk.json environment whose Lambda memory is priced")
    parser.add_argument(
        "--chaos-payments",
        type=int,
        default=chaos.DEFAULT_PAYMENTS,
        help="payments of the timed chaos run, after the latency levels (0: no chaos run)",
    )
    parser.add_argument("--chaos-seed", type=int, default=chaos.DEFAULT_SEED, help="the chaos run's seed")
    parser.add_argument(
        "--counted-payments", type=int, default=50, help="payments per level with every AWS request counted"
    )
    parser.add_argument(
        "--only-concurrency",
        action="store_true",
        help="time the --concurrency level alone, without the sequential one (to profile it: bench/README.md)",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    if min(args.payments, args.concurrency, args.warmup, args.import_repeats, args.counted_payments) < 1:
        parser.error("--payments, --concurrency, --warmup, --import-repeats and --counted-payments must be at least 1")
    if args.chaos_payments < 0:
        parser.error("--chaos-payments must be 0 (no chaos run) or more")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    out = sys.stdout
    progress = Progress(sys.stderr)
    started = time.perf_counter()
    started_at = dt.datetime.now(dt.UTC)
    memory_mb = config.load(args.memory_env).lambda_memory_mb

    progress.say(f"cold start: {args.import_repeats} fresh processes per module")
    with tempfile.TemporaryDirectory(prefix="bench-packages-") as scratch:
        cold_start = coldstart.measure(Path(scratch), args.import_repeats, memory_mb)

    with LocalStack() as stack:
        levels = measure_levels(stack, args, progress)

    # After the latency levels' stack has stopped: the chaos run starts a stack of its own.
    if args.chaos_payments:
        progress.say(f"chaos run: {args.chaos_payments} payments, seed {args.chaos_seed}")
        chaos_run = chaos.measure(args.chaos_seed, args.chaos_payments)
        progress.say(f"  {chaos_run['wall_seconds']} s, invariants hold: {chaos_run['invariants_hold']}")
    else:
        chaos_run = chaos.skipped(args.chaos_seed)

    sequential = levels[0]
    results: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "run": {
            "started_at": started_at.isoformat(timespec="seconds"),
            "duration_seconds": None,
            "arguments": {
                "payments": args.payments,
                "concurrency": args.concurrency,
                "warmup": args.warmup,
                "import_repeats": args.import_repeats,
                "counted_payments": args.counted_payments,
                "memory_env": args.memory_env,
                "chaos_payments": args.chaos_payments,
                "chaos_seed": args.chaos_seed,
            },
        },
        "machine": machine.describe(),
        "latency": sections.latency(levels),
        "steps": {"runs": [{"concurrency": level.run.concurrency, **level.per_state} for level in levels]},
        "aws_calls": sections.aws_calls(levels),
        "cost": sections.cost(sequential, args.memory_env, memory_mb),
        "cold_start": cold_start,
        "chaos": chaos_run,
    }
    results["targets"] = sections.targets(results)
    results["run"]["duration_seconds"] = round(time.perf_counter() - started, 1)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, allow_nan=False) + "\n")
    out.write(report.render(results) + "\n")
    out.write(f"\nWrote {args.output}\n")
    out.flush()
    return 0


def counted_pass(
    stack: LocalStack, info: BenchStackInfo, transaction_ids: list[str], concurrency: int, progress: Progress
) -> CallCounts:
    """Payments with every AWS request counted at the endpoint, apart from the timed ones: the counter reads
    each request and answer in the stack's process, CPU the timed run must not share. The ledger events of
    earlier payments are delivered before counting starts, these payments' before it stops: the stream
    pump's reads and LedgerEvents' calls belong to the payments that wrote the records."""
    counter = EndpointCounter()
    caught_up(stack, progress)
    stop_observing = stack.observe_requests(counter.observe)
    try:
        counter.start()
        run_payments(info, transaction_ids, concurrency)
        caught_up(stack, progress)
        return counter.stop()
    finally:
        stop_observing()


class Progress:
    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._started = time.perf_counter()

    def say(self, text: str) -> None:
        self._stream.write(f"[bench {time.perf_counter() - self._started:6.1f}s] {text}\n")
        self._stream.flush()


def measure_levels(stack: LocalStack, args: argparse.Namespace, progress: Progress) -> list[Level]:
    assert stack.info is not None and stack.runtime is not None
    info = BenchStackInfo.of(stack.info)
    timer = HandlerTimer()
    timer.install(stack.runtime)
    run_id = uuid.uuid4().hex[:8]

    def transaction_ids(tag: str, count: int) -> list[str]:
        return [f"bench-{run_id}-{tag}-{n}" for n in range(count)]

    levels = []
    for concurrency in [args.concurrency] if args.only_concurrency else sorted({1, args.concurrency}):
        warmups = max(args.warmup, concurrency)
        progress.say(f"concurrency {concurrency}: {warmups} warm-up payments")
        warmup = run_payments(info, transaction_ids(f"w{concurrency}", warmups), concurrency)
        if warmup.failures:
            progress.say(f"  {len(warmup.failures)} warm-up payments failed: {warmup.failures[0].error}")
        progress.say(f"concurrency {concurrency}: {args.payments} measured payments")
        caught_up(stack, progress)
        log_mark, invocation_mark = len(stack.logs.lines), len(stack.runtime.invocations)
        timer.start()
        run = run_payments(info, transaction_ids(f"c{concurrency}", args.payments), concurrency)
        handler_ms = timer.stop()
        caught_up(stack, progress)
        log_bytes = sum(len(line.text.encode()) + 1 for line in stack.logs.lines[log_mark:])
        invocations = stack.runtime.invocations[invocation_mark:]
        progress.say(
            f"  {len(run.approved)}/{len(run.payments)} approved in {run.wall_seconds:.1f}s; reading histories"
        )
        histories = {
            payment.execution_arn: operations.execution_history(info, payment.execution_arn)
            for payment in run.approved
            if payment.execution_arn
        }
        start_dates = {p.execution_arn: p.start_date for p in run.approved if p.execution_arn and p.start_date}
        per_state = steps.per_state(histories, handler_ms, start_dates)
        progress.say(f"concurrency {concurrency}: {args.counted_payments} payments with every AWS request counted")
        counted_ids = transaction_ids(f"n{concurrency}", args.counted_payments)
        counts = counted_pass(stack, info, counted_ids, concurrency, progress)
        levels.append(
            Level(run, counts, handler_ms, invocations, log_bytes, histories, per_state, args.counted_payments)
        )
    return levels


def caught_up(stack: LocalStack, progress: Progress) -> None:
    if not stack.events_caught_up(timeout=30.0):
        progress.say("  the stream pump did not catch up within 30 s: some ledger events fall outside the count")
