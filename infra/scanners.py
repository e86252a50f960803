"""Inline exceptions for the template scanners, written on the resource they are about, each with its reason.

checkov (tests/infra/test_checkov.py, docs/network-and-scanners.md) reads a CloudFormation
resource's `Metadata: {"checkov": {"skip": [{"id": ..., "comment": ...}]}}` and reports the check
as skipped with that comment. cfn-lint reads `Metadata: {"cfn-lint": {"config": {"ignore_checks":
[...]}}}`, and CDK's own template validation at synth (which reports cfn-lint's rules as
"CloudFormation-Validate::<rule>") takes an acknowledgement. Call these next to the construct, so
the reason sits with what it excuses.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, CfnResource, Validations
from constructs import IConstruct

# A reason is a sentence a reviewer can check, not "n/a" (the test asks the same of every skip).
MIN_REASON_LENGTH = 40


def skip_checkov(construct: IConstruct, check_id: str, reason: str) -> None:
    """Skip checkov's `check_id` on `construct`'s CloudFormation resource (its default child), for `reason`."""
    resource = _resource_of(construct)
    if len(reason.strip()) < MIN_REASON_LENGTH:
        raise ValueError(f"{check_id} on {construct.node.path}: say why it does not apply ({reason!r})")
    existing: dict[str, Any] = resource.get_metadata("checkov") or {}
    skips = [s for s in existing.get("skip", []) if s["id"] != check_id]
    resource.add_metadata("checkov", {**existing, "skip": [*skips, {"id": check_id, "comment": reason}]})


# cfn-lint W3005 on a function or state machine: CDK adds DependsOn on the role (so the role's policy
# exists before the first invocation) next to the GetAtt of its ARN. The extra edge orders nothing new.
REDUNDANT_ROLE_DEPENDENCY = (
    "CDK's construct adds DependsOn on its role, next to the Role GetAtt that already orders the two; "
    "the redundant edge is harmless and not ours to remove."
)


def ignore_cfn_lint(construct: IConstruct, rule_id: str, reason: str) -> None:
    """Ignore cfn-lint's `rule_id` (e.g. W3010) on `construct`'s resource, in cfn-lint and in CDK's validation."""
    resource = _resource_of(construct)
    if len(reason.strip()) < MIN_REASON_LENGTH:
        raise ValueError(f"{rule_id} on {construct.node.path}: say why it does not apply ({reason!r})")
    existing: dict[str, Any] = resource.get_metadata("cfn-lint") or {}
    config = existing.get("config", {})
    ignored = sorted({*config.get("ignore_checks", []), rule_id})
    resource.add_metadata("cfn-lint", {**existing, "config": {**config, "ignore_checks": ignored}})
    Validations.of(resource).acknowledge(Acknowledgment(id=f"CloudFormation-Validate::{rule_id}", reason=reason))


def checkov_skips(construct: IConstruct) -> dict[str, str]:
    """The checks skipped on `construct`'s resource, by id, with their reasons."""
    metadata: dict[str, Any] = _resource_of(construct).get_metadata("checkov") or {}
    return {skip["id"]: skip["comment"] for skip in metadata.get("skip", [])}


def _resource_of(construct: IConstruct) -> CfnResource:
    resource = construct if isinstance(construct, CfnResource) else construct.node.default_child
    if not isinstance(resource, CfnResource):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource to carry a checkov skip")
    return resource
