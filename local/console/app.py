"""The console's web application (Flask, server-rendered): the payments list, one payment's page and the
latest reconciliation report. Read-only, loopback only, and under a Content-Security-Policy that lets a
page load nothing but the console's own style sheets: no script, no frame, no form sent elsewhere.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask, abort, redirect, render_template, request
from markupsafe import Markup
from werkzeug.exceptions import HTTPException, SecurityError
from werkzeug.wrappers.response import Response

from local.console import views
from local.console.graph import state_graph
from local.console.timeline import timeline_bars
from local.reconciliation import LABELS as RECONCILIATION_LABELS
from local.stack import CONSOLE_PATH, StackInfo
from payments import ledger
from payments.cards import identifier_contains_card_number

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
_MAX_ROWS = 500  # the newest shown; a search or a filter narrows the rest


def create_app(
    info: StackInfo,
    caught_up: Callable[[float], bool] | None = None,
    changes: Callable[[], object] | None = None,
) -> Flask:
    """The console of the stack `info` describes; `caught_up(timeout)` says whether every ledger entry
    written so far has had its event delivered (LocalStack.events_caught_up), `changes()` changes
    whenever the payments list may have (LocalStack.changes)."""
    app = Flask(
        __name__,
        static_folder=str(_HERE / "static"),
        static_url_path=f"{CONSOLE_PATH}/static",
        template_folder=str(_HERE / "templates"),
    )
    events = app.extensions["payments_console_events"] = views.EventLog(caught_up)
    listing = views.RecentRows(info, changes)
    # Loopback by name too: a page elsewhere that rebinds its own host name to 127.0.0.1 (DNS rebinding)
    # reaches the console with that name in Host, and is refused.
    app.config["TRUSTED_HOSTS"] = ["localhost", "127.0.0.1"]  # the stack serves IPv4 loopback

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
        message = error.description
        if isinstance(error, SecurityError):  # werkzeug's own message quotes the Host header
            message = "Host: the console answers to this machine's loopback names only."
        return render_template("error.html", code=error.code, message=message), error.code or 500

    @app.get(CONSOLE_PATH)
    @app.get(f"{CONSOLE_PATH}/")
    def root() -> Response:
        return redirect(f"{CONSOLE_PATH}/payments")

    @app.get(f"{CONSOLE_PATH}/payments")
    def payments() -> str:
        status = request.args.get("status", "")
        search = request.args.get("q", "").strip()
        if status not in STATUS_FILTERS:
            abort(400, "status: not a status the console filters by.")
        if len(search) > _MAX_SEARCH:
            abort(400, f"q: a search is at most {_MAX_SEARCH} characters.")
        now = _now()
        rows = listing.rows(now)
        every = len(rows)
        if status == ATTENTION:
            rows = [row for row in rows if row.attention]
        elif status:
            rows = [row for row in rows if row.status == status]
        if search:
            rows = [row for row in rows if search.casefold() in row.transaction_id.casefold()]
        return render_template(
            "payments.html",
            rows=rows[:_MAX_ROWS],
            matching=len(rows),
            every=every,
            now=now,
            status=status,
            search=search,
            filters=STATUS_FILTERS[1:],
            attention_filter=ATTENTION,
        )

    @app.get(f"{CONSOLE_PATH}/payments/<path:transaction_id>")
    def payment(transaction_id: str) -> str:
        if len(transaction_id) > _MAX_SEARCH:
            abort(404, "No payment has this TransactionID.")
        if identifier_contains_card_number(transaction_id):
            abort(400, "TransactionID: holds a card number; the console shows no page of it.")
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
            bars=timeline_bars(page.payment_run.runs, page.payment_run.description, now),
            operation_graphs={op_id: _graph(run) for op_id, run in page.operation_runs.items()},
            operation_bars={
                op_id: timeline_bars(run.runs, run.description, now) for op_id, run in page.operation_runs.items()
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
