"""The results as plain-text tables: exactly what results.json holds, for a terminal."""

from __future__ import annotations

from typing import Any


def render(results: dict[str, Any]) -> str:
    sections = [
        _machine(results),
        _latency(results["latency"]),
        _steps(results["steps"]),
        _calls(results["aws_calls"]),
        _cost(results["cost"]),
        _cold_start(results["cold_start"]),
        _chaos(results["chaos"]),
        _targets(results["targets"]),
    ]
    return "\n\n".join(sections)


def table(rows: list[list[str]], right: frozenset[int] = frozenset()) -> str:
    """Columns padded to width; the columns in `right` (numbers) aligned right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]

    def line(row: list[str]) -> str:
        cells = (
            cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        return "  ".join(cells).rstrip()

    return "\n".join([line(rows[0]), "  ".join("-" * w for w in widths), *(line(row) for row in rows[1:])])


def _n(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _machine(results: dict[str, Any]) -> str:
    m, run = results["machine"], results["run"]
    return (
        f"Payment workflow benchmark, local stack — {m['cpu']}, {m['cores']} cores, Python {m['python']}, "
        f"{m['platform']}\nrun {run['started_at']}, {run['duration_seconds']} s, arguments {run['arguments']}"
    )


def _latency(latency: dict[str, Any]) -> str:
    rows = [["concurrency", "payments", "approved", "p50 ms", "p95 ms", "p99 ms", "service p50", "p95", "p99"]]
    rows[0].append("payments/s")
    for run in latency["runs"]:
        client, service = run["client_ms"], run["service_ms"]
        rows.append(
            [
                str(run["concurrency"]),
                str(run["payments"]),
                str(run["approved"]),
                *(_n(client[key]) for key in ("p50", "p95", "p99")),
                *(_n(service[key]) for key in ("p50", "p95", "p99")),
                _n(run["throughput_per_second"], 2),
            ]
        )
    failures = [
        f"  c={run['concurrency']}: {f['count']} x {f['error']}" for run in latency["runs"] for f in run["failures"]
    ]
    return "\n".join(
        [
            "1. End-to-end latency of approved payments, Converge sandbox at "
            f"+{latency['converge_added_latency_ms']} ms",
            table(rows, right=frozenset(range(10))),
            f"ms = client: {latency['client_ms']}; service: {latency['service_ms']}.",
            *(["failed payments:", *failures] if failures else []),
        ]
    )


def _steps(section: dict[str, Any]) -> str:
    runs = section["runs"]
    header = ["state", "function"]
    for run in runs:
        header += [f"c={run['concurrency']} state ms", f"c={run['concurrency']} handler ms"]
    names = list(dict.fromkeys(state["state"] for run in runs for state in run["states"]))
    rows = [header]
    for name in names:
        found = [next((s for s in run["states"] if s["state"] == name), None) for run in runs]
        function = next((s["function"] for s in found if s and s["function"]), None)
        row = [name, function or "-"]
        for state in found:
            row += [_n(state and state["median_ms"]), _n(state and state["handler_median_ms"])]
        rows.append(row)
    extra = {
        "before_first_event_median_ms": "(StartExecution accepted -> first event)",
        "between_states_median_ms": "(between states)",
        "execution_median_ms": "(execution: first to last event)",
    }
    for key, label in extra.items():
        rows.append([label, "-", *(cell for run in runs for cell in (_n(run[key]), ""))])
    return "\n".join(
        [
            "2. Median time per state, from the execution histories (entered to exited); handler = the invoke alone "
            "(the handler in its worker process, and the round trip to it)",
            table(rows, right=frozenset(range(2, len(header)))),
        ]
    )


def _calls(section: dict[str, Any]) -> str:
    measured = section["measured_over"]
    rows = [["service", "operation", "calls", "per payment"]]
    rows += [[c["service"], c["operation"], str(c["calls"]), _n(c["per_payment"], 2)] for c in section["calls"]]
    purposes = ", ".join(
        f"{p['operation']} {p['purpose']} {p['per_payment']:.2f} (most in one payment {p['most_in_one_payment']}, "
        f"floor {p['floor']})"
        for p in section["kms_by_purpose"]
    )
    dynamodb = section["dynamodb"]
    invocations = ", ".join(f"{name} {n:g}" for name, n in section["lambda_invocations_per_payment"].items())
    http = ", ".join(f"{service} {n:g}" for service, n in section["http_requests_per_payment"].items())
    concurrent = "; ".join(
        f"c={run['concurrency']}: " + ", ".join(f"{s} {n:g}" for s, n in run["by_service_per_payment"].items())
        for run in section["concurrent_runs"]
    )
    return "\n".join(
        [
            f"3. AWS calls per payment (every request at the stack's endpoint, from any process, but the bench's own; "
            f"{measured['payments']} payments at concurrency {measured['concurrency']}, after warm-up)",
            table(rows, right=frozenset({2, 3})),
            f"KMS per payment: {section['kms_requests_per_payment']:.2f}, floor {section['kms_floor_per_payment']} "
            f"({purposes})",
            f"DynamoDB per payment: {dynamodb['writes_per_payment']:g} writes = "
            f"{dynamodb['write_request_units_per_payment']:g} WRU, {dynamodb['reads_per_payment']:g} reads = "
            f"{dynamodb['read_request_units_per_payment']:g} RRU; "
            + "; ".join(
                f"{t['table']} {t['writes_per_payment']:g} writes = {t['write_request_units_per_payment']:g} WRU"
                + (
                    f" (PutItem items {t['mean_item_bytes']} bytes on average)"
                    if t["mean_item_bytes"] is not None
                    else ""
                )
                for t in dynamodb["writes_by_table"]
            ),
            f"Lambda invocations per payment: {invocations}",
            f"Step Functions state transitions per payment: {section['state_transitions_per_payment']}",
            f"HTTP requests per payment (retries included): {http}; "
            f"the bench's own requests, not counted: {section['excluded_bench_requests']}",
            *([f"same, per service, concurrent: {concurrent}"] if concurrent else []),
        ]
    )


def _cost(section: dict[str, Any]) -> str:
    rows = [["line", "per payment", "unit", "unit USD", "Standard $/M", "Express $/M"]]
    for line in section["lines"]:
        rows.append(
            [
                line["line"] + ("" if line["price_status"] == "verified" else f" [{line['price_status']}]"),
                f"{line['quantity_per_payment']:.4g}",
                line["unit"],
                f"{line['unit_usd']:.4g}",
                _n(line["standard_usd_per_million"], 2),
                _n(line["express_usd_per_million"], 2),
            ]
        )
    standard, express = section["standard"], section["express"]
    rows.append(["total", "", "", "", _n(standard["usd_per_million"], 2), _n(express["usd_per_million"], 2)])
    logs = section["log_bytes_per_payment"]
    return "\n".join(
        [
            f"4. Cost per million approved payments on AWS ({section['region']}; Lambda arm64 at "
            f"{section['lambda_memory_mb']} MB from cdk.json '{section['memory_env']}'; prices {section['prices']})",
            table(rows, right=frozenset({1, 3, 4, 5})),
            f"dominant line: Standard — {standard['dominant_line']} ({_share(standard)}); "
            f"Express — {express['dominant_line']} ({_share(express)})",
            "billed ms per invocation (mean, each rounded up to 1 ms): "
            + ", ".join(f"{name} {ms:g}" for name, ms in section["lambda_billed_ms"].items()),
            f"log bytes per payment: handlers {logs['handlers']}, Lambda platform lines {logs['lambda_platform']}, "
            f"Step Functions execution log {logs['step_functions_execution_log']}; "
            f"Express billed duration {section['express_billed_seconds_per_execution']} s per execution",
        ]
    )


def _share(total: dict[str, Any]) -> str:
    return "-" if total["dominant_share"] is None else f"{total['dominant_share']:.0%} of the total"


def _cold_start(section: dict[str, Any]) -> str:
    functions = section["functions"]
    # bench/coldstart.py may also time the import with its SnapStart warm-ups and with tracing on.
    extra = [
        (key, label)
        for key, label in (("warm_import_ms", "warm-ups ms"), ("traced_import_ms", "traced ms"))
        if functions and all(key in f for f in functions)
    ]
    rows = [["module", "import ms", "x boto3", *(label for _, label in extra), "package KB", "zip KB", "files"]]
    rows.append(["boto3 (bare)", _n(section["boto3_import_ms"]), "1.00", *("" for _ in extra), "", "", ""])
    for f in functions:
        rows.append(
            [
                f["module"],
                _n(f["import_ms"]),
                f"{f['ratio_to_boto3']:.2f}",
                *(_n(f[key]) for key, _ in extra),
                _n(f["package_bytes"] / 1024),
                _n(f["package_zip_bytes"] / 1024),
                str(f["package_files"]),
            ]
        )
    heaviest = ", ".join(f"{p['package']} {p['self_ms']:g}" for p in section["heaviest_imports_call_processor"])
    compiled = "with its bytecode" if section.get("precompiled") else "not precompiled"
    return "\n".join(
        [
            f"5. Cold start: median of {section['repeats']} fresh processes per module (sys.path as on Lambda: "
            f"the function's package, then the layer's site-packages; package {compiled})",
            table(rows, right=frozenset(range(1, len(rows[0])))),
            f"heaviest imports of call_processor (own ms, one -X importtime run): {heaviest}",
        ]
    )


def _chaos(section: dict[str, Any]) -> str:
    heading = "6. Chaos run (python -m local.chaos in a subprocess, after the latency levels' stack stopped)"
    if not section["ran"]:
        return f"{heading}\nnot run (--chaos-payments 0)"
    invariants = section["invariants"]
    lines = [
        heading,
        f"{section['command']}: {section['wall_seconds']} s wall (the run's own {section['run_seconds']} s), "
        f"exit {section['exit_code']}" + (" (timed out)" if section["timed_out"] else ""),
        f"invariants: {invariants['passed']} passed, {len(invariants['failed'])} failed, "
        f"{len(invariants['skipped'])} skipped; "
        + ("every invariant held" if section["invariants_hold"] else "NOT every invariant held"),
        *(f"  FAIL {name}" for name in invariants["failed"]),
    ]
    if section["output_tail"]:
        lines += ["output (tail):", *(f"  {line}" for line in section["output_tail"].splitlines()[-15:])]
    return "\n".join(lines)


def _targets(rows: list[dict[str, Any]]) -> str:
    lines = ["Targets (reported; the bench does not fail on them)"]
    lines += [f"  [{'met' if row['met'] else 'MISSED'}] {row['target']}: {row['measured']}" for row in rows]
    return "\n".join(lines)
