"""Cost per million payments on AWS, from counted calls, measured durations and bench/prices.json."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PRICES_PATH = Path(__file__).resolve().parent / "prices.json"
EXPRESS_MEMORY_MB = 64  # one 64 MB chunk: the definition and the state (a few KB) are far below it
GIB = 1024**3
MILLION = 1_000_000


def load_prices(path: Path = PRICES_PATH) -> dict[str, dict[str, Any]]:
    prices: dict[str, dict[str, Any]] = json.loads(path.read_text())["prices"]
    return prices


@dataclass(frozen=True)
class Usage:
    """What one approved payment uses, at steady state."""

    state_transitions: float
    lambda_invocations: dict[str, float]  # function -> invocations per payment
    lambda_billed_ms: dict[str, float]  # function -> mean billed duration (each invocation rounded up to 1 ms)
    lambda_memory_mb: int
    dynamodb_write_units: float
    dynamodb_read_units: float
    kms_requests: float
    secretsmanager_calls: float
    log_bytes: float  # Lambda (handler lines and platform lines) and Step Functions execution log
    xray_traces: float
    express_billed_seconds: float  # mean execution duration, each rounded up to 100 ms as Express bills it

    @property
    def lambda_gb_seconds(self) -> float:
        gb = self.lambda_memory_mb / 1024
        return sum(
            count * self.lambda_billed_ms.get(function, 0.0) / 1000 * gb
            for function, count in self.lambda_invocations.items()
        )

    @property
    def express_gb_seconds(self) -> float:
        return self.express_billed_seconds * EXPRESS_MEMORY_MB / 1024


@dataclass(frozen=True)
class Line:
    name: str
    price_key: str
    quantity: float  # per payment, in the price's unit
    standard: bool = True
    express: bool = True


def cost_per_million(usage: Usage, prices: dict[str, dict[str, Any]]) -> dict[str, Any]:
    lines = [
        Line("Step Functions Standard: state transitions", "stepfunctions_standard_state_transition",
             usage.state_transitions, express=False),
        Line("Step Functions Express: requests", "stepfunctions_express_request", 1.0, standard=False),
        Line("Step Functions Express: duration (64 MB)", "stepfunctions_express_gb_second",
             usage.express_gb_seconds, standard=False),
        Line("Lambda: requests", "lambda_arm64_request", sum(usage.lambda_invocations.values())),
        Line(f"Lambda: duration (arm64, {usage.lambda_memory_mb} MB)", "lambda_arm64_gb_second",
             usage.lambda_gb_seconds),
        Line("DynamoDB: write request units", "dynamodb_on_demand_write_request_unit", usage.dynamodb_write_units),
        Line("DynamoDB: read request units", "dynamodb_on_demand_read_request_unit", usage.dynamodb_read_units),
        Line("KMS: requests", "kms_request", usage.kms_requests),
        Line("Secrets Manager: API calls", "secretsmanager_api_call", usage.secretsmanager_calls),
        Line("CloudWatch Logs: ingestion", "cloudwatch_logs_ingestion_gb", usage.log_bytes / GIB),
        Line("X-Ray: traces recorded", "xray_trace_recorded", usage.xray_traces),
    ]  # fmt: skip
    rows = []
    for line in lines:
        price = prices[line.price_key]
        per_million = line.quantity * float(price["usd"]) * MILLION
        rows.append(
            {
                "line": line.name,
                "price_key": line.price_key,
                "quantity_per_payment": line.quantity,
                "unit": price["unit"],
                "unit_usd": price["usd"],
                "price_status": price["status"],
                "standard_usd_per_million": round(per_million, 4) if line.standard else None,
                "express_usd_per_million": round(per_million, 4) if line.express else None,
            }
        )
    return {
        "lines": rows,
        "standard": _total(rows, "standard_usd_per_million"),
        "express": _total(rows, "express_usd_per_million"),
    }


def _total(rows: list[dict[str, Any]], column: str) -> dict[str, Any]:
    priced = [row for row in rows if row[column] is not None]
    total = sum(row[column] for row in priced)
    top = max(priced, key=lambda row: row[column])
    return {
        "usd_per_million": round(total, 2),
        "dominant_line": top["line"],
        "dominant_share": round(top[column] / total, 3) if total else None,
    }


def express_billed_seconds(execution_ms: list[float]) -> float:
    return sum(math.ceil(ms / 100) / 10 for ms in execution_ms) / len(execution_ms) if execution_ms else 0.0


def lambda_platform_log_bytes(duration_ms: float, memory_mb: int) -> int:
    """The START, END and REPORT lines Lambda writes per invocation (text format, active tracing on)."""
    request_id = "8f507cfc-6ab3-4a4e-9a6b-6a5d5f7c1b2e"
    lines = (
        f"START RequestId: {request_id} Version: $LATEST",
        f"END RequestId: {request_id}",
        f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
        f"Billed Duration: {math.ceil(duration_ms)} ms\tMemory Size: {memory_mb} MB\tMax Memory Used: 120 MB\t\n"
        "XRAY TraceId: 1-5e1b4151-43a974f4ad0ea6ee4a8b1ef7\tSegmentId: 0f5c3a8b9e2d4c1a\tSampled: true",
    )
    return sum(len(line.encode()) + 1 for line in lines)
