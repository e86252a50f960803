"""The operations console in headless Chromium: `python -m local serve`, then `python -m local demo` and
`python -m local reconcile` against it, then a person's view of the result.

The browser is Debian's Chromium (the Makefile installs it; CHROMIUM names it), driven through
Playwright's Python API; nothing is downloaded. A screenshot of a payment page is left under
build/console/ for a person to look at.
"""

import itertools
import os
import re
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from local.console.app import CONTENT_SECURITY_POLICY
from local.stack import CREDENTIALS
from tests.card_data import card_data_in

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "build" / "console"
# As the machine's Chromium must start here: no sandbox as root, and no background connections (refused
# by a closed network, many at a time).
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def demo(server):
    """The demo's run id, once `demo` and `reconcile` have run against the served stack."""
    endpoint = server["info"]["endpoint_url"]
    ran = subprocess.run(
        [sys.executable, "-m", "local", "demo", "--endpoint", endpoint],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    run_id = re.search(r"\bdemo-([0-9a-f]{6})-1\b", ran.stdout).group(1)
    reconciled = subprocess.run(
        [sys.executable, "-m", "local", "reconcile", "--date", demo_day(server, run_id), "--endpoint", endpoint],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr  # every transaction matched
    return run_id


def demo_day(server, run_id):
    """The day (UTC) the demo's first payment was written: a report of it lists that payment at least."""
    info = server["info"]
    dynamodb = boto3.client("dynamodb", endpoint_url=info["endpoint_url"], region_name=info["region"], **CREDENTIALS)
    [first, *_] = dynamodb.query(
        TableName=info["ledger_table"],
        KeyConditionExpression="TransactionID = :t",
        ExpressionAttributeValues={":t": {"S": f"demo-{run_id}-1"}},
    )["Items"]
    return first["CreatedAt"]["S"][:10]


@pytest.fixture(scope="module")
def browser():
    executable = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    assert Path(executable).is_file(), f"no Chromium at {executable}: `make test` installs Debian's chromium"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, server):
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    opened = context.new_page()
    # Anything the page's Content-Security-Policy blocked, or any script error, is a failure of the page.
    opened.problems = []
    opened.on("console", lambda message: message.type == "error" and opened.problems.append(message.text))
    opened.on("pageerror", lambda error: opened.problems.append(str(error)))
    yield opened
    context.close()


def console(server):
    return server["info"]["console_url"]


def listed(page: Page) -> dict[str, dict[str, str]]:
    rows = page.locator("tr.payment")
    found = {}
    for i in range(rows.count()):
        row = rows.nth(i)
        found[row.get_attribute("data-transaction-id")] = {
            "status": row.get_attribute("data-status"),
            "attention": "payment--attention" in (row.get_attribute("class") or ""),
            "operations": row.locator("td").nth(5).inner_text().split(),
        }
    return found


def node(page: Page, state: str):
    return page.locator(f'#graph svg g.state[data-state="{state}"]')


def edge(page: Page, source: str, target: str, kind: str = ":not(.edge--catch)"):
    """The edge from `source` to `target`: by default its Next or Choice edge, not a Catch to the same state."""
    return page.locator(f'#graph svg path.edge[data-from="{source}"][data-to="{target}"]{kind}')


def classes(locator) -> set[str]:
    assert locator.count() == 1, f"{locator} matched {locator.count()} elements"
    return set((locator.get_attribute("class") or "").split())


def test_the_list_shows_every_demo_payment_with_its_status_and_operations(page, server, demo):
    page.goto(console(server))

    assert page.url.endswith("/console/payments")
    payments = {tid.removeprefix(f"demo-{demo}-"): row for tid, row in listed(page).items() if f"-{demo}-" in tid}
    assert {n: row["status"] for n, row in payments.items()} == {
        "1": "PAYMENT-SUCCESS",
        "2": "PAYMENT-SUCCESS",
        "3": "PAYMENT-DECLINED",
        "6": "FAILED",  # straight to StartExecution with a card: refused at Tokenize, no ledger entry
        "7": "PAYMENT-AUTHORIZED",
        "8": "PAYMENT-SUCCESS",
        "9": "PAYMENT-SUCCESS",
        "10": "PAYMENT-SUCCESS",
    }  # 4 and 5 were refused by the intake: no execution, no entry, nothing to list
    assert payments["7"]["operations"] == ["CAPTURE-SUCCESS"]
    assert payments["8"]["operations"] == ["VOID-SUCCESS"]
    assert payments["9"]["operations"] == ["REFUND-SUCCESS", "REFUND-SUCCESS", "REFUND-DECLINED"]
    assert [n for n, row in payments.items() if row["attention"]] == ["6"]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "payments.png"))
    assert page.problems == []


def test_a_declined_payment_shows_the_path_it_took_through_the_graph(page, server, demo):
    page.goto(f"{console(server)}/payments/demo-{demo}-3")

    taken = ["Tokenize", "LedgerInitiated", "LedgerPending", "CallProcessor", "Normalize", "IsApproved"]
    taken += ["LedgerDeclined", "AnyCallsToAudit", "Audit", "IsSettled", "PaymentSettled"]
    for state in taken:
        assert "state--visited" in classes(node(page, state)), state
    for state in ("LedgerSuccess", "LedgerFailed", "PaymentFailed", "DiscardCard"):
        assert "state--visited" not in classes(node(page, state)), state
    for source, target in itertools.pairwise(taken):
        assert "edge--taken" in classes(edge(page, source, target)), (source, target)
    assert "edge--taken" not in classes(edge(page, "IsApproved", "LedgerSuccess"))
    assert page.locator("#ledger table.ledger tr[data-status]").evaluate_all(
        "rows => rows.map(r => r.dataset.status)"
    ) == ["PAYMENT-INITIATED", "PAYMENT-PENDING", "PAYMENT-DECLINED"]
    assert page.locator("#chain-verdict").inner_text().startswith("Hash chains verify: 3 ledger entries")
    assert page.problems == []


def test_a_retried_payment_marks_the_retried_state_with_its_attempts_and_error(page, server, demo):
    page.goto(f"{console(server)}/payments/demo-{demo}-10")

    call = node(page, "CallProcessor")
    assert {"state--visited", "state--retried"} <= classes(call)
    assert "state--failed" not in classes(call)
    assert call.locator("text.state__detail").text_content().startswith("2 attempts")
    assert "ProcessorUnavailable" in call.locator("title").text_content()
    assert "edge--taken" in classes(edge(page, "CallProcessor", "Normalize"))
    assert "edge--taken" in classes(edge(page, "IsApproved", "LedgerSuccess"))
    row = page.locator('table.timeline tr[data-state="CallProcessor"]')
    assert "visit--retried" in classes(row) and "ProcessorUnavailable" in row.inner_text()

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / "payment-retried.png"
    page.locator("#graph").screenshot(path=str(shot))
    page.screenshot(path=str(SCREENSHOTS / "payment-retried-full.png"), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    assert page.problems == []


def test_search_finds_a_transaction_id_and_the_filter_keeps_what_needs_attention(page, server, demo):
    page.goto(console(server))
    page.fill("#search", f"demo-{demo}-3")
    page.click("#apply")

    assert list(listed(page)) == [f"demo-{demo}-3"]
    assert "q=demo-" in page.url

    page.fill("#search", "")
    page.select_option("#status", "attention")
    page.click("#apply")

    attention = [tid for tid in listed(page) if f"-{demo}-" in tid]
    assert attention == [f"demo-{demo}-6"]
    page.screenshot(path=str(SCREENSHOTS / "payments-attention.png"))
    assert page.problems == []


def test_a_refunded_payment_shows_its_operations_and_the_processor_beside_the_ledger(page, server, demo):
    page.goto(f"{console(server)}/payments/demo-{demo}-9")

    operations = page.locator("#operations details.operation")
    assert operations.count() == 3
    assert [operations.nth(i).get_attribute("data-operation-id") for i in range(3)] == [
        f"demo-{demo}-9-refund-a",
        f"demo-{demo}-9-refund-b",
        f"demo-{demo}-9-refund-c",
    ]
    # Each operation's own graph: the declined refund took the declined path
    declined = operations.nth(2)
    assert "state--visited" in classes(declined.locator('g.state[data-state="OperationDeclinedEnd"]'))
    # The sandbox holds the sale and two returns; net 20.00, as the ledger says
    assert page.locator("#money-verdict").inner_text() == (
        "Charged, net of returns: processor 20.00, ledger 20.00: they agree."
    )
    types = page.locator("#processor table.processor tbody tr td:nth-child(2)").all_inner_texts()
    assert sorted(types) == ["RETURN", "RETURN", "SALE"]
    assert [e.split()[0] for e in page.locator("#events tbody tr td:nth-child(3)").all_inner_texts()] == [
        "PAYMENT-SUCCESS",
        "REFUND-SUCCESS",
        "REFUND-SUCCESS",
        "REFUND-DECLINED",
        "PAYMENT-SETTLED",  # the reconciliation run's fact: the sale settled in the batch the demo closed
    ]
    assert page.problems == []


def test_the_reconciliation_page_shows_the_latest_report(page, server, demo):
    page.goto(f"{console(server)}/reconciliation")

    heading = page.locator("#report-heading").inner_text()
    assert heading.startswith("The latest report") and f"{demo_day(server, demo)} against elavon" in heading
    assert page.locator("#reconciliation-verdict").inner_text() == "0 mismatch(es)."
    matched = page.locator("table.counts tr", has_text="matched").first.locator("td.number").inner_text()
    assert int(matched) >= 1
    assert page.problems == []


def test_pages_carry_a_strict_policy_load_their_own_styles_and_show_no_card_data(page, server, demo):
    pages = [f"{console(server)}/payments", f"{console(server)}/reconciliation"]
    pages += [f"{console(server)}/payments/demo-{demo}-{n}" for n in (1, 2, 3, 6, 7, 8, 9, 10)]
    for url in pages:
        answer = page.goto(url)
        assert answer.status == 200, url
        assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, url
        # The style sheets loaded under that policy: the header bar has the console's colour
        assert page.locator("header.bar").evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(35, 47, 62)"
        # No PAN in any form and no CVV field (a CVV's three digits are also a latency in a table cell)
        assert card_data_in(page.content(), cvvs=()) == [], url
    assert page.problems == []
