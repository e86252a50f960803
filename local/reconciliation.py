"""`python -m local reconcile --date YYYY-MM-DD`: one run of the reconciliation workflow, and its report, readable.

The summary names each mismatch by TransactionID (or OperationID) and the processor's transaction id,
with what each side holds: never card data (the report holds none).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

from local.stack import StackInfo
from payments import reconciliation, reconciliation_run
from upstream.client import wait_for_payment


def run_reconciliation(
    info: StackInfo,
    request: dict[str, Any] | None = None,
    timeout_seconds: float = 900,
    *,
    provisional_if_not_over: bool = True,
) -> dict[str, Any]:
    """Start one reconciliation run (as the daily schedule does, or for a given Date) and return its
    output: the summary, with the execution's ARN and status.

    Locally the day reconciled is often today's (a test's payments, a chaos run's): a Date whose day (and
    margin) has not ended is asked for with "Provisional": true, unless `provisional_if_not_over` is False,
    and its report is the run's own copy only. The workflow refuses such a day without it."""
    sfn = info.client("stepfunctions")
    request = dict(request or {})
    day = request.get("Date", "yesterday")
    if provisional_if_not_over and isinstance(day, str) and "Provisional" not in request:
        now = dt.datetime.now(dt.UTC)
        try:
            # "yesterday" too: in the margin just after midnight, yesterday has not ended either.
            date = now.date() - dt.timedelta(days=1) if day == "yesterday" else dt.date.fromisoformat(day)
            over = reconciliation_run.day_is_over(date, now)
        except ValueError:  # not a date: the workflow says why
            over = True
        if not over:
            request["Provisional"] = True
    started = sfn.start_execution(
        stateMachineArn=info.reconciliation_state_machine_arn,
        name=f"reconcile-{day}-{uuid.uuid4().hex[:12]}",
        input=json.dumps(request),
    )
    description = wait_for_payment(sfn, started["executionArn"], timeout_seconds=timeout_seconds)
    if description["status"] != "SUCCEEDED":
        raise RuntimeError(
            f"the reconciliation run ended {description['status']}: {description.get('error', '')} "
            f"{description.get('cause', '')}".rstrip()
        )
    output: dict[str, Any] = json.loads(description["output"])
    output["ExecutionArn"] = started["executionArn"]
    return output


def stored_report(info: StackInfo, output: dict[str, Any]) -> dict[str, Any]:
    """The run's whole report, from the report bucket (the output carries its first findings only)."""
    key = output["ReportKeys"][-1]  # the run's own copy: the day's may be a later run's by now (or none)
    body = info.client("s3").get_object(Bucket=info.report_bucket, Key=key)["Body"].read()
    report: dict[str, Any] = json.loads(body)
    return report


def save_report(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")


def clean(report: dict[str, Any]) -> bool:
    """Every window listed in full and no mismatch: what the command's exit status 0 means."""
    return bool(report["Complete"]) and report["Mismatches"] == 0


LABELS = {
    reconciliation.MATCHED: "matched",
    reconciliation.MISSING_IN_LEDGER: "missing in the ledger",
    reconciliation.MISSING_AT_PROCESSOR: "missing at the processor",
    reconciliation.AMOUNT_MISMATCH: "amount mismatch",
    reconciliation.STATUS_MISMATCH: "status mismatch",
    reconciliation.SETTLED: "settled (not a mismatch)",
    reconciliation.DECLINED_AT_PROCESSOR: "declined at the processor (not money)",
}


def summary_lines(report: dict[str, Any], location: str = "") -> list[str]:
    counts = report["Counts"]
    complete = "every window listed in full" if report["Complete"] else "INCOMPLETE listing"
    lines = [
        f"Reconciliation of {report['Date']} against {report['ProcessorID']}: {report['Listed']} transactions "
        f"listed ({report['Windows']} windows, {report['Pages']} pages, {complete})",
    ]
    if report.get("Provisional"):
        lines.append("  PROVISIONAL: listed before the day (and its margin) had ended; not stored as the day's report")
    lines += [f"  {LABELS[category]:<40} {counts.get(category, 0):>6}" for category in reconciliation.COUNTED]
    lines.append(f"  {'matched, not yet settled (no fact yet)':<40} {report.get('NotYetSettled', 0):>6}")
    written = sum(1 for s in report["Settled"] if s["Recorded"] == "WRITTEN")
    lines.append(
        f"  PAYMENT-SETTLED facts: {written} written now, {len(report['Settled']) - written} recorded by an earlier run"
    )
    for window in report["IncompleteWindows"]:
        lines.append(f"  INCOMPLETE window {window['Start']} to {window['End']}: {window['Reason']}")
    if report["Findings"]:
        lines.append("")
        lines.append(f"Mismatches ({report['Mismatches']})")
        rows = [["category", "TransactionID / OperationID", "processor txn id", "ledger", "processor", "why"]]
        for finding in report["Findings"]:
            rows.append(
                [
                    finding["Category"],
                    _who(finding),
                    finding["ProcessorTransactionID"] or "-",
                    _side(finding["LedgerStatus"], finding["LedgerAmount"], finding["Currency"]),
                    _side(finding["ProcessorKind"], finding["ProcessorAmount"], finding["Currency"]),
                    finding["Detail"],
                ]
            )
        lines += _table(rows)
    else:
        lines.append("No mismatches.")
    if location:
        lines.append(f"Report: {location}")
    return lines


def _who(finding: dict[str, Any]) -> str:
    if finding["TransactionID"]:
        return finding["TransactionID"] + (f" / {finding['OperationID']}" if finding["OperationID"] else "")
    return f"(ref {finding['Reference'] or '-'})"


def _side(what: str | None, amount: str | None, currency: str) -> str:
    if what is None:
        return "-"
    return f"{what} {amount} {currency}" if amount is not None else what


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    lines.insert(1, "  " + "  ".join("-" * width for width in widths))
    return lines
