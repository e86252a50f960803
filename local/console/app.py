"""The console's web application (Flask, server-rendered): the payments list, one payment's page and the
latest reconciliation report. Read-only, loopback only, and under a Content-Security-Policy that lets a
page load nothing but the console's own style sheets: no script, no frame, no form sent elsewhere.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path
from typing import Any

from flask import Flask, abort, redirect, render_template, request
from markupsafe import Markup
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers.response import Response

from local.console import views
from local.console.graph import state_graph
from local.console.timeline import timeline_bars
from local.reconciliation import LABELS as RECONCILIATION_LABELS
from local.stack import CONSOLE_PATH, StackInfo
from payments import ledger

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_HERE = Path(__file__).parent
_EXECUTION_STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
_LEDGER_STATUSES = (
    ledger.INITIATED,
    ledger.PENDING,
    ledger.AUTHORIZED,
    ledger.SUCCESS,
    ledger.DECLINED,
    ledger.FAILED,
    ledger.REVERSING,
    ledger.REVERSED,
)
ATTENTION = "attention"
STATUS_FILTERS = ("", ATTENTION, *_LEDGER_STATUSES, *_EXECUTION_STATUSES)
_MAX_SEARCH = 128


def create_app(info: StackInfo) -> Flask:
    app = Flask(
        __name__,
        static_folder=str(_HERE / "static"),
        static_url_path=f"{CONSOLE_PATH}/static",
        template_folder=str(_HERE / "templates"),
    )
    events = views.EventLog()

    @app.before_request
    def loopback_and_read_only() -> None:
        if not _is_loopback(request.remote_addr):
            abort(403, "The console answers on loopback only.")
        if request.method not in ("GET", "HEAD"):
            abort(405, "The console is read-only.")

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.errorhandler(HTTPException)
    def error_page(error: HTTPException) -> tuple[str, int]:
        return render_template("error.html", code=error.code, message=error.description), error.code or 500

    @app.get(CONSOLE_PATH)
    def root() -> Response:
        return redirect(f"{CONSOLE_PATH}/payments")

    @app.get(f"{CONSOLE_PATH}/")
    def root_slash() -> Response:
        return root()

    @app.get(f"{CONSOLE_PATH}/payments")
    def payments() -> str:
        status = request.args.get("status", "")
        search = request.args.get("q", "").strip()
        if status not in STATUS_FILTERS:
            abort(400, "status: not a status the console filters by.")
        if len(search) > _MAX_SEARCH:
            abort(400, f"q: a search is at most {_MAX_SEARCH} characters.")
        now = _now()
        rows = views.payment_rows(info, now)
        every = len(rows)
        if status == ATTENTION:
            rows = [row for row in rows if row.attention]
        elif status:
            rows = [row for row in rows if row.status == status]
        if search:
            rows = [row for row in rows if search.casefold() in row.transaction_id.casefold()]
        return render_template(
            "payments.html",
            rows=rows,
            every=every,
            now=now,
            status=status,
            search=search,
            filters=STATUS_FILTERS[1:],
            attention_filter=ATTENTION,
        )

    @app.get(f"{CONSOLE_PATH}/payments/<transaction_id>")
    def payment(transaction_id: str) -> str:
        if len(transaction_id) > _MAX_SEARCH:
            abort(404, "No payment has this TransactionID.")
        now = _now()
        page = views.payment_page(info, transaction_id, events, now)
        if page is None:
            abort(404, "No payment has this TransactionID.")
        return render_template(
            "payment.html",
            page=page,
            trace=page.trace,
            now=now,
            graph=_graph(page.payment_run),
            bars=timeline_bars(page.payment_run.runs, page.payment_run.description),
            operation_graphs={op_id: _graph(run) for op_id, run in page.operation_runs.items()},
            operation_bars={
                op_id: timeline_bars(run.runs, run.description) for op_id, run in page.operation_runs.items()
            },
        )

    @app.get(f"{CONSOLE_PATH}/reconciliation")
    def reconciliation() -> str:
        found = views.latest_report(info)
        key, report = found if found else (None, None)
        return render_template(
            "reconciliation.html", key=key, report=report, labels=RECONCILIATION_LABELS, bucket=info.report_bucket
        )

    app.jinja_env.filters["clock"] = _clock
    app.jinja_env.globals["console_path"] = CONSOLE_PATH
    return app


def _graph(run: views.WorkflowRun) -> Markup | None:
    if run.definition is None:
        return None
    return state_graph(run.definition, run.runs, (run.description or {}).get("status"))


def _is_loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _clock(value: Any) -> str:
    """A time as the console shows it: UTC, to the millisecond."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if not isinstance(value, dt.datetime):
        return ""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"
