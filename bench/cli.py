"""`python -m bench [--payments N] [--concurrency C] [--output PATH]`: measure, write JSON, print tables."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from bench import coldstart, costs, counting, machine, report, steps
from bench.counting import CallCounter, CallCounts
from bench.stats import summary
from bench.workload import BenchStackInfo, HandlerTimer, RunResult, run_payments
from infra import config
from local import operations
from local.stack import LocalStack

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results.json"
SCHEMA_VERSION = 1
POLL_INTERVAL_MS = 20  # local.operations.wait_for_execution
TARGET_IMPORT_RATIO = 1.5
TARGET_KMS_PER_PAYMENT = 1.0
TARGET_P50_SEQUENTIAL_MS = 150.0


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--payments", type=int, default=200, help="measured payments per concurrency level")
    parser.add_argument("--concurrency", type=int, default=8, help="the concurrent level, run after the sequential one")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured payments before each level")
    parser.add_argument("--import-repeats", type=int, default=7, help="fresh processes per module for cold import")
    parser.add_argument("--memory-env", default="prod", help="cdk.json environment whose Lambda memory is priced")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    if args.payments < 1 or args.concurrency < 1 or args.warmup < 1 or args.import_repeats < 1:
        parser.error("--payments, --concurrency, --warmup and --import-repeats must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    out = sys.stdout  # inside the stack, sys.stdout becomes the functions' log writer
    progress = Progress(sys.stderr)
    started = time.perf_counter()
    started_at = dt.datetime.now(dt.UTC)
    counter = CallCounter()
    counting.install(counter)  # before any botocore session exists, so that every one is hooked
    memory_mb = config.load(args.memory_env).lambda_memory_mb

    progress.say(f"cold start: {args.import_repeats} fresh processes per module")
    with tempfile.TemporaryDirectory(prefix="bench-packages-") as scratch:
        cold_start = coldstart.measure(Path(scratch), args.import_repeats, memory_mb)

    with LocalStack() as stack:
        levels = measure_levels(stack, counter, args, progress)

    sequential = levels[0]
    results = {
        "schema": SCHEMA_VERSION,
        "run": {
            "started_at": started_at.isoformat(timespec="seconds"),
            "duration_seconds": None,
            "arguments": {
                "payments": args.payments,
                "concurrency": args.concurrency,
                "warmup": args.warmup,
                "import_repeats": args.import_repeats,
                "memory_env": args.memory_env,
            },
        },
        "machine": machine.describe(),
        "latency": latency_section(levels),
        "steps": {"runs": [{"concurrency": level.run.concurrency, **level.per_state} for level in levels]},
        "aws_calls": calls_section(levels),
        "cost": cost_section(sequential, args.memory_env, memory_mb),
        "cold_start": cold_start,
    }
    results["targets"] = targets(results)
    results["run"]["duration_seconds"] = round(time.perf_counter() - started, 1)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    out.write(report.render(results) + "\n")
    out.write(f"\nWrote {args.output}\n")
    out.flush()
    return 0


class Progress:
    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._started = time.perf_counter()

    def say(self, text: str) -> None:
        self._stream.write(f"[bench {time.perf_counter() - self._started:6.1f}s] {text}\n")
        self._stream.flush()


@dataclass
class Level:
    """One measured concurrency level: its payments, what they called, and their histories."""

    run: RunResult
    counts: CallCounts
    handler_ms: dict[str, list[float]]
    invocations: list[str]
    log_bytes: int
    histories: dict[str, steps.History]
    per_state: dict[str, Any]

    @property
    def started(self) -> int:
        return len(self.run.payments)


def measure_levels(stack: LocalStack, counter: CallCounter, args: argparse.Namespace, progress: Progress) -> list[Level]:
    assert stack.info is not None and stack.runtime is not None
    info = BenchStackInfo.of(stack.info, counter)
    timer = HandlerTimer()
    timer.install(stack.runtime)
    run_id = uuid.uuid4().hex[:8]

    def transaction_ids(tag: str, count: int) -> list[str]:
        return [f"bench-{run_id}-{tag}-{n}" for n in range(count)]

    levels = []
    for concurrency in sorted({1, args.concurrency}):
        progress.say(f"concurrency {concurrency}: {args.warmup} warm-up payments")
        warmup = run_payments(info, transaction_ids(f"w{concurrency}", max(args.warmup, concurrency)), concurrency)
        if warmup.failures:
            progress.say(f"  {len(warmup.failures)} warm-up payments failed: {warmup.failures[0].error}")
        progress.say(f"concurrency {concurrency}: {args.payments} measured payments")
        log_mark, invocation_mark = len(stack.logs.lines), len(stack.runtime.invocations)
        counter.start()
        timer.start()
        run = run_payments(info, transaction_ids(f"c{concurrency}", args.payments), concurrency)
        counts, handler_ms = counter.stop(), timer.stop()
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
        per_state = steps.per_state(list(histories.values()), handler_ms)
        levels.append(Level(run, counts, handler_ms, invocations, log_bytes, histories, per_state))
    return levels


def latency_section(levels: list[Level]) -> dict[str, Any]:
    runs = []
    for level in levels:
        run = level.run
        approved = run.approved
        runs.append(
            {
                "concurrency": run.concurrency,
                "payments": len(run.payments),
                "approved": len(approved),
                "failed": len(run.failures),
                "failures": sorted(Counter(p.error or f"{p.status} {p.payment_status}" for p in run.failures).items()),
                "wall_seconds": round(run.wall_seconds, 2),
                "throughput_per_second": round(len(approved) / run.wall_seconds, 2),
                "client_ms": summary([p.client_ms for p in approved if p.client_ms is not None]),
                "service_ms": summary([p.service_ms for p in approved if p.service_ms is not None]),
            }
        )
    return {"converge_added_latency_ms": 0, "poll_interval_ms": POLL_INTERVAL_MS, "runs": runs}


def calls_section(levels: list[Level]) -> dict[str, Any]:
    sequential = levels[0]
    section = _calls_of(sequential)
    section["concurrent_runs"] = [
        {
            "concurrency": level.run.concurrency,
            "payments": level.started,
            "by_service_per_payment": _calls_of(level)["by_service_per_payment"],
        }
        for level in levels[1:]
    ]
    return section


def _calls_of(level: Level) -> dict[str, Any]:
    n = level.started
    counts = level.counts
    services = sorted({service for service, _ in counts.calls})
    dynamodb = {op: count for (service, op), count in counts.calls.items() if service == "dynamodb"}
    transitions = [steps.state_transitions(events) for events in level.histories.values()]
    return {
        "measured_over": {"concurrency": level.run.concurrency, "payments": n, "approved": len(level.run.approved)},
        "calls": [
            {"service": service, "operation": operation, "calls": count, "per_payment": round(count / n, 3)}
            for (service, operation), count in sorted(counts.calls.items())
        ],
        "by_service_per_payment": {service: round(counts.of_service(service) / n, 3) for service in services},
        "kms_requests_per_payment": round(counts.of_service("kms") / n, 3),
        "kms_by_purpose": [
            {"operation": operation, "purpose": purpose, "per_payment": round(count / n, 3)}
            for (operation, purpose), count in sorted(counts.kms_by_purpose.items())
        ],
        "dynamodb": {
            "writes_per_payment": round(sum(c for op, c in dynamodb.items() if op in counting.DYNAMODB_WRITES) / n, 3),
            "reads_per_payment": round(sum(c for op, c in dynamodb.items() if op in counting.DYNAMODB_READS) / n, 3),
            "write_request_units_per_payment": round(counts.dynamodb_write_units / n, 3),
            "read_request_units_per_payment": round(counts.dynamodb_read_units / n, 3),
        },
        "lambda_invocations_per_payment": {
            name: round(count / n, 3) for name, count in sorted(Counter(level.invocations).items())
        },
        "state_transitions_per_payment": round(sum(transitions) / len(transitions), 3) if transitions else None,
        "http_requests_per_payment": {service: round(c / n, 3) for service, c in sorted(counts.http_requests.items())},
    }


def cost_section(level: Level, memory_env: str, memory_mb: int) -> dict[str, Any]:
    n = level.started
    counts = level.counts
    billed_ms = {
        name: sum(math.ceil(ms) for ms in samples) / len(samples) for name, samples in level.handler_ms.items()
    }
    platform_log_bytes = sum(
        costs.lambda_platform_log_bytes(ms, memory_mb) for samples in level.handler_ms.values() for ms in samples
    )
    execution_log_bytes = sum(steps.execution_log_bytes(events, arn) for arn, events in level.histories.items())
    executions = max(1, len(level.histories))
    log_bytes_per_payment = (level.log_bytes + platform_log_bytes) / n + execution_log_bytes / executions
    transitions = [steps.state_transitions(events) for events in level.histories.values()]
    usage = costs.Usage(
        state_transitions=sum(transitions) / max(1, len(transitions)),
        lambda_invocations={name: count / n for name, count in Counter(level.invocations).items()},
        lambda_billed_ms=billed_ms,
        lambda_memory_mb=memory_mb,
        dynamodb_write_units=counts.dynamodb_write_units / n,
        dynamodb_read_units=counts.dynamodb_read_units / n,
        kms_requests=counts.of_service("kms") / n,
        secretsmanager_calls=counts.of_service("secrets-manager") / n,
        log_bytes=log_bytes_per_payment,
        xray_traces=1.0,
        express_billed_seconds=costs.express_billed_seconds(
            [p.service_ms for p in level.run.approved if p.service_ms is not None]
        ),
    )
    priced = costs.cost_per_million(usage, costs.load_prices())
    return {
        "measured_over": {"concurrency": level.run.concurrency, "payments": n},
        "region": "us-east-1",
        "memory_env": memory_env,
        "lambda_memory_mb": memory_mb,
        "lambda_billed_ms": {name: round(ms, 2) for name, ms in sorted(billed_ms.items())},
        "log_bytes_per_payment": {
            "handlers": round(level.log_bytes / n),
            "lambda_platform": round(platform_log_bytes / n),
            "step_functions_execution_log": round(execution_log_bytes / executions),
        },
        "express_billed_seconds_per_execution": round(usage.express_billed_seconds, 3),
        "prices": str(costs.PRICES_PATH.relative_to(costs.PRICES_PATH.parent.parent)),
        **priced,
    }


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    cold = results["cold_start"]
    worst = max(cold["functions"], key=lambda f: f["ratio_to_boto3"])
    kms = results["aws_calls"]["kms_requests_per_payment"]
    p50 = results["latency"]["runs"][0]["client_ms"]["p50"]
    return [
        {
            "target": f"each handler's cold import at most {TARGET_IMPORT_RATIO} x bare boto3 import",
            "measured": f"worst {worst['function']}: {worst['ratio_to_boto3']} x "
            f"({worst['import_ms']} ms vs {cold['boto3_import_ms']} ms)",
            "met": all(f["ratio_to_boto3"] <= TARGET_IMPORT_RATIO for f in cold["functions"]),
        },
        {
            "target": f"at most {TARGET_KMS_PER_PAYMENT:g} KMS request per payment at steady state",
            "measured": f"{kms} KMS requests per payment",
            "met": kms <= TARGET_KMS_PER_PAYMENT,
        },
        {
            "target": f"local p50 end-to-end at most {TARGET_P50_SEQUENTIAL_MS:g} ms sequential",
            "measured": f"p50 {p50} ms (StartExecution to DescribeExecution seeing the end)",
            "met": p50 <= TARGET_P50_SEQUENTIAL_MS,
        },
    ]
