"""Daily reconciliation, the running half: plan a day's windows, list one window, match the day.

The reconciliation workflow (statemachine/reconciliation.py) calls these through lambdas/reconciliation:

- `plan`: the day (yesterday by default; never one that has not ended, with its margin, unless asked for
  provisionally) cut into time windows, with a margin either side;
- `list_window`: one window as the processor lists it, every page, stored as one JSON object in the report
  bucket; only counts go back into the state (a Map iteration each, so a day of tens of thousands of
  transactions is listed in parallel pieces, never all in one function's memory at once);
- `match`: the listings against the ledger's approvals of the day (the EntriesByStatus index), decided by
  payments.reconciliation; findings looked at again with the whole ledger of their payments; a
  PAYMENT-SETTLED fact appended for each settled charge; the report stored and summed up. A late entry
  whose request left an earlier day is looked for in that day's stored listings. A run that listed any
  window before the day and its margin had ended is provisional: its report is stored as the run's own
  copy only, never as the day's.

No card data anywhere: a listed transaction carries ids, kind, amount, currency, outcome, settled, time.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import ClientError

from payments import aws, ledger, topology
from payments.errors import StorageUnavailable
from payments.ledger import LedgerEntry, LedgerRepository
from payments.operation_recording import append_next
from payments.processors.port import ListedTransaction, Processor
from payments.reconciliation import (
    APPROVAL_STATUSES,
    LedgerFact,
    Reconciliation,
    day_bounds,
    expectations_of,
    findings_to_look_at_again,
    format_time,
    reconcile,
)

DEFAULT_WINDOW_MINUTES = 60
# Fewer minutes make more windows than the workflow's state (256 KB) carries: at 5, 290 windows and their
# counts come to well under 100 KB.
MIN_WINDOW_MINUTES = 5
MAX_WINDOW_MINUTES = 1440
# No run of a day before this: nothing of the payment system's is older, and far dates do not compute.
EARLIEST_DAY = dt.date(2000, 1, 1)
# Listed and read around the day: the processor's clock and ours differ, and a ledger entry follows its
# processor call by up to the retries' minutes.
MARGIN = dt.timedelta(minutes=15)
# Findings looked at again with their payments' whole ledgers, at most (one Query each).
MAX_LOOKED_AT_AGAIN = 500
# Findings carried in the workflow's output (the report holds them all).
FINDINGS_IN_OUTPUT = 20
SETTLED_RESOLUTION = "SETTLED"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class InvalidReconciliationRequest(ValueError):
    """The reconciliation's input is malformed: `field` names which, the message says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field} {message}")
        self.field = field


@dataclass(frozen=True)
class ReconciliationRequest:
    day: dt.date
    window_minutes: int
    processor_id: str
    provisional: bool = False


def parse_request(value: Any, *, today: dt.date, now: dt.datetime | None = None) -> ReconciliationRequest:
    """{"Date": "YYYY-MM-DD" (default: yesterday, UTC; from 2000-01-01), "WindowMinutes": 5-1440 (default
    60), "ProcessorID": (default elavon), "Provisional": true (a day not yet over, with its margin: a report
    of what is known so far, never stored as the day's)}; a scheduled run sends none of them (no input, or
    {}). `now`: the moment (UTC) to judge whether the day is over; the end of `today` if not given."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise InvalidReconciliationRequest("[input]", "must be a JSON object")
    unexpected = set(value) - {"Date", "WindowMinutes", "ProcessorID", "Provisional"}
    if unexpected:
        raise InvalidReconciliationRequest("[unexpected field]", "is not part of a reconciliation request")
    provisional = value.get("Provisional", False)
    if not isinstance(provisional, bool):
        raise InvalidReconciliationRequest("Provisional", "must be true or false")
    moment = now if now is not None else dt.datetime.combine(today, dt.time.max, tzinfo=dt.UTC)
    day = today - dt.timedelta(days=1)
    if "Date" in value:
        text = value["Date"]
        if not isinstance(text, str) or not _DATE.fullmatch(text):
            raise InvalidReconciliationRequest("Date", "must be a date written YYYY-MM-DD")
        try:
            day = dt.date.fromisoformat(text)
        except ValueError:
            raise InvalidReconciliationRequest("Date", "is not a calendar date") from None
        if day > today:
            raise InvalidReconciliationRequest("Date", "must not be in the future")
        if day < EARLIEST_DAY:
            raise InvalidReconciliationRequest("Date", f"must not be before {EARLIEST_DAY.isoformat()}")
    if not provisional and not day_is_over(day, moment):
        raise InvalidReconciliationRequest(
            "Date",
            f"has not ended: a day is reconciled from {format_time(day_bounds(day)[1] + MARGIN)} on (its end and "
            f'the {int(MARGIN.total_seconds() // 60)}-minute margin after it), or asked for with "Provisional": '
            "true (a report of what is known so far, not stored as the day's)",
        )
    minutes = value.get("WindowMinutes", DEFAULT_WINDOW_MINUTES)
    if (
        not isinstance(minutes, int)
        or isinstance(minutes, bool)
        or not MIN_WINDOW_MINUTES <= minutes <= MAX_WINDOW_MINUTES
    ):
        raise InvalidReconciliationRequest(
            "WindowMinutes",
            f"must be a whole number from {MIN_WINDOW_MINUTES} to {MAX_WINDOW_MINUTES} (fewer minutes make more "
            "windows than the workflow's state can carry)",
        )
    processor_id = value.get("ProcessorID", topology.PROCESSOR_ELAVON)
    if processor_id != topology.PROCESSOR_ELAVON:
        raise InvalidReconciliationRequest("ProcessorID", f'must be "{topology.PROCESSOR_ELAVON}"')
    return ReconciliationRequest(day, minutes, processor_id, provisional)


def day_is_over(day: dt.date, moment: dt.datetime) -> bool:
    """Whether the day, and the margin after it, had ended at `moment`: its listing can be complete."""
    return moment >= day_bounds(day)[1] + MARGIN


def windows_of(day: dt.date, window_minutes: int) -> list[dict[str, Any]]:
    """The margin before the day, the day in windows of `window_minutes`, the margin after: [Start, End)."""
    start, end = day_bounds(day)
    cuts = [start - MARGIN, start]
    step = dt.timedelta(minutes=window_minutes)
    moment = start + step
    while moment < end:
        cuts.append(moment)
        moment += step
    cuts += [end, end + MARGIN]
    return [
        {"Index": index, "Start": format_time(cuts[index]), "End": format_time(cuts[index + 1])}
        for index in range(len(cuts) - 1)
    ]


def plan(request: ReconciliationRequest, run: str) -> dict[str, Any]:
    """The state the Map iterates over: one item per window, and where the run's listings go."""
    return {
        "Date": request.day.isoformat(),
        "ProcessorID": request.processor_id,
        "Run": run,
        "Prefix": f"{topology.RECONCILIATION_PREFIX}/{request.day.isoformat()}/runs/{run}/",
        "Windows": windows_of(request.day, request.window_minutes),
    }


class ReportStore:
    """JSON objects in the report bucket (encrypted at rest with the bucket's key)."""

    def __init__(self, bucket: str, client: Any | None = None) -> None:
        self.bucket = bucket
        self._client = client or aws.client("s3")

    def put(self, key: str, document: dict[str, Any]) -> None:
        body = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
        aws.call_with_transient_mapping(
            lambda: self._client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json"),
            StorageUnavailable,
            "S3 PutObject on the report bucket",
        )

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            answer = aws.call_with_transient_mapping(
                lambda: self._client.get_object(Bucket=self.bucket, Key=key),
                StorageUnavailable,
                "S3 GetObject on the report bucket",
            )
        except ClientError as error:
            if aws.error_code(error) in ("NoSuchKey", "404"):
                return None
            raise
        document: dict[str, Any] = json.loads(answer["Body"].read())
        return document

    def keys(self, prefix: str) -> Iterator[str]:
        """The keys of the objects under `prefix`, every page."""
        request = {"Bucket": self.bucket, "Prefix": prefix}
        while True:
            page = aws.call_with_transient_mapping(
                functools.partial(self._client.list_objects_v2, **request),
                StorageUnavailable,
                "S3 ListObjectsV2 on the report bucket",
            )
            yield from (item["Key"] for item in page.get("Contents", []))
            if not page.get("IsTruncated"):
                return
            request["ContinuationToken"] = page["NextContinuationToken"]


def window_key(prefix: str, index: int) -> str:
    return f"{prefix}windows/{index:04d}.json"


def report_key(day: str) -> str:
    return f"{topology.RECONCILIATION_PREFIX}/{day}/report.json"


def list_window(
    event: dict[str, Any],
    processor: Processor,
    store: ReportStore,
    seconds_left: Callable[[], float],
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """List one window at the processor (every page), store it with when it was listed, answer with its
    counts."""
    window = event["Window"]
    start = _time(window["Start"])
    end = _time(window["End"]) - dt.timedelta(seconds=1)  # the processor's search is inclusive, to the second
    listed_at = now or dt.datetime.now(dt.UTC)
    listing = processor.transactions_between(start, end, seconds_left=seconds_left)
    key = window_key(event["Prefix"], int(window["Index"]))
    store.put(
        key,
        {
            "Window": window,
            "ListedAt": format_time(listed_at),
            "Complete": listing.complete,
            "Pages": listing.pages,
            "Transactions": [transaction.to_json() for transaction in listing.transactions],
        },
    )
    return {
        "Index": int(window["Index"]),
        "Listed": len(listing.transactions),
        "Pages": listing.pages,
        "Complete": listing.complete,
        "Key": key,
    }


@dataclass(frozen=True)
class Listings:
    transactions: list[ListedTransaction]
    pages: int
    incomplete: list[dict[str, Any]]  # windows not listed in full, and why
    listed_from: dt.datetime | None = None  # when the first window stored was listed


def read_listings(event: dict[str, Any], store: ReportStore) -> Listings:
    """Every window's stored listing; a window whose iteration failed, or that paging could not finish, is
    named incomplete (what it did list is still used)."""
    results = {int(result["Index"]): result for result in event.get("Listings", []) if "Index" in result}
    transactions: list[ListedTransaction] = []
    pages = 0
    incomplete = []
    listed_at: list[dt.datetime] = []
    for window in event["Windows"]:
        index = int(window["Index"])
        result = results.get(index, {})
        document = store.get(window_key(event["Prefix"], index))
        if document is None:
            reason = result.get("Error") or "its listing was not stored"
            incomplete.append({**window, "Reason": reason})
            continue
        transactions.extend(ListedTransaction.from_json(item) for item in document["Transactions"])
        pages += int(document.get("Pages", 0))
        if "ListedAt" in document:
            listed_at.append(_time(document["ListedAt"]))
        if not document.get("Complete"):
            incomplete.append({**window, "Reason": "the processor's paging could not reach every transaction"})
    return Listings(transactions, pages, incomplete, min(listed_at, default=None))


def stored_listing(store: ReportStore, day: dt.date) -> list[ListedTransaction] | None:
    """What earlier runs listed of `day` (every run's windows, margins included); None if no run of that day
    stored a listing. How a late ledger entry is looked for on the day its request left."""
    prefix = f"{topology.RECONCILIATION_PREFIX}/{day.isoformat()}/runs/"
    keys = [key for key in store.keys(prefix) if "/windows/" in key]
    if not keys:
        return None
    transactions: list[ListedTransaction] = []
    for key in keys:
        document = store.get(key)
        if document is not None:
            transactions.extend(ListedTransaction.from_json(item) for item in document["Transactions"])
    return transactions


def ledger_facts(repository: LedgerRepository, day: dt.date) -> list[LedgerFact]:
    """The ledger's approvals written on the day and in its margins, from the EntriesByStatus index."""
    start, end = day_bounds(day)
    since, until = _iso(start - MARGIN), _iso(end + MARGIN)
    return [
        LedgerFact.of(item)
        for status in APPROVAL_STATUSES
        for item in repository.entries_with_status(status, since, until)
    ]


def matched(
    listings: Listings,
    facts: list[LedgerFact],
    repository: LedgerRepository,
    day: dt.date,
    processor_id: str,
    stored: Callable[[dt.date], list[ListedTransaction] | None] | None = None,
) -> tuple[Reconciliation, int]:
    """Reconcile, then look again at every finding with the whole ledger of its payment (a void or a
    reversal written another day, when a resolved charge was really sent): the second answer stands.
    `stored(day)`: another day's stored listing, where a late entry whose request left that day is looked
    for. Returns the answer and how many payments were looked at again."""
    first = reconcile(listings.transactions, expectations_of(facts, processor_id), day, stored)
    again = findings_to_look_at_again(first)[:MAX_LOOKED_AT_AGAIN]
    if not again:
        return first, 0
    whole = {transaction_id: repository.entries(transaction_id) for transaction_id in again}
    reread = {transaction_id for transaction_id, entries in whole.items() if entries}
    if not reread:
        return first, len(again)
    facts = [fact for fact in facts if fact.TransactionID not in reread] + [
        LedgerFact.of({k: v for k, v in asdict(entry).items() if v is not None})
        for transaction_id in reread
        for entry in whole[transaction_id]
    ]
    return reconcile(listings.transactions, expectations_of(facts, processor_id), day, stored), len(again)


def record_settled(
    repository: LedgerRepository, outcome: Reconciliation, processor_id: str, execution_arn: str
) -> list[dict[str, Any]]:
    """One PAYMENT-SETTLED fact per payment whose charge the processor lists settled; a payment that holds
    one already (an earlier run) gets none: the run can be repeated."""
    recorded = []
    for charge in outcome.settled:
        entry = LedgerEntry(
            TransactionID=charge.transaction_id,
            EntryNumber=0,  # set by append_next
            Status=ledger.SETTLED,
            SecureToken="",  # set by append_next
            Amount=charge.amount,
            Currency=charge.currency,
            ProcessorID=processor_id,
            ExecutionArn=execution_arn,
            CreatedAt=ledger.now_iso(),
            ProcessorTransactionID=charge.processor_transaction_id,
            Resolution=SETTLED_RESOLUTION,
        )
        written = append_next(
            repository, entry, lambda entries: next((e for e in entries if e.Status == ledger.SETTLED), None)
        )
        recorded.append(
            {
                "TransactionID": charge.transaction_id,
                "ProcessorTransactionID": charge.processor_transaction_id,
                "Amount": charge.amount,
                "Currency": charge.currency,
                "EntryNumber": written.EntryNumber,
                "Recorded": "WRITTEN" if written.ExecutionArn == execution_arn else "ALREADY_RECORDED",
            }
        )
    return recorded


def report_of(
    event: dict[str, Any],
    listings: Listings,
    outcome: Reconciliation,
    settled: list[dict[str, Any]],
    looked_at_again: int,
    execution_arn: str,
    provisional: bool = False,
) -> dict[str, Any]:
    return {
        "Date": event["Date"],
        "ProcessorID": event["ProcessorID"],
        "Run": event["Run"],
        "ExecutionArn": execution_arn,
        "GeneratedAt": ledger.now_iso(),
        "Provisional": provisional,
        "Complete": not listings.incomplete,
        "Windows": len(event["Windows"]),
        "IncompleteWindows": listings.incomplete,
        "Pages": listings.pages,
        "Listed": outcome.listed,
        "NotMoney": outcome.not_money,
        "Counts": outcome.counts_json(),
        "Mismatches": outcome.mismatches,
        "NotYetSettled": outcome.not_yet_settled,
        "LookedAtAgain": looked_at_again,
        "Findings": [finding.to_json() for finding in outcome.findings],
        "Settled": settled,
    }


def summary_of(report: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """What the workflow answers: the report's counts, its first findings, where the report is."""
    settled = report["Settled"]
    return {
        "Date": report["Date"],
        "ProcessorID": report["ProcessorID"],
        "Provisional": report["Provisional"],
        "Complete": report["Complete"],
        "IncompleteWindows": len(report["IncompleteWindows"]),
        "Windows": report["Windows"],
        "Pages": report["Pages"],
        "Listed": report["Listed"],
        "Counts": report["Counts"],
        "Mismatches": report["Mismatches"],
        "SettledRecorded": sum(1 for s in settled if s["Recorded"] == "WRITTEN"),
        "SettledAlreadyRecorded": sum(1 for s in settled if s["Recorded"] == "ALREADY_RECORDED"),
        "NotYetSettled": report["NotYetSettled"],
        "Findings": report["Findings"][:FINDINGS_IN_OUTPUT],
        "MoreFindings": max(0, len(report["Findings"]) - FINDINGS_IN_OUTPUT),
        "ReportKeys": keys,
    }


def match(
    event: dict[str, Any],
    repository: LedgerRepository,
    store: ReportStore,
    execution_arn: str,
    now: dt.datetime | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The whole match step: (the report, the summary the workflow answers). A run that listed any window
    before the day and its margin had ended (or matches before then) is provisional: its report is stored
    as the run's own copy only, never over the day's."""
    day = dt.date.fromisoformat(event["Date"])
    listings = read_listings(event, store)
    moment = now or dt.datetime.now(dt.UTC)
    provisional = not day_is_over(day, listings.listed_from or moment)
    facts = ledger_facts(repository, day)
    outcome, looked_at_again = matched(
        listings, facts, repository, day, event["ProcessorID"], lambda other: stored_listing(store, other)
    )
    settled = record_settled(repository, outcome, event["ProcessorID"], execution_arn)
    report = report_of(event, listings, outcome, settled, looked_at_again, execution_arn, provisional)
    keys = (
        [f"{event['Prefix']}report.json"]
        if provisional
        else [report_key(event["Date"]), f"{event['Prefix']}report.json"]
    )
    for key in keys:
        store.put(key, report)
    return report, summary_of(report, keys)


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
