"""The sections of results.json, from what the measured levels recorded."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from bench import costs, counting, steps
from bench.counting import CallCounts
from bench.stats import summary
from bench.workload import RunResult

# The performance issue's targets, each reported as met or missed (never enforced).
TARGET_P50_SEQUENTIAL_MS = 100.0  # local end-to-end p50 of an approved payment, sequential
TARGET_P99_SEQUENTIAL_MS = 250.0  # and its p99
TARGET_CONCURRENCY, TARGET_CORES = 8, 2  # the concurrent level the throughput target is set for
TARGET_CONCURRENT_PER_SECOND = 15.0  # payments/s at 8 concurrent on 2 cores (and never below sequential)
TARGET_IMPORT_RATIO = 1.5  # each handler's cold import, against bare `import boto3` in the same run
TARGET_CHAOS_PAYMENTS = 1000
TARGET_CHAOS_SECONDS = 300.0  # a 1,000-payment chaos run, whole, on 2 cores

# "No KMS call the design does not need": the KMS requests a payment cannot do without, by (operation,
# encryption-context purpose). The context binds every ciphertext to its TransactionID and purpose,
# and the Encryption SDK's data-key cache is keyed by the context, so each purpose of each payment
# needs a data key of its own:
# - GenerateDataKey, 3: the vaulted card (and CVV) at the intake (card-intake); the SecureToken in
#   Tokenize (secure-token); the audit records in CallProcessor (audit: one data key for both records,
#   through the cache).
# - Decrypt, 3: the card in Tokenize (card-intake); the SecureToken and the CVV in CallProcessor
#   (secure-token, card-intake). Three ciphertexts under two data keys, decrypted in two different
#   functions, which on AWS are separate processes: no cache can be shared between them. Tokenize may
#   not read the CVV by design (IAM), so the card-intake data key is decrypted once in each function.
KMS_FLOOR_BY_PURPOSE: dict[tuple[str, str], int] = {
    ("GenerateDataKey", "card-intake"): 1,
    ("GenerateDataKey", "secure-token"): 1,
    ("GenerateDataKey", "audit"): 1,
    ("Decrypt", "card-intake"): 2,
    ("Decrypt", "secure-token"): 1,
}
KMS_FLOOR_PER_PAYMENT = 6
assert sum(KMS_FLOOR_BY_PURPOSE.values()) == KMS_FLOOR_PER_PAYMENT


@dataclass
class Level:
    """One measured concurrency level: its payments, what they called, and their histories."""

    run: RunResult
    counts: CallCounts  # of the counted pass: `counted_payments` more payments at the same concurrency
    handler_ms: dict[str, list[float]]
    invocations: list[str]
    log_bytes: int
    histories: dict[str, steps.History]
    per_state: dict[str, Any]
    counted_payments: int

    @property
    def started(self) -> int:
        return len(self.run.payments)


def latency(levels: list[Level]) -> dict[str, Any]:
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
                "failures": [
                    {"error": error, "count": count}
                    for error, count in Counter(
                        p.error or f"{p.status} {p.payment_status}" for p in run.failures
                    ).items()
                ],
                "wall_seconds": round(run.wall_seconds, 2),
                "throughput_per_second": round(len(approved) / run.wall_seconds, 2),
                "client_ms": summary([p.client_ms for p in approved if p.client_ms is not None]),
                "service_ms": summary([p.service_ms for p in approved if p.service_ms is not None]),
            }
        )
    return {
        "converge_added_latency_ms": 0,
        "client_ms": "the intake invoke sent until DescribeExecution returns the finished execution "
        "(awaited on the stack's /_local/executions/ended route: no polling interval)",
        "service_ms": "the execution's startDate to stopDate, as DescribeExecution reports them",
        "runs": runs,
    }


def aws_calls(levels: list[Level]) -> dict[str, Any]:
    sequential = levels[0]
    section = _calls_of(sequential)
    section["concurrent_runs"] = [
        {
            "concurrency": level.run.concurrency,
            "payments": level.counted_payments,
            "by_service_per_payment": _calls_of(level)["by_service_per_payment"],
        }
        for level in levels[1:]
    ]
    return section


def _calls_of(level: Level) -> dict[str, Any]:
    n = level.counted_payments  # the calls are counted on a pass of their own
    counts = level.counts
    services = sorted({service for service, _ in counts.calls})
    dynamodb = {op: count for (service, op), count in counts.calls.items() if service == "dynamodb"}
    transitions = [steps.state_transitions(events) for events in level.histories.values()]
    return {
        "measured_over": {
            "concurrency": level.run.concurrency,
            "payments": n,
            "note": "a counted pass after the timed one: counting every request slows the stack's process",
        },
        "calls": [
            {"service": service, "operation": operation, "calls": count, "per_payment": round(count / n, 3)}
            for (service, operation), count in sorted(counts.calls.items())
        ],
        "by_service_per_payment": {service: round(counts.of_service(service) / n, 3) for service in services},
        "kms_requests_per_payment": round(counts.of_service("kms") / n, 3),
        "kms_floor_per_payment": KMS_FLOOR_PER_PAYMENT,
        "kms_by_purpose": [
            {
                "operation": operation,
                "purpose": purpose,
                "per_payment": round(counts.kms_by_purpose.get((operation, purpose), 0) / n, 3),
                "most_in_one_payment": counts.kms_most_per_payment.get((operation, purpose), 0),
                "floor": KMS_FLOOR_BY_PURPOSE.get((operation, purpose), 0),
            }
            for operation, purpose in sorted(counts.kms_by_purpose.keys() | KMS_FLOOR_BY_PURPOSE.keys())
        ],
        "dynamodb": {
            "writes_per_payment": round(sum(c for op, c in dynamodb.items() if op in counting.DYNAMODB_WRITES) / n, 3),
            "reads_per_payment": round(sum(c for op, c in dynamodb.items() if op in counting.DYNAMODB_READS) / n, 3),
            "write_request_units_per_payment": round(counts.dynamodb_write_units / n, 3),
            "read_request_units_per_payment": round(counts.dynamodb_read_units / n, 3),
            "writes_by_table": [
                {
                    "table": table,
                    "writes_per_payment": round(writes / n, 3),
                    "puts_per_payment": round(puts / n, 3),
                    "write_request_units_per_payment": round(units / n, 3),
                    "mean_item_bytes": round(put_bytes / puts) if puts else None,  # of its PutItems
                }
                for table, (writes, units, puts, put_bytes) in sorted(counts.dynamodb_writes_by_table.items())
            ],
        },
        "lambda_invocations_per_payment": {  # of the timed run
            name: round(count / level.started, 3) for name, count in sorted(Counter(level.invocations).items())
        },
        "state_transitions_per_payment": round(sum(transitions) / len(transitions), 3) if transitions else None,
        "http_requests_per_payment": {service: round(c / n, 3) for service, c in sorted(counts.http_requests.items())},
        "excluded_bench_requests": counts.excluded_requests,
    }


def cost(level: Level, memory_env: str, memory_mb: int) -> dict[str, Any]:
    n = level.started
    counts, counted = level.counts, level.counted_payments
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
        dynamodb_write_units=counts.dynamodb_write_units / counted,
        dynamodb_read_units=counts.dynamodb_read_units / counted,
        kms_requests=counts.of_service("kms") / counted,
        secretsmanager_calls=counts.of_service("secrets-manager") / counted,
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
    """Every target of the performance issue: what was measured against it, and whether it was met."""
    cores = results["machine"].get("usable_cores") or results["machine"]["cores"]
    return [
        *_latency_targets(results["latency"]["runs"], cores),
        _import_target(results["cold_start"]),
        *_kms_targets(results["aws_calls"]),
        _chaos_target(results["chaos"], cores),
    ]


def _row(target: str, measured: str, value: float | None, comparison: str, limit: float, unit: str) -> dict[str, Any]:
    compare = {"<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b}[comparison]
    return {
        "target": target,
        "measured": measured,
        "value": value,
        "comparison": comparison,
        "limit": limit,
        "unit": unit,
        "met": value is not None and bool(compare(value, limit)),
    }


def _latency_targets(runs: list[dict[str, Any]], cores: int) -> list[dict[str, Any]]:
    sequential = runs[0]
    client, service = sequential["client_ms"], sequential["service_ms"]
    over = f"{sequential['approved']} approved payments"
    rows = [
        _row(
            f"local end-to-end p50 of an approved payment, sequential, at most {TARGET_P50_SEQUENTIAL_MS:g} ms",
            f"p50 {client['p50']} ms as the client sees it ({service['p50']} ms startDate to stopDate), {over}",
            client["p50"],
            "<=",
            TARGET_P50_SEQUENTIAL_MS,
            "ms",
        ),
        _row(
            f"local end-to-end p99 of an approved payment, sequential, at most {TARGET_P99_SEQUENTIAL_MS:g} ms",
            f"p99 {client['p99']} ms as the client sees it ({service['p99']} ms startDate to stopDate), {over}",
            client["p99"],
            "<=",
            TARGET_P99_SEQUENTIAL_MS,
            "ms",
        ),
    ]
    concurrent = runs[1] if len(runs) > 1 else None
    rate = concurrent["throughput_per_second"] if concurrent else None
    if concurrent is None:
        where = "no concurrent level (--concurrency 1)"
    else:
        where = f"c={concurrent['concurrency']} on {cores} cores"
        if (concurrent["concurrency"], cores) != (TARGET_CONCURRENCY, TARGET_CORES):
            where += f" (the target's: c={TARGET_CONCURRENCY} on {TARGET_CORES})"
    rows += [
        _row(
            f"{TARGET_CONCURRENCY} concurrent on {TARGET_CORES} cores: at least "
            f"{TARGET_CONCURRENT_PER_SECOND:g} payments/s",
            f"{rate} payments/s, {where}" if concurrent else where,
            rate,
            ">=",
            TARGET_CONCURRENT_PER_SECOND,
            "payments/s",
        ),
        _row(
            f"{TARGET_CONCURRENCY} concurrent never below the sequential rate",
            f"{rate} payments/s concurrent vs {sequential['throughput_per_second']} sequential, {where}"
            if concurrent
            else where,
            rate,
            ">=",
            sequential["throughput_per_second"],
            "payments/s",
        ),
    ]
    return rows


def _import_target(cold: dict[str, Any]) -> dict[str, Any]:
    functions = cold["functions"]
    worst = max(functions, key=lambda f: f["ratio_to_boto3"])
    measured = (
        f"worst {worst['function']}: {worst['ratio_to_boto3']} x ({worst['import_ms']} ms vs "
        f"{cold['boto3_import_ms']} ms)"
    )
    # bench/coldstart.py may also time the import with its SnapStart warm-ups and with tracing on.
    for key, label in (("warm_ratio_to_boto3", "with SnapStart warm-ups"), ("traced_ratio_to_boto3", "traced")):
        if all(key in f for f in functions):
            other = max(functions, key=lambda f: f[key])
            measured += f"; {label}: worst {other['function']} {other[key]} x"
    return _row(
        f"each handler's cold import at most {TARGET_IMPORT_RATIO} x bare boto3 import",
        measured,
        worst["ratio_to_boto3"],
        "<=",
        TARGET_IMPORT_RATIO,
        "x boto3",
    )


def _kms_targets(calls: dict[str, Any]) -> list[dict[str, Any]]:
    kms = calls["kms_requests_per_payment"]
    purposes = ", ".join(f"{p['operation']} {p['purpose']} {p['per_payment']:g}" for p in calls["kms_by_purpose"])
    decrypts = [p for p in calls["kms_by_purpose"] if p["operation"] == "Decrypt"]
    most = ", ".join(f"{p['purpose']} {p['most_in_one_payment']} (floor {p['floor']})" for p in decrypts)
    over = max((p["most_in_one_payment"] - p["floor"] for p in decrypts), default=0)
    return [
        _row(
            f"no KMS call the design does not need: at most {KMS_FLOOR_PER_PAYMENT} KMS requests per payment "
            "(the floor: 3 GenerateDataKey, 3 Decrypt)",
            f"{kms} KMS requests per payment ({purposes})",
            kms,
            "<=",
            KMS_FLOOR_PER_PAYMENT,
            "requests/payment",
        ),
        _row(
            "no ciphertext decrypted twice: in every payment, Decrypts per purpose at most the floor's "
            "(card-intake 2: the card in Tokenize, the CVV in CallProcessor; secure-token 1)",
            f"most Decrypts in any one payment: {most or 'none'}",
            float(max(over, 0)),
            "<=",
            0.0,
            "Decrypts over the floor",
        ),
    ]


def _chaos_target(chaos: dict[str, Any], cores: int) -> dict[str, Any]:
    target = (
        f"a {TARGET_CHAOS_PAYMENTS:,}-payment chaos run finishes in under {TARGET_CHAOS_SECONDS:g} s on "
        f"{TARGET_CORES} cores, every invariant holding"
    )
    if not chaos["ran"]:
        return _row(target, "not run (--chaos-payments 0)", None, "<", TARGET_CHAOS_SECONDS, "s")
    if chaos["timed_out"]:
        outcome = "timed out"
    elif chaos["crashed"]:
        outcome = f"crashed (exit {chaos['exit_code']})"
    elif chaos["invariants_hold"]:
        outcome = "every invariant held"
    else:
        outcome = f"invariants failed: {', '.join(chaos['invariants']['failed']) or '(see output_tail)'}"
    short = chaos["payments"] < TARGET_CHAOS_PAYMENTS
    row = _row(
        target,
        f"{chaos['payments']} payments, seed {chaos['seed']}: {chaos['wall_seconds']} s on {cores} cores "
        f"(the run's own {chaos['run_seconds']} s), {outcome}"
        + (f"; fewer payments than the target's {TARGET_CHAOS_PAYMENTS:,}" if short else ""),
        chaos["wall_seconds"],
        "<",
        TARGET_CHAOS_SECONDS,
        "s",
    )
    row["met"] = row["met"] and chaos["invariants_hold"] and not short
    return row
