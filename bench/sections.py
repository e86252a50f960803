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

TARGET_IMPORT_RATIO = 1.5
TARGET_KMS_PER_PAYMENT = 1.0
TARGET_P50_SEQUENTIAL_MS = 150.0


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
        "client_ms": "StartExecution sent until DescribeExecution (polled by local.operations.wait_for_execution) "
        "returns the finished execution",
        "service_ms": "the execution's startDate to stopDate, as DescribeExecution reports them",
        "runs": runs,
    }


def aws_calls(levels: list[Level]) -> dict[str, Any]:
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
            "writes_by_table": [
                {
                    "table": table,
                    "writes_per_payment": round(writes / n, 3),
                    "write_request_units_per_payment": round(units / n, 3),
                    "mean_item_bytes": round(item_bytes / writes),
                }
                for table, (writes, units, item_bytes) in sorted(counts.dynamodb_writes_by_table.items())
            ],
        },
        "lambda_invocations_per_payment": {
            name: round(count / n, 3) for name, count in sorted(Counter(level.invocations).items())
        },
        "state_transitions_per_payment": round(sum(transitions) / len(transitions), 3) if transitions else None,
        "http_requests_per_payment": {service: round(c / n, 3) for service, c in sorted(counts.http_requests.items())},
    }


def cost(level: Level, memory_env: str, memory_mb: int) -> dict[str, Any]:
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
    service_p50 = results["latency"]["runs"][0]["service_ms"]["p50"]
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
            "measured": f"p50 {p50} ms as the client sees it ({service_p50} ms startDate to stopDate)",
            "met": p50 is not None and p50 <= TARGET_P50_SEQUENTIAL_MS,
        },
    ]
