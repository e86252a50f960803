"""The console's state machine graph: drawn from the real ASL, with the path an execution took marked on it."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import combinations, pairwise
from pathlib import Path
from typing import Any

import pytest

from local.console.graph import state_graph

STATEMACHINE = Path(__file__).resolve().parents[2] / "statemachine"
MACHINES = ("payment", "operation", "status_sync", "reconciliation")
SVG = "{http://www.w3.org/2000/svg}"

APPROVED = [
    "Tokenize",
    "LedgerInitiated",
    "LedgerPending",
    "CallProcessor",
    "Normalize",
    "IsApproved",
    "LedgerSuccess",
    "AnyCallsToAudit",
    "Audit",
    "IsSettled",
    "PaymentSettled",
]
DECLINED = [*APPROVED[:6], "LedgerDeclined", "AnyCallsToAudit", "IsSettled", "PaymentSettled"]


@dataclass
class Visit:
    name: str
    attempts: int = 0
    errors: list[str] = field(default_factory=list)


def definition(machine: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((STATEMACHINE / f"{machine}.asl.json").read_text())
    return loaded


def walk(names: list[str], unlike: dict[str, Visit] | None = None) -> list[Visit]:
    """A visit per name, each Task's one successful attempt, except the visits `unlike` gives."""
    tasks = _task_names(definition("payment")) | _task_names(definition("status_sync"))
    given = unlike or {}
    return [given.get(name) or Visit(name, 1 if name in tasks else 0) for name in names]


def _task_names(scope: dict[str, Any]) -> set[str]:
    return set(_states_of(scope, lambda state: state["Type"] == "Task"))


def _states_of(scope: dict[str, Any], wanted: Callable[[dict[str, Any]], bool] = lambda state: True) -> list[str]:
    names = []
    for name, state in scope["States"].items():
        if wanted(state):
            names.append(name)
        for inner in [state.get("ItemProcessor") or state.get("Iterator") or {}, *state.get("Branches", [])]:
            if inner:
                names += _states_of(inner, wanted)
    return names


def render(definition: dict[str, Any], visits: list[Visit], status: str | None = None) -> ET.Element:
    return ET.fromstring(str(state_graph(definition, visits, status)))


def classes(element: ET.Element) -> set[str]:
    return set((element.get("class") or "").split())


def nodes(root: ET.Element) -> dict[str, ET.Element]:
    return {g.get("data-state", ""): g for g in root.iter(f"{SVG}g") if g.get("data-state") is not None}


def top_level_nodes(root: ET.Element) -> list[ET.Element]:
    level = root.find(f"{SVG}g[@class='level']")
    assert level is not None
    return [g for g in level.findall(f"{SVG}g") if g.get("data-state") is not None]


def edges(root: ET.Element) -> list[ET.Element]:
    return [path for path in root.iter(f"{SVG}path") if "edge" in classes(path)]


def edge(root: ET.Element, source: str, target: str, kind: str | None = None) -> ET.Element:
    found = [e for e in edges(root) if (e.get("data-from"), e.get("data-to")) == (source, target)]
    found = [e for e in found if kind is None or f"edge--{kind}" in classes(e)]
    assert len(found) == 1, f"{len(found)} edges {source} → {target} ({kind})"
    return found[0]


def taken_pairs(root: ET.Element) -> set[tuple[str | None, str | None]]:
    return {(e.get("data-from"), e.get("data-to")) for e in edges(root) if "edge--taken" in classes(e)}


def visited(root: ET.Element) -> set[str]:
    return {name for name, g in nodes(root).items() if "state--visited" in classes(g)}


def texts(node: ET.Element, css_class: str) -> list[str]:
    return [t.text or "" for t in node.iter(f"{SVG}text") if css_class in classes(t)]


def box(node: ET.Element) -> tuple[float, float, float, float]:
    rect = node.find(f"{SVG}rect")
    assert rect is not None
    x, y = float(rect.get("x", "")), float(rect.get("y", ""))
    return x, y, x + float(rect.get("width", "")), y + float(rect.get("height", ""))


@pytest.mark.parametrize("machine", MACHINES)
def test_every_state_is_drawn_once_nested_ones_too(machine: str) -> None:
    root = render(definition(machine), [])

    drawn = [g.get("data-state", "") for g in root.iter(f"{SVG}g") if g.get("data-state") is not None]

    assert sorted(drawn) == sorted(_states_of(definition(machine)))
    assert root.get("role") == "img"
    assert root.get("aria-label")
    assert root.get("viewBox") == f"0 0 {root.get('width')} {root.get('height')}"


@pytest.mark.parametrize("machine", MACHINES)
def test_top_level_states_do_not_overlap(machine: str) -> None:
    root = render(definition(machine), [])

    for first, second in combinations(top_level_nodes(root), 2):
        (ax1, ay1, ax2, ay2), (bx1, by1, bx2, by2) = box(first), box(second)
        apart = ax2 <= bx1 or bx2 <= ax1 or ay2 <= by1 or by2 <= ay1
        assert apart, f"{first.get('data-state')} overlaps {second.get('data-state')}"


@pytest.mark.parametrize("machine", MACHINES)
def test_every_edge_points_with_an_arrowhead_the_graph_defines(machine: str) -> None:
    root = render(definition(machine), walk(APPROVED) if machine == "payment" else [])
    marker_ids = {marker.get("id") for marker in root.iter(f"{SVG}marker")}

    for path in edges(root):
        assert path.get("marker-end", "").removeprefix("url(#").removesuffix(")") in marker_ids


def test_an_approved_payment_marks_its_path_and_only_its_path() -> None:
    root = render(definition("payment"), walk(APPROVED), "SUCCEEDED")

    assert visited(root) == set(APPROVED)
    assert taken_pairs(root) == {*pairwise(APPROVED), (None, "Tokenize"), ("PaymentSettled", None)}
    assert "state--failed" not in {c for g in nodes(root).values() for c in classes(g)}


def test_a_declined_payment_takes_the_declined_branch() -> None:
    root = render(definition("payment"), walk(DECLINED), "SUCCEEDED")

    assert "edge--taken" in classes(edge(root, "IsApproved", "LedgerDeclined"))
    assert "edge--choice" in classes(edge(root, "IsApproved", "LedgerDeclined"))
    assert "edge--taken" not in classes(edge(root, "IsApproved", "LedgerSuccess"))
    assert "LedgerSuccess" not in visited(root)


def test_a_processor_call_that_succeeded_on_its_third_attempt_is_retried_not_failed() -> None:
    retried = Visit("CallProcessor", 3, ["ProcessorUnavailable", "ProcessorUnavailable"])
    root = render(definition("payment"), walk(APPROVED, {"CallProcessor": retried}), "SUCCEEDED")

    node = nodes(root)["CallProcessor"]
    assert {"state--visited", "state--retried"} <= classes(node)
    assert "state--failed" not in classes(node)
    [detail] = texts(node, "state__detail")
    assert detail == "3 attempts · ProcessorUnavailable"  # errors de-duplicated
    tooltip = node.find(f"{SVG}title")
    assert tooltip is not None and (tooltip.text or "").count("ProcessorUnavailable") == 2


def test_a_detail_longer_than_its_node_is_cut_and_the_tooltip_keeps_it_whole() -> None:
    errors = ["Lambda.ServiceException", "States.Timeout", "ProcessorUnavailable"]
    retried = Visit("CallProcessor", 4, errors)
    root = render(definition("payment"), walk(APPROVED, {"CallProcessor": retried}), "SUCCEEDED")

    node = nodes(root)["CallProcessor"]
    [detail] = texts(node, "state__detail")
    assert detail.startswith("4 attempts · Lambda.Service") and detail.endswith("…")
    tooltip = node.find(f"{SVG}title")
    assert tooltip is not None and all(error in (tooltip.text or "") for error in errors)


def test_a_task_whose_every_attempt_failed_is_failed_and_its_catch_edge_taken() -> None:
    failed = Visit("CallProcessor", 2, ["ProcessorTimeout", "ProcessorTimeout"])
    path = [*APPROVED[:4], "LedgerFailed", "AnyCallsToAudit", "IsSettled", "PaymentFailed"]
    root = render(definition("payment"), walk(path, {"CallProcessor": failed}), "FAILED")

    assert {"state--failed", "state--retried"} <= classes(nodes(root)["CallProcessor"])
    assert "state--failed" in classes(nodes(root)["PaymentFailed"])  # a Fail state reached fails
    catch = edge(root, "CallProcessor", "LedgerFailed")
    assert {"edge--taken", "edge--catch"} <= classes(catch)
    assert "edge--taken" not in classes(edge(root, "CallProcessor", "Normalize"))
    assert ("PaymentFailed", None) in taken_pairs(root)


def test_a_caught_failure_takes_the_catch_edge_not_the_next_one_to_the_same_state() -> None:
    audit_failed = Visit("Audit", 1, ["StorageUnavailable"])
    root = render(definition("payment"), walk(APPROVED, {"Audit": audit_failed}), "SUCCEEDED")

    assert "edge--taken" in classes(edge(root, "Audit", "IsSettled", "catch"))
    assert "edge--taken" not in classes(edge(root, "Audit", "IsSettled", "next"))


def test_a_running_execution_marks_the_state_it_is_in_and_has_not_ended() -> None:
    root = render(definition("payment"), walk(APPROVED[:4]), "RUNNING")

    current = [name for name, g in nodes(root).items() if "state--current" in classes(g)]
    assert current == ["CallProcessor"]
    assert not [e for e in edges(root) if "edge--end" in classes(e) and "edge--taken" in classes(e)]


def test_a_map_draws_its_iterations_inside_it() -> None:
    first_iteration = ["ResolveUnresolved", "AnyCallsToAudit", "AuditResolution", "Resolved"]
    second_iteration = ["ResolveUnresolved", "AnyCallsToAudit", "Resolved"]
    visits = walk(["FindUnresolved", "ResolveEach", *first_iteration, *second_iteration, "SyncEnded"])
    root = render(definition("status_sync"), visits, "SUCCEEDED")

    taken = taken_pairs(root)
    assert {("FindUnresolved", "ResolveEach"), ("ResolveEach", "SyncEnded")} <= taken
    assert {("ResolveUnresolved", "AnyCallsToAudit"), ("AnyCallsToAudit", "Resolved")} <= taken
    assert ("Resolved", "ResolveUnresolved") not in taken  # the next iteration is no edge
    assert ("ResolveUnresolved", "ResolutionFailed") not in taken
    assert texts(nodes(root)["ResolveUnresolved"], "state__detail") == ["×2"]
    assert [g.get("data-state") for g in top_level_nodes(root)] == ["FindUnresolved", "ResolveEach", "SyncEnded"]
    left, top, right, bottom = box(nodes(root)["ResolveEach"])
    for name in ("ResolveUnresolved", "AnyCallsToAudit", "AuditResolution", "Resolved", "ResolutionFailed"):
        x1, y1, x2, y2 = box(nodes(root)[name])
        assert left < x1 < x2 < right and top < y1 < y2 < bottom, name


def test_names_are_escaped() -> None:
    name = '<script>&"'
    scope = {"StartAt": name, "States": {name: {"Type": "Fail", "Error": "x", "Cause": "y"}}}

    markup = str(state_graph(scope, [Visit(name, 0, ['<b>"boom"</b>'])], "FAILED"))

    assert "<script>" not in markup and "<b>" not in markup
    assert list(nodes(ET.fromstring(markup))) == [name]


def test_a_cycle_is_drawn_without_hanging() -> None:
    scope = {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Next": "B"},
            "B": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.again", "BooleanEquals": True, "Next": "A"}],
                "Default": "Done",
            },
            "Done": {"Type": "Succeed"},
        },
    }

    root = render(scope, walk(["A", "B", "A", "B", "Done"]), "SUCCEEDED")

    assert "edge--taken" in classes(edge(root, "A", "B"))
    assert {"edge--taken", "edge--back"} <= classes(edge(root, "B", "A"))
    assert texts(nodes(root)["A"], "state__detail") == ["×2"]


def test_a_state_start_does_not_reach_is_still_drawn_below() -> None:
    scope = {
        "StartAt": "A",
        "States": {"A": {"Type": "Succeed"}, "Orphan": {"Type": "Pass", "Next": "A"}},
    }

    root = render(scope, [])

    assert box(nodes(root)["Orphan"])[1] > box(nodes(root)["A"])[3]
    edge(root, "Orphan", "A")


def test_the_same_input_draws_the_same_graph() -> None:
    visits = walk(APPROVED, {"CallProcessor": Visit("CallProcessor", 2, ["ProcessorTimeout"])})

    assert state_graph(definition("payment"), visits, "SUCCEEDED") == state_graph(
        definition("payment"), visits, "SUCCEEDED"
    )


@pytest.mark.parametrize("machine", MACHINES)
def test_no_inline_style_or_script(machine: str) -> None:
    markup = str(state_graph(definition(machine), walk(APPROVED), "RUNNING"))

    assert "style=" not in markup and "<style" not in markup and "<script" not in markup
    for element in ET.fromstring(markup).iter():
        assert "style" not in element.attrib
