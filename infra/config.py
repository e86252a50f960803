"""Per-environment settings, from cdk.json's context (`cdk deploy -c env=prod`)."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any

from aws_cdk import Aws, RemovalPolicy

from infra import REPO_ROOT

CONTEXT_KEY = "payment-workflow:environments"
# The environments that may deploy into whichever account the caller's credentials are for.
ACCOUNT_FROM_CREDENTIALS = frozenset({"dev"})
FUNCTION_NETWORKS = frozenset({"vpc", "none"})
# The people and services named in the key policies and the AuditReader's trust (docs/keys-and-access.md):
# an IAM role or user of the environment's own account as "role/Name" or "user/name", or a full IAM ARN.
PRINCIPAL_LISTS = ("key_administrators", "audit_readers", "upstream_principals", "operators")
_PRINCIPAL_PATH = re.compile(r"(role|user)/[\w+=,.@/-]+")
_PRINCIPAL_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]+")


@dataclass(frozen=True)
class EnvironmentConfig:
    name: str
    account: str | None
    region: str
    converge_url: str
    log_retention: str  # a CloudWatch Logs RetentionDays name, e.g. ONE_MONTH
    retain_data: bool  # retained on update or delete (not a failed first create), deletion protection
    alarm_email: str
    lambda_memory_mb: int
    processor_latency_alarm_ms: int = 3000
    # "vpc": every function in private subnets, the internet reachable only at the Converge host (infra.network);
    # "none": Lambda's own network, no VPC (dev: no card data, the demo processor). Unset means "vpc".
    function_network: str = "vpc"
    vpc_availability_zones: tuple[str, ...] = ()  # literal names: the firewall's routes are per zone
    # Object Lock (COMPLIANCE) retention of the CloudTrail log files, in days: every environment has a trail.
    trail_retention_days: int = 0
    # The immutable archive of the ledger and the audit trail (infra.archive), in days; None: no archive.
    archive_retention_days: int | None = None
    # May manage the three keys (never use them), besides the CDK deployment role (infra.keys).
    key_administrators: tuple[str, ...] = ()
    # May assume the AuditReader role, with MFA; none named: any principal of the account allowed to.
    audit_readers: tuple[str, ...] = ()
    # The roles the upstream policy is attached to: start payments, read their executions (infra.access).
    upstream_principals: tuple[str, ...] = ()
    # People who run the workflow: read executions (a failed payment's cause), put the Converge credentials.
    operators: tuple[str, ...] = ()
    # Lambda SnapStart on the step functions (infra.functions): each deployment publishes a version of each,
    # snapshotted once initialized, and the state machines invoke it through an alias. Unset means off (dev).
    snap_start: bool = False

    @property
    def functions_in_vpc(self) -> bool:
        if self.function_network not in FUNCTION_NETWORKS:
            raise SystemExit(
                f"environment {self.name!r}: function_network must be one of {sorted(FUNCTION_NETWORKS)} "
                f"(got {self.function_network!r})"
            )
        return self.function_network == "vpc"

    @property
    def removal_policy(self) -> RemovalPolicy:
        """Prod keeps its data on a stack update or delete, but not when the stack's first create fails.

        Tables, log groups and the secret have fixed names: kept after a failed first create (RETAIN),
        they would make the rollback leave them behind and every retry fail with "already exists".
        RETAIN_ON_UPDATE_OR_DELETE (DeletionPolicy RetainExceptOnCreate) deletes them on that rollback only.
        """
        return RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE if self.retain_data else RemovalPolicy.DESTROY

    @property
    def is_production(self) -> bool:
        return self.name == "prod"

    @property
    def archived(self) -> bool:
        """Whether the ledger and the audit trail stream to the immutable archive (infra.archive)."""
        return self.archive_retention_days is not None


def principal_arn(entry: str, account: str) -> str:
    """An entry of a principal list as an IAM ARN: "role/Name" is a role of `account` (the stack's)."""
    if _PRINCIPAL_ARN.fullmatch(entry):
        return entry
    return f"arn:{Aws.PARTITION}:iam::{account}:{entry}"


def load(name: str, environments: dict[str, Any] | None = None) -> EnvironmentConfig:
    """The named environment, from the CDK context or, when run without the CLI, from cdk.json."""
    if not environments:
        environments = json.loads((REPO_ROOT / "cdk.json").read_text())["context"][CONTEXT_KEY]
    if name not in environments:
        raise SystemExit(f"unknown environment {name!r}; cdk.json defines {sorted(environments)} (use -c env=NAME)")
    settings = dict(environments[name])
    account = settings.pop("account", None)
    if account is None and name in ACCOUNT_FROM_CREDENTIALS:
        account = os.environ.get("CDK_DEFAULT_ACCOUNT")
    elif not (isinstance(account, str) and re.fullmatch(r"\d{12}", account)):
        # Taken from the caller's credentials, `cdk deploy -c env=prod` with dev credentials would deploy
        # "prod" into the dev account. Named, the CLI refuses credentials for any other account.
        raise SystemExit(
            f'environment {name!r} must name its AWS account: set "account" (12 digits) under '
            f"{CONTEXT_KEY}.{name} in cdk.json (got {account!r}); only {sorted(ACCOUNT_FROM_CREDENTIALS)} "
            "may take the account from the caller's credentials"
        )
    region = settings.pop("region", None) or os.environ.get("CDK_DEFAULT_REGION") or "us-east-1"
    for field in PRINCIPAL_LISTS:
        settings[field] = _principals(name, field, settings.get(field, []))
    _require_retention(name, "trail_retention_days", settings.get("trail_retention_days"))
    if settings.get("archive_retention_days") is not None:
        _require_retention(name, "archive_retention_days", settings["archive_retention_days"])
    if not isinstance(settings.get("snap_start", False), bool):
        raise SystemExit(f"environment {name!r}: snap_start must be true or false (got {settings['snap_start']!r})")
    return EnvironmentConfig(name=name, account=account, region=region, **settings)


def _principals(name: str, field: str, entries: Any) -> tuple[str, ...]:
    if not isinstance(entries, list) or not all(
        isinstance(e, str) and (_PRINCIPAL_PATH.fullmatch(e) or _PRINCIPAL_ARN.fullmatch(e)) for e in entries
    ):
        raise SystemExit(
            f'environment {name!r}: {field} must be a list of "role/Name", "user/name" or IAM ARNs (got {entries!r})'
        )
    return tuple(entries)


def _require_retention(name: str, field: str, days: Any) -> None:
    # Object Lock in COMPLIANCE mode: no one, the root user included, can shorten it once objects are written.
    if not (isinstance(days, int) and not isinstance(days, bool) and 1 <= days <= 36500):
        raise SystemExit(f"environment {name!r}: {field} must be a whole number of days, 1 to 36500 (got {days!r})")
