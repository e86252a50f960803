"""`python -m local serve | pay | capture | void | refund | settle | trace | events | sync | reconcile | demo |
verify-ledger`: the local stack from a terminal."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import boto3
from botocore.exceptions import ClientError

from local import operations, payment_requests, reconciliation, status_sync, verify_ledger
from local.operations import PaymentTrace, StateRun
from local.sandbox import follow_ons_of
from local.stack import CAUGHT_UP_PATH, EVENTS_QUEUE, LocalStack, StackInfo, ask_stack, take_events
from payments.cards import identifier_contains_card_number
from upstream import client
from upstream.client import PaymentRefused

# Printed through this handle (taken when main starts, so that tests capturing stdout see it).
_out: TextIO = sys.stdout


def main(argv: Sequence[str] | None = None) -> int:
    global _out
    _out = sys.stdout
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the stack as one AWS endpoint on loopback")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=4566)
    serve.add_argument("--ready-file", type=Path, help="write the stack's coordinates here as JSON once ready")

    pay = commands.add_parser("pay", help="run one payment and show its response and trace")
    pay.add_argument("--amount", required=True, help='a decimal string, e.g. "25.00"')
    pay.add_argument("--currency", default="USD")
    pay.add_argument("--card", required=True, help="card number (a sandbox test card)")
    pay.add_argument("--expiry", required=True, help="MM/YY")
    pay.add_argument("--cvv", required=True)
    pay.add_argument("--holder", default="Ada Lovelace")
    pay.add_argument("--transaction-id", default=None)
    pay.add_argument(
        "--capture",
        choices=("automatic", "manual"),
        default=None,
        help="manual: authorize only, for a later `capture` (default: automatic, a sale)",
    )
    pay.add_argument("--endpoint", default=None, help="a running `serve`; without it the stack runs in process")

    on_a_served_stack = "a running `serve` (required: the payment must be in its ledger)"
    capture = commands.add_parser(
        "capture", help="capture an authorized payment (Capture manual), in full or --amount of it; show its trace"
    )
    capture.add_argument("transaction_id", type=_identifier)
    capture.add_argument("--amount", default=None, help='a decimal string, e.g. "50.00" (default: all authorized)')
    void = commands.add_parser("void", help="void a payment before its batch settles; show its trace")
    void.add_argument("transaction_id", type=_identifier)
    refund = commands.add_parser(
        "refund", help="refund a settled payment, --amount of it or all that is left (see `settle`); show its trace"
    )
    refund.add_argument("transaction_id", type=_identifier)
    refund.add_argument("--amount", default=None, help='a decimal string, e.g. "30.00" (default: all that is left)')
    refund.add_argument("--reason", default=None, help="free text, at most 255 characters, never a card number")
    for operation in (capture, void, refund):
        operation.add_argument(
            "--operation-id",
            type=_identifier,
            default=None,
            help="the operation's idempotency key and execution name (default: a new one); the same "
            "request again is answered by the same execution",
        )
        operation.add_argument("--endpoint", required=True, help=on_a_served_stack)

    settle = commands.add_parser(
        "settle",
        help="close the Converge sandbox's open batch, as its daily settlement does: settled payments can be "
        "refunded, no longer voided",
    )
    settle.add_argument("--endpoint", required=True, help="a running `serve`")

    trace = commands.add_parser(
        "trace", help="show a payment's whole history: its execution and its operations', ledger, audit metadata"
    )
    trace.add_argument("transaction_id")
    trace.add_argument("--endpoint", required=True)

    events = commands.add_parser(
        "events",
        help="print the ledger events the payments bus delivered to the stack's queue, one line each, taking "
        "them off the queue (once every ledger entry written so far has been delivered)",
    )
    events.add_argument("--follow", action="store_true", help="keep printing events as they arrive, until Ctrl-C")
    events.add_argument("--endpoint", required=True, help="a running `serve`")

    sync = commands.add_parser(
        "sync",
        help="run status sync once: resolve payments and operations that ended with their outcome unknown or are "
        "pending past the deadline, against Converge; exit 0 when nothing is left unresolved",
    )
    sync.add_argument("--endpoint", default=None, help="a running `serve`; without it the stack runs in process")
    sync.add_argument(
        "--pending-deadline-seconds",
        type=int,
        default=None,
        help="how long a payment may stay pending before sync looks at it (default: 65 minutes)",
    )
    sync.add_argument("--lookback-hours", type=int, default=None, help="how far back to look (default: 48)")

    reconcile = commands.add_parser(
        "reconcile",
        help="run the daily reconciliation against Converge for one day and print its report; exit 0 only when "
        "every transaction matched and every window was listed in full",
    )
    reconcile.add_argument("--date", default=None, help="the day, YYYY-MM-DD, UTC (default: yesterday)")
    reconcile.add_argument("--window-minutes", type=int, default=None, help="listing window length (default: 60)")
    reconcile.add_argument("--report-file", type=Path, default=None, help="also save the whole report here, as JSON")
    reconcile.add_argument("--endpoint", default=None, help="a running `serve`; without it the stack runs in process")

    demo = commands.add_parser(
        "demo", help="run the fixed demo scenarios (payments, then a capture, a void and refunds) and print them"
    )
    demo.add_argument("--endpoint", default=None)

    verify = commands.add_parser(
        "verify-ledger",
        help="recompute the ledger's and the audit trail's hash chains; exit 1 if an entry was changed, "
        "removed or inserted",
    )
    verify.add_argument("--endpoint", default=None, help="a running `serve`; without it, AWS (default credentials)")
    verify.add_argument("--ledger-table", help="the ledger table's name (the stack's LedgerTable output)")
    verify.add_argument("--audit-table", help="the audit table's name (the stack's AuditTable output)")
    verify.add_argument("--region", default=None, help="AWS region of the tables (default: boto3's)")
    verify.add_argument(
        "--transaction-id", dest="transaction_ids", action="append", default=[], help="only this payment (repeatable)"
    )

    args = parser.parse_args(argv)
    if args.command == "verify-ledger":
        if not args.endpoint and not (args.ledger_table and args.audit_table):
            parser.error("verify-ledger needs --endpoint, or --ledger-table and --audit-table")
        return run_verify_ledger(args)
    if args.command == "serve":
        return serve_forever(args.host, args.port, args.ready_file)
    if args.command == "trace":
        print_trace(operations.trace_payment(operations.discover(args.endpoint), args.transaction_id))
        return 0
    if args.command in OPERATIONS:
        return run_operation(operations.discover(args.endpoint), args)
    if args.command == "settle":
        return run_settle(operations.discover(args.endpoint))
    if args.command == "events":
        return run_events(operations.discover(args.endpoint), args.follow)
    with stack_for(args.endpoint) as info:
        if args.command == "pay":
            return run_pay(info, args)
        if args.command == "sync":
            return run_sync(info, args)
        if args.command == "reconcile":
            return run_reconcile(info, args)
        return run_demo(info, in_process=args.endpoint is None)


def say(text: str = "") -> None:
    _out.write(text + "\n")
    _out.flush()


@contextmanager
def stack_for(endpoint: str | None) -> Iterator[StackInfo]:
    if endpoint:
        yield operations.discover(endpoint)
        return
    with LocalStack() as stack:
        assert stack.info is not None
        yield stack.info


def run_sync(info: StackInfo, args: argparse.Namespace) -> int:
    request = {
        name: value
        for name, value in (
            ("PendingDeadlineSeconds", args.pending_deadline_seconds),
            ("LookbackHours", args.lookback_hours),
        )
        if value is not None
    }
    output = status_sync.run_status_sync(info, request)
    for line in status_sync.summary_lines(output):
        say(line)
    return 1 if status_sync.left_unresolved(output) or output.get("More") else 0


def run_reconcile(info: StackInfo, args: argparse.Namespace) -> int:
    request = {
        name: value
        for name, value in (("Date", args.date), ("WindowMinutes", args.window_minutes))
        if value is not None
    }
    try:
        output = reconciliation.run_reconciliation(info, request)
    except RuntimeError as failed:
        say(str(failed))
        return 1
    report = reconciliation.stored_report(info, output)
    location = f"s3://{info.report_bucket}/{output['ReportKeys'][0]}"
    if args.report_file is not None:
        reconciliation.save_report(report, args.report_file)
        location += f" (saved to {args.report_file})"
    for line in reconciliation.summary_lines(report, location):
        say(line)
    return 0 if reconciliation.clean(report) else 1


def run_verify_ledger(args: argparse.Namespace) -> int:
    if args.endpoint:
        info = operations.discover(args.endpoint)
        dynamodb = info.client("dynamodb")
        tables = verify_ledger.Tables(args.ledger_table or info.ledger_table, args.audit_table or info.audit_table)
    else:
        dynamodb = boto3.client("dynamodb", region_name=args.region)
        tables = verify_ledger.Tables(args.ledger_table, args.audit_table)
    verification = verify_ledger.verify_tables(dynamodb, tables, args.transaction_ids)
    for line in verify_ledger.report_lines(verification):
        say(line)
    return 0 if verification.clean else 1


def serve_forever(host: str, port: int, ready_file: Path | None) -> int:
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    with LocalStack(host=host, port=port, echo_function_logs=True) as stack:
        info = stack.info
        assert info is not None
        if ready_file is not None:
            ready_file.write_text(info.to_json())
        say(f"Local payment stack ready on {info.endpoint_url} (region {info.region})")
        say(f"  console       : {info.console_url} (read-only: payments, their workflows, reconciliation)")
        say(f"  state machine : {info.state_machine_arn}")
        say(f"  operations    : {info.capture_state_machine_arn} (capture, void, refund)")
        say(f"  tables        : {info.ledger_table}, {info.audit_table}")
        say(f"  KMS keys      : card data {info.kms_key_arn}, audit {info.audit_kms_key_arn}")
        say(f"  Converge      : {info.converge_url}")
        say("Use it with any AWS client, for example:")
        say(
            f"  aws --endpoint-url {info.endpoint_url} --region {info.region} stepfunctions list-executions "
            f"--state-machine-arn {info.state_machine_arn}"
        )
        # No card number here: the stack's output is scanned for PANs, test cards included.
        say(
            f"  python -m local pay --endpoint {info.endpoint_url} --amount 25.00 --card <a test card from the README> "
            "--expiry 12/30 --cvv 123"
        )
        say(
            f"  python -m local capture|void|refund <TransactionID> --endpoint {info.endpoint_url}, "
            f"then python -m local trace <TransactionID> --endpoint {info.endpoint_url}"
        )
        say(
            f"  python -m local events [--follow] --endpoint {info.endpoint_url}: the ledger events of bus "
            f"{info.event_bus_name!r}, from queue {EVENTS_QUEUE}"
        )
        say(
            f"  python -m local reconcile [--date YYYY-MM-DD] --endpoint {info.endpoint_url}: the day against "
            f"Converge, report in s3://{info.report_bucket}/"
        )
        say("Ctrl-C stops it.")
        stopping.wait()
        say("Stopping.")
    return 0


def run_events(info: StackInfo, follow: bool) -> int:
    """Prints the events on the queue, one line each, taking each off it once printed. First waits until
    the stack's stream pump has delivered every ledger entry written so far; --follow then goes on."""
    if events_caught_up(info.endpoint_url) is False:
        say("(LedgerEvents has not caught up with the ledger within 30 s: the latest entries' events may follow)")
    printed = 0
    for event in take_events(info):
        say(event_line(event))
        printed += 1
    if not follow:
        if not printed:
            say("No events on the queue.")
        return 0
    try:
        while True:
            for event in take_events(info, wait_seconds=2):
                say(event_line(event))
    except KeyboardInterrupt:
        return 0


def events_caught_up(endpoint_url: str, timeout: float = 30.0) -> bool | None:
    """Whether the served stack's stream pump caught up within `timeout` (None: the stack cannot say)."""
    return ask_stack(endpoint_url, CAUGHT_UP_PATH, {}, timeout)


def event_line(event: dict[str, Any]) -> str:
    """One event: when, its type, EventID, Status, amount, and what else names it (operation, reason, card)."""
    detail = event.get("detail") or {}
    cells = [
        str(detail.get("OccurredAt", event.get("time", ""))),
        f"{event.get('detail-type', '?'):<17}",
        str(detail.get("EventID", "?")),
        str(detail.get("Status", "?")),
        f"{detail.get('Amount', '')} {detail.get('Currency', '')}".strip(),
    ]
    if detail.get("OperationID"):
        cells.append(f"{detail.get('Operation', 'operation')} {detail['OperationID']}")
    if detail.get("Reason"):
        cells.append(f"reason {detail['Reason'].get('Code', '')}")
    if detail.get("Card"):
        cells.append(f"card {detail['Card'].get('Brand', '')} {detail['Card'].get('Last4', '')}")
    return "  ".join(cells)


def payment_request(args: argparse.Namespace) -> dict[str, Any]:
    """The request `pay` sends: what was typed goes in as typed, and Tokenize judges it."""
    month, _, year = args.expiry.partition("/")
    request = payment_requests.card_request(
        args.transaction_id or payment_requests.new_transaction_id("pay"),
        number=args.card,
        amount=args.amount,
        currency=args.currency,
        cvv=args.cvv,
        holder_name=args.holder,
        description=None,
        capture=args.capture,
    )
    request["PaymentMethod"]["ExpiryMonth"] = int(month) if month.isdigit() else month
    request["PaymentMethod"]["ExpiryYear"] = (
        (2000 + int(year) if len(year) == 2 else int(year)) if year.isdigit() else year
    )
    return request


def run_pay(info: StackInfo, args: argparse.Namespace) -> int:
    request = payment_request(args)
    try:
        arn = operations.start_payment(info, request)
    except PaymentRefused as refusal:
        say(f"The intake refused the payment: {refusal.error_type} ({refusal.field or '-'}): {refusal.reason}")
        return 1
    description = operations.wait_for_execution(info, arn)
    say(f"Execution {description['status']}")
    if description["status"] == "SUCCEEDED":
        say(json.dumps(json.loads(description["output"]), indent=2))
    else:
        say(f"  error: {description.get('error')}")
        say(f"  cause: {description.get('cause')}")
    say()
    print_trace(operations.trace_payment(info, request["TransactionID"]))
    return 0 if description["status"] == "SUCCEEDED" else 1


OPERATIONS = ("capture", "void", "refund")


def _identifier(value: str) -> str:
    # Checked here too, so that a card number typed by mistake never reaches an execution's name or input.
    if identifier_contains_card_number(value):
        raise argparse.ArgumentTypeError("must not contain a card number")
    return value


def operation_request(args: argparse.Namespace) -> dict[str, Any]:
    """The operation's execution input, as typed: the operation workflow validates it."""
    request: dict[str, Any] = {
        "Operation": args.command,
        "OperationID": args.operation_id or payment_requests.new_transaction_id(args.command),
        "TransactionID": args.transaction_id,
    }
    if getattr(args, "amount", None) is not None:
        request["Amount"] = args.amount
    if getattr(args, "reason", None) is not None:
        request["Reason"] = args.reason
    return request


def operation_state_machine(info: StackInfo, kind: str) -> str:
    return {
        "capture": info.capture_state_machine_arn,
        "void": info.void_state_machine_arn,
        "refund": info.refund_state_machine_arn,
    }[kind]


def run_operation(info: StackInfo, args: argparse.Namespace) -> int:
    """capture, void or refund: start it (StartExecution named after its OperationID), wait, show the answer
    and the payment's trace. 0 only when the execution SUCCEEDED with a <KIND>-SUCCESS status."""
    request = operation_request(args)
    operation_id, transaction_id = request["OperationID"], request["TransactionID"]
    sfn = info.client("stepfunctions")
    succeeded = False
    try:
        started = client.start_operation(sfn, operation_state_machine(info, args.command), request)
    except client.DuplicateOperationID as refusal:
        say(f"OperationID {operation_id} refused: {refusal}")
    except client.InvalidOperation as invalid:
        say(f"The operation was refused before it started: {invalid.field} {invalid.reason}")
    except ClientError as error:
        say(f"StartExecution refused the operation: {error.response['Error']['Code']}: {error}")
    else:
        if started.already_started:
            say(f"OperationID {operation_id} was already started with this same request: its execution answers.")
        description = operations.wait_for_execution(info, started.execution_arn)
        say(f"Operation {operation_id} ({args.command} of {transaction_id}): execution {description['status']}")
        if description["status"] == "SUCCEEDED":
            response = json.loads(description["output"])
            say(json.dumps(response, indent=2))
            succeeded = str(response.get("Status", "")).endswith("-SUCCESS")
        else:
            say(f"  error: {description.get('error')}")
            say(f"  cause: {description.get('cause')}")
    say()
    print_trace(operations.trace_payment(info, transaction_id))
    return 0 if succeeded else 1


def run_settle(info: StackInfo) -> int:
    settled = operations.settle_sandbox(info)
    say(f"The Converge sandbox's batch is closed: {len(settled)} transaction(s) settled.")
    for txn_id in settled:
        say(f"  {txn_id}")
    say("Settled charges can now be refunded, and no longer voided.")
    return 0


def print_trace(trace: PaymentTrace) -> None:
    """The payment's execution, then each operation's, then the one ledger and every audit trail's metadata."""
    if trace.description is None:
        say(f"No execution named {trace.transaction_id}.")
    else:
        say(f"Execution {trace.transaction_id}: {trace.description['status']}")
        say(timeline_table(trace.runs))
    for operation in trace.operations:
        say()
        execution = operation.description["status"] if operation.description else "not found"
        amount = operation.entries[0]["Amount"] if operation.entries else "?"
        say(
            f"Operation {operation.operation_id} ({operation.operation} {amount}): execution {execution}, "
            f"{operation.status}"
        )
        if operation.runs:
            say(timeline_table(operation.runs))
    say()
    say(f"Ledger ({trace.ledger_trail})")
    rows = [["#", "Status", "Amount", "Card", "OperationID", "ProcessorTransactionID / reason", "CreatedAt"]]
    for entry in trace.ledger:
        card = f"{entry.get('CardBrand', '')} {entry.get('CardLast4', '')}".strip()
        detail = entry.get("ProcessorTransactionID") or ""
        if entry.get("ReasonCode"):
            detail = f"{entry['ReasonCode']}: {entry.get('ReasonMessage', '')}"
        rows.append(
            [
                str(entry["EntryNumber"]),
                entry["Status"],
                f"{entry['Amount']} {entry['Currency']}",
                card,
                entry.get("OperationID") or "",
                detail,
                entry["CreatedAt"],
            ]
        )
    say(table(rows))
    say()
    say("Audit records (metadata; payloads stay encrypted), the payment's trail, then each operation's")
    rows = [["Trail", "AuditID", "Operation", "Attempt", "Outcome", "ResultCode", "LatencyMs", "Actor"]]
    trails = [("payment", trace.audit)] + [(op.operation_id, op.audit) for op in trace.operations]
    for trail, records in trails:
        for record in records:
            rows.append(
                [
                    trail,
                    record["AuditID"],
                    record["Operation"],
                    str(record["Attempt"]),
                    record["Outcome"],
                    record["ResultCode"],
                    str(record["LatencyMs"]),
                    record["Actor"],
                ]
            )
    say(table(rows))


def timeline_table(runs: list[StateRun]) -> str:
    rows = [["state", "start", "ms", "retries", "errors"]]
    for run in runs:
        duration = "" if run.duration_ms is None else f"{run.duration_ms:.0f}"
        rows.append(
            [run.name, run.started.strftime("%H:%M:%S.%f")[:-3], duration, str(run.retries), ", ".join(run.errors)]
        )
    return table(rows)


def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


# A demo route: through the intake, after the sandbox is told to answer the payment's first request 4022.
BUSY_ONCE = "intake, processor unavailable once"


def demo_scenarios(run_id: str) -> list[tuple[str, dict[str, Any], str]]:
    """(scenario, request, how it is sent): "intake" as upstream services do, "direct" to StartExecution."""

    def request(n: int, number: str, amount: Any = "25.00", currency: str = "USD") -> dict[str, Any]:
        return payment_requests.card_request(
            f"demo-{run_id}-{n}", number=number, amount=amount, currency=currency, cvv="123", description="make demo"
        )

    first = request(1, payment_requests.VISA)
    return [
        ("approval, Visa", first, "intake"),
        ("approval, Mastercard", request(2, payment_requests.MASTERCARD, "10.50", "EUR"), "intake"),
        ("decline", request(3, payment_requests.DECLINING, "42.00"), "intake"),
        ("invalid card number", request(4, "4111111111111112"), "intake"),
        ("float amount", request(5, payment_requests.VISA, 25.0), "intake"),
        ("duplicate of #1", first, "intake"),
        ("#1's TransactionID, other amount", first | {"Amount": "99.00"}, "intake"),
        ("card straight to StartExecution", request(6, payment_requests.VISA), "direct"),
        (
            "authorize only (capture manual)",
            request(7, payment_requests.VISA, "80.00") | {"Capture": "manual"},
            "intake",
        ),
        # Operated on after the payments (demo_operations): #7 is captured in part, #8 voided, #9 refunded.
        ("sale, to void", request(8, payment_requests.MASTERCARD, "40.00"), "intake"),
        ("sale, to refund in parts", request(9, payment_requests.VISA, "100.00"), "intake"),
        # The sandbox answers its first try with Converge's 4022 (not processed): CallProcessor is retried.
        ("processor unavailable once, retried", request(10, payment_requests.VISA, "15.00"), BUSY_ONCE),
    ]


# After the payments, in this order: the batch settles after the void (a settled sale is not voided) and
# before the refunds (an unsettled one is not refunded).
SETTLE = "settle the sandbox's batch"


def demo_operations(run_id: str) -> list[tuple[str, dict[str, Any] | None]]:
    """(scenario, operation request), or (SETTLE, None): close the sandbox's batch there."""

    def operation(kind: str, n: int, suffix: str, amount: str | None = None) -> dict[str, Any]:
        # Letters after the payment's number: an OperationID can never read as a card number.
        request = {
            "Operation": kind,
            "OperationID": f"demo-{run_id}-{n}-{suffix}",
            "TransactionID": f"demo-{run_id}-{n}",
        }
        return request if amount is None else request | {"Amount": amount}

    return [
        ("capture 50.00 of #7's 80.00", operation("capture", 7, "capture", "50.00")),
        ("void #8, unsettled", operation("void", 8, "void")),
        (SETTLE, None),
        ("refund 30.00 of #9's 100.00", operation("refund", 9, "refund-a", "30.00")),
        ("refund 50.00 more of #9", operation("refund", 9, "refund-b", "50.00")),
        ("refund 30.00 more: 20.00 left", operation("refund", 9, "refund-c", "30.00")),
    ]


# What each scenario must show, for the demo's exit status.
_EXPECTED = {
    "invalid card number": "refused by the intake",
    "float amount": "refused by the intake",
    "duplicate of #1": "answered: already started",
    "#1's TransactionID, other amount": "refused by the intake",
    "card straight to StartExecution": "FAILED",
}
# Each operation's final Status, and the follow-on transactions the sandbox must hold under its OperationID.
_EXPECTED_OPERATIONS = {
    "capture 50.00 of #7's 80.00": ("CAPTURE-SUCCESS", 1),
    "void #8, unsettled": ("VOID-SUCCESS", 1),
    "refund 30.00 of #9's 100.00": ("REFUND-SUCCESS", 1),
    "refund 50.00 more of #9": ("REFUND-SUCCESS", 1),
    "refund 30.00 more: 20.00 left": ("REFUND-DECLINED (EXCEEDS_REFUNDABLE)", 0),
}


def run_demo(info: StackInfo, in_process: bool) -> int:
    run_id = uuid.uuid4().hex[:6]
    rows = [["TransactionID", "scenario", "execution", "final Status", "ledger trail", "charges", "ms"]]
    ok = True
    for scenario, request, route in demo_scenarios(run_id):
        started = time.perf_counter()
        transaction_id = request["TransactionID"]
        try:
            execution, final = _send(info, request, route)
        except PaymentRefused as refusal:
            execution = "refused by the intake"
            final = f"{refusal.error_type} ({refusal.field})" if refusal.field else refusal.error_type
        ok &= execution == _EXPECTED.get(scenario, "SUCCEEDED")
        elapsed = f"{(time.perf_counter() - started) * 1000:.0f}"
        trail = operations.trace_payment(info, transaction_id).ledger_trail
        rows.append([transaction_id, scenario, execution, final, trail, _charges(info, transaction_id), elapsed])
    say(table(rows))
    say()
    say("charges: approved charges in the Converge sandbox's own record for that TransactionID.")
    say()
    ok &= run_demo_operations(info, run_id)
    if in_process:
        say("To trace these, keep a stack running: `.venv/bin/python -m local serve` (it prints its console's URL),")
        say("then `.venv/bin/python -m local demo --endpoint URL`, and open the console or run")
        say("`.venv/bin/python -m local trace ID --endpoint URL`.")
    else:
        say(f"Follow any of them in the console, {info.console_url}, or trace one:")
        say(f".venv/bin/python -m local trace <TransactionID> --endpoint {info.endpoint_url}")
        say("(a payment's trace shows its operations too).")
        say(f"Their events: .venv/bin/python -m local events --endpoint {info.endpoint_url}")
    return 0 if ok else 1


def run_demo_operations(info: StackInfo, run_id: str) -> bool:
    """The operations table: each capture, void and refund, and the sandbox's batch closing between them."""
    say("Operations")
    rows = [["TransactionID", "OperationID", "scenario", "operation", "amount", "execution", "final Status"]]
    rows[0] += ["ledger trail", "at Converge", "ms"]
    ok = True
    operated: list[str] = []
    for scenario, request in demo_operations(run_id):
        started = time.perf_counter()
        if request is None:
            settled = operations.settle_sandbox(info)
            elapsed = f"{(time.perf_counter() - started) * 1000:.0f}"
            rows.append(["", "", scenario, "", "", f"{len(settled)} settled", "", "", "", elapsed])
            continue
        transaction_id, operation_id = request["TransactionID"], request["OperationID"]
        description = operations.wait_for_execution(info, operations.start_operation(info, request))
        elapsed = f"{(time.perf_counter() - started) * 1000:.0f}"
        final = _operation_final(description)
        trace = operations.trace_operation(
            info, transaction_id, operation_id, operations.ledger_entries(info, transaction_id)
        )
        held = len(follow_ons_of(operations.sandbox_charges(info), operation_id))
        amount = trace.entries[0]["Amount"] if trace.entries else request.get("Amount", "")
        ok &= (description["status"], final, held) == ("SUCCEEDED", *_EXPECTED_OPERATIONS[scenario])
        rows.append(
            [
                transaction_id,
                operation_id,
                scenario,
                request["Operation"],
                amount,
                description["status"],
                final,
                trace.trail,
                str(held),
                elapsed,
            ]
        )
        if transaction_id not in operated:
            operated.append(transaction_id)
    say(table(rows))
    say()
    say("at Converge: the follow-on transactions (completion, void, return) the sandbox holds under that OperationID.")
    say("The payments' ledger trails now:")
    for transaction_id in operated:
        say(f"  {transaction_id}  {operations.trace_payment(info, transaction_id).ledger_trail}")
    say()
    return ok


def _send(info: StackInfo, request: dict[str, Any], route: str) -> tuple[str, str]:
    if route == BUSY_ONCE:
        match = {"ssl_merchant_txn_id": request["TransactionID"]}
        operations.add_sandbox_fault(info, {"fault": "error_4022", "match": match, "times": 1})
    if route == "direct":
        arn = info.client("stepfunctions").start_execution(
            stateMachineArn=info.state_machine_arn, name=request["TransactionID"], input=json.dumps(request)
        )["executionArn"]
        already = False
    else:
        started = client.start_payment(info.client("lambda"), info.intake_function, request)
        arn, already = started.execution_arn, started.already_started
    if already:
        return "answered: already started", "(the same execution)"
    description = operations.wait_for_execution(info, arn)
    return description["status"], _final_status(description)


def _charges(info: StackInfo, transaction_id: str) -> str:
    if not info.converge_url:
        return "?"
    charges = operations.sandbox_charges(info)
    return str(sum(1 for c in charges if c["ssl_merchant_txn_id"] == transaction_id and c["approved_charge"]))


def _final_status(description: dict[str, Any]) -> str:
    if description["status"] == "SUCCEEDED":
        return str(json.loads(description["output"])["Status"])
    error, cause = description.get("error", ""), description.get("cause", "")
    if error == "InvalidPaymentRequest":
        field = json.loads(cause).get("Field")
        return f"InvalidPaymentRequest ({field})"
    return str(error)


def _operation_final(description: dict[str, Any]) -> str:
    """An operation's final Status, with the reason of a decline or a failure; a failed execution's error."""
    if description["status"] == "SUCCEEDED":
        response = json.loads(description["output"])
        reason = (response.get("Decline") or response.get("Failure") or {}).get("Code")
        return f"{response['Status']} ({reason})" if reason else str(response["Status"])
    error, cause = str(description.get("error", "")), str(description.get("cause", ""))
    if error == "OperationFailed" and cause.startswith("{"):
        return _operation_final({"status": "SUCCEEDED", "output": cause}) + " [execution failed]"
    if error == "OperationRefused":
        return f"{error} ({cause.partition(':')[0]})"
    if error == "InvalidOperationRequest":
        return f"{error} ({cause.partition(' ')[0]})"
    return error
