"""The dashboard the runbook reads (infra.monitoring, docs/operations.md).

Every alarm's metric is drawn on one of the dashboard's graphs, so an operator paged by an alarm finds
its figure there; the figures no alarm watches that the runbook refers to are drawn too (what status sync
found and did, reconciliation by category, aborted executions, best-effort cleanups, the functions'
warnings and errors); and the runbook names every alarm and every widget, so that neither can be added
without it.
"""

import json
import re

from infra import REPO_ROOT
from infra.monitoring import BEST_EFFORT_METRICS, RUNBOOK, STATUS_SYNC_RUN_METRICS
from payments import status_resolution, topology
from payments.cards import find_card_numbers
from tests.infra.policies import text
from tests.infra.test_stack import logical_id, resources
from tests.infra.test_status_sync_stack import _status_sync_handler


def dashboard_body(template):
    [dashboard] = resources(template, "AWS::CloudWatch::Dashboard").values()
    # References rendered as <LogicalId> and <LogicalId.Attribute>, as tests.infra.policies writes them.
    return json.loads(text(dashboard["Properties"]["DashboardBody"], {}))


def graph_metrics(body):
    """(widget title, namespace, metric name, {dimension: value}) of every metric on a graph."""
    drawn = []
    for widget in body["widgets"]:
        if widget["type"] != "metric":
            continue
        for metric in widget["properties"]["metrics"]:
            fields = [field for field in metric if not isinstance(field, dict)]
            namespace, name, *dimensions = fields
            pairs = dict(zip(dimensions[::2], dimensions[1::2], strict=True))
            drawn.append((widget["properties"]["title"], namespace, name, pairs))
    return drawn


def alarmed_metrics(template):
    """(namespace, metric name, {dimension: value}) of every alarm, references rendered as on the dashboard."""
    return [
        (
            alarm["Properties"]["Namespace"],
            alarm["Properties"]["MetricName"],
            {d["Name"]: text(d["Value"], {}) for d in alarm["Properties"].get("Dimensions", [])},
        )
        for alarm in resources(template, "AWS::CloudWatch::Alarm").values()
    ]


def runbook():
    """The runbook's text, with line breaks and runs of spaces as one space (a title may wrap)."""
    return " ".join((REPO_ROOT / RUNBOOK).read_text().split())


def monitoring_of(stack):
    return stack.node.find_child("Monitoring")


def test_every_alarm_draws_its_metric_on_the_dashboard(prod):
    _, template, _ = prod
    drawn = {
        (namespace, name, json.dumps(dims, sort_keys=True))
        for _, namespace, name, dims in graph_metrics(dashboard_body(template))
    }
    alarms = alarmed_metrics(template)
    assert len(alarms) > 50
    missing = [alarm for alarm in alarms if (alarm[0], alarm[1], json.dumps(alarm[2], sort_keys=True)) not in drawn]
    assert missing == []


def test_the_dashboard_draws_what_status_sync_and_reconciliation_report_and_no_alarm_watches(prod):
    stack, template, _ = prod
    drawn = graph_metrics(dashboard_body(template))
    service = {"service": topology.SERVICE_NAME}

    def titles_drawing(name, dimensions=None):
        return {
            title
            for title, namespace, metric, dims in drawn
            if metric == name and (dimensions is None or dims == dimensions)
        }

    # What ResolveUnresolved counts for each outcome (lambdas/status_sync), and what FindUnresolved found.
    handler = _status_sync_handler()
    outcomes = {"StatusSync" + handler._metric_name(outcome) for outcome in status_resolution.Outcome.__args__}
    assert set(STATUS_SYNC_RUN_METRICS) == outcomes | {"StatusSyncUnresolvedFound"}
    for name in STATUS_SYNC_RUN_METRICS:
        assert "Status sync: found unresolved, and what became of each" in titles_drawing(name, service), name
    # Every category reconciliation publishes, daily, and what its alarm watches.
    for name in [*topology.RECONCILIATION_METRICS.values(), topology.RECONCILIATION_ALARM_METRIC]:
        assert titles_drawing(name, service), name
    assert set(topology.RECONCILIATION_METRICS.values()) <= {
        name for title, _, name, _ in drawn if title == "Reconciliation by category"
    }
    for name in BEST_EFFORT_METRICS:
        assert titles_drawing(name, service) == {"Audit records lost, vault cleanups failed"}, name
    # Aborted executions (what a redrive is for) of the payment and the operation state machines.
    for workflow, title in (
        (stack.workflow, "Payment executions"),
        (stack.operation_workflow, "Operation executions"),
    ):
        machine = {"StateMachineArn": f"<{logical_id(stack, workflow.state_machine)}>"}
        assert title in titles_drawing("ExecutionsAborted", machine)
    # Reconciliation runs once a day: its graphs show two weeks.
    for widget in dashboard_body(template)["widgets"]:
        if widget["properties"].get("title", "").startswith("Reconciliation"):
            assert widget["properties"]["start"] == "-P14D"


def test_the_log_widget_reads_every_function_and_shows_warnings_and_errors(prod):
    stack, template, _ = prod
    [widget] = [w for w in dashboard_body(template)["widgets"] if w["type"] == "log"]
    query = widget["properties"]["query"]
    sources = re.findall(r"SOURCE '([^']*)'", query)
    assert len(sources) == len(topology.ALL_FUNCTIONS) <= 50  # Logs Insights reads at most 50 log groups
    functions = [stack.steps.intake, *stack.steps.step_functions.values(), stack.steps.ledger_events]
    assert sources == [f"/aws/lambda/<{logical_id(stack, function)}>" for function in functions]
    assert 'level in ["WARNING", "ERROR", "CRITICAL"]' in query
    assert "correlation_id" in query  # the payment's TransactionID (Powertools' correlation id)


def test_the_runbook_names_every_alarm_and_every_widget(prod):
    stack, template, _ = prod
    text_of_runbook = runbook()
    alarm_ids = [alarm.node.id for alarm in monitoring_of(stack).alarms]
    assert len(alarm_ids) == len(resources(template, "AWS::CloudWatch::Alarm"))
    unnamed = [alarm_id for alarm_id in alarm_ids if not re.search(rf"`{re.escape(alarm_id)}`", text_of_runbook)]
    assert unnamed == []
    titles = [w["properties"]["title"] for w in dashboard_body(template)["widgets"] if "title" in w["properties"]]
    assert len(titles) == len(set(titles))
    assert [title for title in titles if f"`{title}`" not in text_of_runbook] == []


def test_the_runbook_holds_no_card_number():
    assert find_card_numbers((REPO_ROOT / RUNBOOK).read_text()) == []
