"""Per-environment settings, from cdk.json's context (`cdk deploy -c env=prod`)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from aws_cdk import RemovalPolicy

from infra import REPO_ROOT

CONTEXT_KEY = "payment-workflow:environments"


@dataclass(frozen=True)
class EnvironmentConfig:
    name: str
    account: str | None
    region: str
    converge_url: str
    log_retention: str  # a CloudWatch Logs RetentionDays name, e.g. ONE_MONTH
    retain_data: bool  # RETAIN removal policy and deletion protection on tables and keys
    alarm_email: str
    lambda_memory_mb: int
    processor_latency_alarm_ms: int = 3000

    @property
    def removal_policy(self) -> RemovalPolicy:
        return RemovalPolicy.RETAIN if self.retain_data else RemovalPolicy.DESTROY

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
    account = settings.pop("account", None) or os.environ.get("CDK_DEFAULT_ACCOUNT")
    region = settings.pop("region", None) or os.environ.get("CDK_DEFAULT_REGION") or "us-east-1"
    return EnvironmentConfig(name=name, account=account, region=region, **settings)
