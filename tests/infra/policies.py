"""Policy documents of a synthesized template as plain text, for tables a reviewer can read.

A role is written `role:<name>` (the step roles by step, `role:StateMachine` for the payment state
machine's, `role:OperationStateMachine`, `role:StatusSyncStateMachine` and `role:ReconciliationStateMachine`
for the other state machines', `role:AuditReader`, the archive's and the schedules' roles by construct
id); an ARN that CloudFormation joins is written out with `<AWS::Partition>`, `<AWS::Region>` and
`<AWS::AccountId>` for the pseudo parameters and `<LogicalId>`/`<LogicalId.Attr>` for references to
other resources.
"""

from tests.infra.test_stack import logical_id


def role_labels(stack):
    """Logical ID of each role the policies may name -> its label."""
    labels = {logical_id(stack, role): f"role:{step}" for step, role in stack.steps.roles.items()}
    labels[logical_id(stack, stack.workflow.state_machine.role)] = "role:StateMachine"
    labels[logical_id(stack, stack.operation_workflow.state_machine.role)] = "role:OperationStateMachine"
    labels[logical_id(stack, stack.status_sync.state_machine.role)] = "role:StatusSyncStateMachine"
    labels[logical_id(stack, stack.reconciliation.state_machine.role)] = "role:ReconciliationStateMachine"
    for role in stack.schedules.roles.values():  # role:StatusSyncStarter, role:ReconciliationStarter
        labels[logical_id(stack, role)] = f"role:{role.node.id}"
    labels[logical_id(stack, stack.audit_reader.role)] = "role:AuditReader"
    if stack.archive is not None:
        for role in [*stack.archive.readers.values(), *stack.archive.writers.values()]:
            labels[logical_id(stack, role)] = f"role:{role.node.id}"
    return labels


def text(value, labels):
    """A policy value as text (lists stay lists)."""
    if isinstance(value, list):
        return [text(v, labels) for v in value]
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(text(part, labels) for part in parts)
    if "Ref" in value:
        return f"<{value['Ref']}>"
    if "Fn::GetAtt" in value:
        resource, attribute = value["Fn::GetAtt"]
        if attribute == "Arn" and resource in labels:
            return labels[resource]
        return f"<{resource}.{attribute}>"
    raise AssertionError(f"unexpected intrinsic {value}")


def as_list(value):
    return value if isinstance(value, list) else [value]


def statement_text(statement, labels):
    """(Sid, Effect, principal, sorted actions, conditions) of one statement, as text."""
    principal = statement.get("Principal")
    if isinstance(principal, dict):
        [(kind, who)] = principal.items()
        principal = (kind, sorted(as_list(text(who, labels))))
    conditions = {
        operator: {key: sorted(as_list(text(v, labels))) for key, v in values.items()}
        for operator, values in statement.get("Condition", {}).items()
    }
    resources = sorted(as_list(text(statement["Resource"], labels))) if "Resource" in statement else None
    return (
        statement.get("Sid"),
        statement["Effect"],
        principal,
        sorted(as_list(statement["Action"])),
        resources,
        conditions,
    )
