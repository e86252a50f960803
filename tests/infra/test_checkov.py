"""checkov finds nothing in the prod template that is not skipped, on the resource, with its reason.

checkov runs from its own virtualenv (.venv-checkov, made by `make test`: its pins of boto3 and
botocore conflict with the project's), offline: no API key, `--skip-download` (no policy metadata
from the platform) and CKV_SKIP_PACKAGE_UPDATE_CHECK (no version check against PyPI).
docs/network-and-scanners.md lists the skips and why.
"""

import json
import os
import subprocess
from collections import Counter

import pytest

from infra import REPO_ROOT
from infra.scanners import MIN_REASON_LENGTH, checkov_skips, skip_checkov

CHECKOV = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"
# Each skip the prod template carries, by check and resource type, and how many resources: a new skip is
# a decision to review (and to add to docs/network-and-scanners.md), not something a scan lets through.
EXPECTED_SKIPS = {
    # A dead-letter queue only receives failed asynchronous invocations; every function is invoked synchronously
    # (the intake, the payment workflow's eight steps, the operation workflow's five of its own, status sync's two
    # and reconciliation's three, by Task states, and LedgerEvents, by its event source mapping, whose on-failure
    # destination takes a batch given up on).
    ("CKV_AWS_116", "AWS::Lambda::Function"): 20,
    # The CardVault keeps no backups of CVV ciphertext.
    ("CKV_AWS_165", "AWS::DynamoDB::GlobalTable"): 1,
    # The evidence buckets' access-log bucket does not log into itself (infra.buckets; docs/keys-and-access.md).
    ("CKV_AWS_18", "AWS::S3::Bucket"): 1,
}
# Nothing of the machine's environment reaches checkov but what it needs to run: no Bridgecrew or
# Prisma Cloud API key that would make it call the platform.
OFFLINE = {
    "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true",
    "BC_SKIP_MAPPING": "TRUE",
    "LOG_LEVEL": "WARNING",
}


def run_checkov(template):
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: `make test` creates .venv-checkov from requirements-checkov.txt")
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"), **OFFLINE}
    result = subprocess.run(
        [
            str(CHECKOV),
            *("--file", str(template), "--framework", "cloudformation", "--skip-download"),
            *("--compact", "--output", "json"),
        ],
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
        check=False,
    )
    # Exit code 1 means failed checks (reported below); anything else but 0 is checkov itself failing.
    assert result.returncode in (0, 1), result.stderr[-3000:]
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def prod_scan(prod):
    _, template, outdir = prod
    report = run_checkov(outdir / "PaymentWorkflow-prod.template.json")
    return template, report


def test_checkov_scanned_the_whole_prod_template(prod_scan):
    template, report = prod_scan
    summary = report["summary"]
    assert summary["parsing_errors"] == 0
    assert report["check_type"] == "cloudformation"
    assert summary["resource_count"] == len(template.to_json()["Resources"])
    assert summary["passed"] > 100  # it did check the resources


def test_checkov_reports_no_failed_check_on_the_prod_template(prod_scan):
    _, report = prod_scan
    failed = [f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in report["results"].get("failed_checks", [])]
    assert failed == [], "fix these, or skip them on the resource with infra.scanners.skip_checkov and a reason"


def test_every_skip_says_why_and_is_one_we_decided_on(prod_scan):
    _, report = prod_scan
    skipped = report["results"].get("skipped_checks", [])
    for check in skipped:
        comment = check["check_result"].get("suppress_comment", "")
        # checkov writes "No comment provided" for a skip without one.
        assert len(comment) >= MIN_REASON_LENGTH and comment != "No comment provided", check["resource"]
    by_check = Counter((c["check_id"], c["resource"].split(".", 1)[0]) for c in skipped)
    assert dict(by_check) == EXPECTED_SKIPS


def test_skip_checkov_writes_the_metadata_checkov_reads_and_keeps_every_skip(tmp_path):
    import aws_cdk as cdk
    from aws_cdk import aws_sqs as sqs

    stack = cdk.Stack(cdk.App(outdir=str(tmp_path)), "Scanned")
    queue = sqs.Queue(stack, "Queue")
    skip_checkov(queue, "CKV_AWS_27", "A reason long enough to tell a reviewer what the exception is for.")
    skip_checkov(queue, "CKV_AWS_1", "A second check on the same resource, with a reason of its own too.")
    skip_checkov(queue, "CKV_AWS_27", "Said again: the latest reason replaces the earlier one for that check.")
    metadata = cdk.assertions.Template.from_stack(stack).to_json()["Resources"]
    [resource] = [r for r in metadata.values() if r["Type"] == "AWS::SQS::Queue"]
    assert resource["Metadata"]["checkov"] == {
        "skip": [
            {"id": "CKV_AWS_1", "comment": "A second check on the same resource, with a reason of its own too."},
            {"id": "CKV_AWS_27", "comment": "Said again: the latest reason replaces the earlier one for that check."},
        ]
    }
    assert set(checkov_skips(queue)) == {"CKV_AWS_1", "CKV_AWS_27"}
    with pytest.raises(ValueError, match="say why"):
        skip_checkov(queue, "CKV_AWS_2", "n/a")
