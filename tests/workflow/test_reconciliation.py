"""Daily reconciliation through the real PaymentReconciliationWorkflow on the local stack: every category,
forged in the Converge sandbox behind the ledger's back; the listing paged when a window holds more than a
listing does; the settled facts written once however often it runs; and `python -m local reconcile`.

The sandbox and the ledger are the whole session's, so a day's report holds other tests' transactions too:
each test judges its own (by TransactionID, or the reference it forged), or a day long past of its own. And
what a test forges it takes back once judged (a forged transaction forgotten, an altered one restored): the
chaos run's invariants, later in the session, read the sandbox's whole record.

Today is not over: its runs are provisional (local.reconciliation asks for them so), reports of the run
alone, never the day's."""

import datetime as dt
import json
import random
import re
from decimal import Decimal

import pytest

from local import cli, operations
from local.payment_requests import DECLINING, MASTERCARD, new_transaction_id
from local.reconciliation import run_reconciliation, stored_report
from payments import ledger, reconciliation_run, topology
from payments.ledger import LedgerEntry, LedgerRepository
from tests.card_data import card_data_in
from tests.workflow.conftest import card_request, run_payment

MASKED_CARD = re.compile(r"\d{2,6}\*{3,}\d{2,4}")
LISTER = topology.function_by_step("ListProcessorWindow").function_name


def today():
    return dt.datetime.now(dt.UTC).date()


def pay(info, amount="25.00", **kwargs):
    transaction_id = new_transaction_id("rc")
    execution = run_payment(info, card_request(transaction_id, amount=amount, **kwargs))
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    return transaction_id, json.loads(execution["output"])


def operate(info, kind, transaction_id, amount=None):
    request = {"Operation": kind, "OperationID": f"{transaction_id}-{kind}", "TransactionID": transaction_id}
    if amount is not None:
        request["Amount"] = amount
    execution = operations.wait_for_execution(info, operations.start_operation(info, request), timeout_seconds=90)
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    assert json.loads(execution["output"])["Status"] == f"{kind.upper()}-SUCCESS"
    return request["OperationID"]


def reconcile(info, day, **request):
    """One run for `day`: (its summary, its whole report from the bucket)."""
    output = run_reconciliation(info, {"Date": day.isoformat(), **request})
    return output, stored_report(info, output)


def findings(reports, **match):
    """The findings of one or more reports whose fields equal `match`."""
    return [
        finding
        for report in reports
        for finding in report["Findings"]
        if all(finding[name] == value for name, value in match.items())
    ]


def settled_entries(info, transaction_id):
    return [e for e in operations.ledger_entries(info, transaction_id) if e["Status"] == ledger.SETTLED]


def assert_no_card_data(text):
    assert card_data_in(text) == []
    assert not MASKED_CARD.search(text), "a masked card number"


@pytest.fixture
def listing_limit(stack, info):
    """Set the sandbox's listing limit and the lister's, as an operator sets the client's to the terminal's;
    both are put back afterwards."""
    lambda_client = info.client("lambda")

    def set_both(limit):
        stack.sandbox.terminal.set_listing_limit(limit)
        variables = lambda_client.get_function_configuration(FunctionName=LISTER)["Environment"]["Variables"]
        variables[topology.CONVERGE_LISTING_LIMIT] = str(limit)
        lambda_client.update_function_configuration(FunctionName=LISTER, Environment={"Variables": variables})

    yield set_both
    set_both(stack.converge_listing_limit)


@pytest.fixture
def forge(stack):
    """Forge approved transactions no ledger holds; they are forgotten again after the test."""
    forged = []

    def make(**fields):
        record = stack.sandbox.forge(**fields)
        forged.append(record["ssl_txn_id"])
        return record

    yield make
    for txn_id in forged:
        stack.sandbox.forget(txn_id)


@pytest.fixture
def past_day():
    """A day long past (from 2000 on, as reconciliation takes), of this test's own: the sandbox holds only what
    the test forges on it."""
    return dt.date(2000, 1, 1) + dt.timedelta(days=random.randrange(7000))


@pytest.fixture(scope="module")
def scenario(stack, info):
    """Payments of every kind, the batch settled, a refund, then Converge's record forged behind the ledger's
    back; then two reconciliation runs of the days the scenario spans (one, unless it crossed midnight)."""
    first_day = today()
    matched = {}
    matched["sale"], _ = pay(info, "25.00")
    hidden, hidden_output = pay(info, "26.00")
    amount_changed, amount_output = pay(info, "30.00")
    status_changed, status_output = pay(info, "27.00")
    declined = new_transaction_id("rc")
    execution = run_payment(info, card_request(declined, number=DECLINING, amount="42.00"))
    assert json.loads(execution["output"])["Status"] == ledger.DECLINED
    matched["captured"], _ = pay(info, "80.00", capture="manual", number=MASTERCARD)
    capture_id = operate(info, "capture", matched["captured"], "50.00")
    matched["voided"], _ = pay(info, "40.00")
    void_id = operate(info, "void", matched["voided"])
    matched["refunded"], refunded_output = pay(info, "100.00")
    operations.settle_sandbox(info)
    refund_id = operate(info, "refund", matched["refunded"], "30.00")

    unrecorded = new_transaction_id("rc-forged")
    forged = stack.sandbox.forge(ssl_merchant_txn_id=unrecorded, ssl_amount="12.00")["ssl_txn_id"]
    alterations = [
        (hidden_output["ProcessorTransactionID"], {"hidden": True}, {"hidden": False}),
        (amount_output["ProcessorTransactionID"], {"ssl_amount": "31.00"}, {"ssl_amount": "30.00"}),
        (
            status_output["ProcessorTransactionID"],
            {"ssl_result_message": "DECLINED"},
            {"ssl_result_message": "APPROVAL"},
        ),
    ]
    for txn_id, change, _ in alterations:
        stack.sandbox.alter(txn_id, **change)

    days = sorted({first_day, today()})
    first = [reconcile(info, day) for day in days]
    second = [reconcile(info, day) for day in days]
    yield {
        "days": days,
        "matched": matched,
        "operations": {"capture": capture_id, "void": void_id, "refund": refund_id},
        "hidden": (hidden, hidden_output["ProcessorTransactionID"]),
        "amount_changed": amount_changed,
        "status_changed": status_changed,
        "declined": declined,
        "unrecorded": unrecorded,
        "refunded_output": refunded_output,
        "first": first,
        "second": second,
    }
    stack.sandbox.forget(forged)
    for txn_id, _, back in alterations:
        stack.sandbox.alter(txn_id, **back)


def reports(scenario, run="first"):
    return [report for _, report in scenario[run]]


def test_the_console_shows_the_latest_report_with_every_mismatch(scenario, stack):
    # First in this module: the scenario's last run is the latest report there is
    [*_, (_, latest)] = scenario["second"]
    page = stack.console.test_client().get("/console/reconciliation", environ_base={"REMOTE_ADDR": "127.0.0.1"})

    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f"{latest['Mismatches']} mismatch(es)." in text and latest["Mismatches"] >= 4
    for finding in latest["Findings"]:
        shown = f'href="/console/payments/{finding["TransactionID"]}"' if finding["TransactionID"] else None
        assert (shown or f"(ref {finding['Reference']})") in text, finding["Category"]
    assert scenario["unrecorded"] in text


def test_an_approval_the_ledger_never_recorded_is_missing_in_the_ledger(scenario):
    [finding] = findings(reports(scenario), Reference=scenario["unrecorded"])

    assert finding["Category"] == "MISSING_IN_LEDGER"
    assert (finding["TransactionID"], finding["ProcessorKind"], finding["ProcessorAmount"]) == (None, "sale", "12.00")


def test_an_approval_converge_no_longer_lists_is_missing_at_the_processor(scenario):
    transaction_id, txn_id = scenario["hidden"]

    [finding] = findings(reports(scenario), TransactionID=transaction_id)

    assert (finding["Category"], finding["ProcessorTransactionID"]) == ("MISSING_AT_PROCESSOR", txn_id)
    assert (finding["LedgerStatus"], finding["LedgerAmount"]) == (ledger.SUCCESS, "26.00")


def test_another_amount_at_converge_is_an_amount_mismatch(scenario):
    [finding] = findings(reports(scenario), TransactionID=scenario["amount_changed"])

    assert finding["Category"] == "AMOUNT_MISMATCH"
    assert (finding["LedgerAmount"], finding["ProcessorAmount"]) == ("30.00", "31.00")


def test_an_approval_converge_lists_declined_is_a_status_mismatch(scenario):
    [finding] = findings(reports(scenario), TransactionID=scenario["status_changed"])

    assert finding["Category"] == "STATUS_MISMATCH" and "declined" in finding["Detail"]


def test_sales_captures_voids_and_refunds_as_the_ledger_holds_them_are_matched(scenario):
    # No finding names them: the sale, the authorization and its capture in part, the voided sale and its
    # void, the refunded sale and its refund, and the declined payment
    mine = [*scenario["matched"].values(), scenario["declined"]]

    assert findings(reports(scenario)) != []
    assert [f for f in findings(reports(scenario)) if f["TransactionID"] in mine] == []
    assert not [f for f in findings(reports(scenario)) if f["Reference"] in scenario["operations"].values()]
    counts = [report["Counts"] for report in reports(scenario)]
    assert sum(c["MATCHED"] for c in counts) >= 7  # four payments' own transactions, three operations'
    assert sum(c["DECLINED_AT_PROCESSOR"] for c in counts) >= 1


def test_each_settled_charge_is_recorded_once_as_payment_settled_however_often_it_runs(scenario, info):
    matched = scenario["matched"]
    # The voided sale never settled; the others did, the capture for what it took
    expected = {
        matched["sale"]: "25.00",
        matched["captured"]: "50.00",
        matched["refunded"]: "100.00",
    }

    for transaction_id, amount in expected.items():
        [entry] = settled_entries(info, transaction_id)
        assert (entry["Amount"], entry["Resolution"]) == (amount, "SETTLED")
        assert entry["ExecutionArn"] in [output["ExecutionArn"] for output, _ in scenario["first"]]
    assert settled_entries(info, matched["voided"]) == []
    assert (
        settled_entries(info, scenario["refunded_output"]["TransactionID"])[0]["ProcessorTransactionID"]
        == (scenario["refunded_output"]["ProcessorTransactionID"])
    )
    recorded_again = [s for r in reports(scenario, "second") for s in r["Settled"] if s["TransactionID"] in expected]
    assert {s["TransactionID"]: s["Recorded"] for s in recorded_again} == dict.fromkeys(expected, "ALREADY_RECORDED")


def test_the_ledgers_with_settled_facts_still_verify(scenario, info):
    for transaction_id in scenario["matched"].values():
        assert cli.main(["verify-ledger", "--endpoint", info.endpoint_url, "--transaction-id", transaction_id]) == 0


def test_mismatches_are_counted_and_the_run_ends_on_them(scenario, info):
    for output, report in scenario["first"]:
        assert (
            output["Mismatches"]
            == report["Mismatches"]
            == sum(
                report["Counts"][c]
                for c in ("MISSING_IN_LEDGER", "MISSING_AT_PROCESSOR", "AMOUNT_MISMATCH", "STATUS_MISMATCH")
            )
        )
        assert report["Complete"] and output["Complete"]
    mismatched = [output for output, _ in scenario["first"] if output["Mismatches"]]
    assert mismatched
    for output in mismatched:
        history = info.client("stepfunctions").get_execution_history(executionArn=output["ExecutionArn"])["events"]
        entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
        assert entered[-1] == "MismatchesFound"


def test_the_report_and_the_listings_hold_no_card_data_and_are_encrypted(scenario, info):
    s3 = info.client("s3")
    for output, _ in scenario["first"]:
        run_prefix = output["ReportKeys"][-1].rsplit("/", 1)[0] + "/"
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=info.report_bucket, Prefix=run_prefix)["Contents"]]
        assert len(keys) == output["Windows"] + 1  # every window's listing, and the report
        for key in [*keys, output["ReportKeys"][0]]:
            stored = s3.get_object(Bucket=info.report_bucket, Key=key)
            assert stored["ServerSideEncryption"] == "aws:kms"
            assert_no_card_data(stored["Body"].read().decode())


def test_a_day_with_more_transactions_than_a_listing_holds_is_paged(info, forge, listing_limit, past_day):
    # Seven in one hour at seconds of their own, two in another; a listing holds three
    at = dt.datetime.combine(past_day, dt.time(10), tzinfo=dt.UTC)
    moments = [at + dt.timedelta(minutes=7 * n, seconds=n) for n in range(7)] + [
        at + dt.timedelta(hours=5, seconds=s) for s in (1, 2)
    ]
    references = [new_transaction_id("rc-paged") for _ in moments]
    for reference, moment in zip(references, moments, strict=True):
        forge(ssl_merchant_txn_id=reference, ssl_amount="5.00", at=moment.isoformat())
    listing_limit(3)

    output, report = reconcile(info, past_day)

    # 26 windows (the day's 24 hours and a margin either side); the 10:00 one in four pages, 15:00 in one
    assert (report["Windows"], report["Pages"], report["Listed"]) == (26, 26 + 3, 9)
    assert report["Complete"] and not report["IncompleteWindows"]
    assert sorted(f["Reference"] for f in report["Findings"]) == sorted(references)
    assert {f["Category"] for f in report["Findings"]} == {"MISSING_IN_LEDGER"}
    assert output["MoreFindings"] == 0 and len(output["Findings"]) == 9


def test_a_window_paging_cannot_finish_is_reported_incomplete(info, forge, listing_limit, past_day, capsys):
    at = dt.datetime.combine(past_day, dt.time(8, 30), tzinfo=dt.UTC)
    for _ in range(4):  # four in one second: a listing of three cannot be paged by time
        forge(ssl_merchant_txn_id=new_transaction_id("rc-second"), ssl_amount="1.00", at=at.isoformat())
    listing_limit(3)

    status = cli.main(["reconcile", "--date", past_day.isoformat(), "--endpoint", info.endpoint_url])

    printed = capsys.readouterr().out
    assert status == 1
    assert "INCOMPLETE window" in printed and f"{past_day.isoformat()}T08:00:00Z" in printed


def test_the_command_prints_the_report_and_exits_0_only_when_all_is_matched(info, scenario, past_day, capsys, tmp_path):
    empty = cli.main(["reconcile", "--date", past_day.isoformat(), "--endpoint", info.endpoint_url])
    printed_empty = capsys.readouterr().out
    day = scenario["days"][0]
    saved = tmp_path / "report.json"
    mismatched = cli.main(
        ["reconcile", "--date", day.isoformat(), "--endpoint", info.endpoint_url, "--report-file", str(saved)]
    )
    printed = capsys.readouterr().out

    assert (empty, mismatched) == (0, 1)
    assert "No mismatches." in printed_empty and "0 transactions listed" in printed_empty
    assert f"Reconciliation of {day.isoformat()} against elavon" in printed
    for transaction_id in (scenario["hidden"][0], scenario["amount_changed"], scenario["status_changed"]):
        assert transaction_id in printed
    assert scenario["unrecorded"] in printed
    assert_no_card_data(printed)
    assert json.loads(saved.read_text())["Date"] == day.isoformat()


def test_a_malformed_request_fails_the_run_naming_its_field(info):
    with pytest.raises(RuntimeError, match=r"InvalidReconciliationRequest.*Date must not be in the future"):
        run_reconciliation(info, {"Date": (today() + dt.timedelta(days=2)).isoformat()})


def test_a_day_not_over_is_refused_unless_asked_for_provisionally(info):
    with pytest.raises(RuntimeError, match=r"InvalidReconciliationRequest.*Date has not ended.*Provisional"):
        run_reconciliation(info, {"Date": today().isoformat()}, provisional_if_not_over=False)


def test_a_provisional_run_is_stored_as_its_own_report_never_the_days(scenario, info):
    # The scenario's last day is today: its runs listed it before it was over
    day = scenario["days"][-1]
    runs = [
        (output, report)
        for output, report in [*scenario["first"], *scenario["second"]]
        if report["Date"] == day.isoformat()
    ]

    for output, report in runs:
        assert output["Provisional"] is report["Provisional"] is True
        [key] = output["ReportKeys"]
        assert key.endswith(f"/runs/{report['Run']}/report.json")
    day_report = info.client("s3").list_objects_v2(
        Bucket=info.report_bucket, Prefix=reconciliation_run.report_key(day.isoformat())
    )
    assert day_report.get("KeyCount", 0) == 0


def test_a_matched_sale_still_open_is_counted_not_yet_settled_and_gets_no_settled_fact(info, scenario):
    transaction_id, _ = pay(info, "17.00")  # after the scenario's settlement: its batch is open

    output, report = reconcile(info, today())

    assert report["NotYetSettled"] == output["NotYetSettled"] >= 1
    assert findings([report], TransactionID=transaction_id) == []
    assert settled_entries(info, transaction_id) == []


def write_late_resolution(info, transaction_id, txn_id, pending_since, resolved_at):
    """A payment pending from `pending_since`, recorded approved after the fact at `resolved_at` (as status sync
    records one it found charged, or an operator)."""
    repository = LedgerRepository(info.ledger_table, client=info.client("dynamodb"))
    common = {
        "TransactionID": transaction_id,
        "SecureToken": "not-a-token",
        "Amount": "40.00",
        "Currency": "USD",
        "ProcessorID": topology.PROCESSOR_ELAVON,
        "ExecutionArn": f"arn:late:{transaction_id}",
    }
    for number, status, moment, more in [
        (1, ledger.INITIATED, pending_since, {}),
        (2, ledger.PENDING, pending_since, {}),
        (3, ledger.SUCCESS, resolved_at, {"ProcessorTransactionID": txn_id, "Resolution": "COMPLETE"}),
    ]:
        created = moment.isoformat().replace("+00:00", "Z")
        repository.append_entry(LedgerEntry(EntryNumber=number, Status=status, CreatedAt=created, **common, **more))


def test_a_late_resolution_converge_does_not_list_is_reported_on_the_day_it_was_written(info, forge, past_day):
    # Two payments pending from the evening of past_day, recorded approved at 01:00 the next day: one charge
    # Converge lists (on past_day, outside the next day's margin), one it never lists
    next_day = past_day + dt.timedelta(days=1)
    evening = dt.datetime.combine(past_day, dt.time(22, 0), tzinfo=dt.UTC)
    last_minutes = dt.datetime.combine(past_day, dt.time(23, 58), tzinfo=dt.UTC)
    resolved_at = dt.datetime.combine(next_day, dt.time(1, 0), tzinfo=dt.UTC)
    listed, unlisted = new_transaction_id("rc-late"), new_transaction_id("rc-late")
    txn_id = forge(ssl_merchant_txn_id=listed, ssl_amount="40.00", at=(evening + dt.timedelta(seconds=2)).isoformat())
    write_late_resolution(info, listed, txn_id["ssl_txn_id"], evening, resolved_at)
    write_late_resolution(info, unlisted, "never-listed-" + unlisted, last_minutes, resolved_at)

    _, that_day = reconcile(info, past_day)  # its index entries are the next day's: it sees neither
    _, written_day = reconcile(info, next_day)

    assert that_day["Counts"]["MATCHED"] == 1 and that_day["Findings"] == []  # the listed one, looked at again
    [finding] = written_day["Findings"]
    assert (finding["Category"], finding["TransactionID"]) == ("MISSING_AT_PROCESSOR", unlisted)
    assert f"its request left on {past_day.isoformat()}" in finding["Detail"]
    assert "does not hold it either" in finding["Detail"]


def test_amounts_in_the_report_are_decimal_strings(scenario):
    for report in reports(scenario):
        for finding in report["Findings"]:
            for name in ("LedgerAmount", "ProcessorAmount"):
                assert finding[name] is None or Decimal(finding[name]) > 0
