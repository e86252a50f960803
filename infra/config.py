"""Per-environment settings, from cdk.json's context (`cdk deploy -c env=prod`)."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any

from aws_cdk import RemovalPolicy

from infra import REPO_ROOT

CONTEXT_KEY = "payment-workflow:environments"
# The environments that may deploy into whichever account the caller's credentials are for.
ACCOUNT_FROM_CREDENTIALS = frozenset({"dev"})


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
    return EnvironmentConfig(name=name, account=account, region=region, **settings)
