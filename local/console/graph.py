"""A state machine's graph as inline SVG, drawn from its ASL, with the path an execution took highlighted:
the Step Functions console's graph view.

The layout is a small Sugiyama one: rank states by longest path from StartAt (edges that close a cycle
left out), split edges that span ranks into chains of lanes, order each rank by barycenter, then place
each rank as near its neighbours as its widths allow. Map and Parallel states hold their inner graphs,
laid out the same way. The page's Content-Security-Policy allows no inline style: every look is a CSS
class, styled by static/graph.css.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations, pairwise
from typing import Any, Protocol

from markupsafe import Markup, escape

Point = tuple[float, float]

# Keys of the Start and End markers and of edge lanes: ASL state names cannot hold control characters.
START = "\x00start"
END = "\x00end"
_LANE = "\x00lane"

NAME_CHAR_WIDTH = 7.0  # px per character of a 12px state name
TYPE_CHAR_WIDTH = 6.0
DETAIL_CHAR_WIDTH = 5.8  # px per character of the 10px detail line
MIN_NODE_WIDTH = 220.0  # room for "2 attempts · ProcessorUnavailable" on the detail line
NODE_PADDING = 28.0
NODE_HEIGHT = 56.0
MARKER_DIAMETER = 18.0
LANE_WIDTH = 4.0
RANK_GAP = 44.0
NODE_GAP = 28.0
LANE_GAP = 14.0
SIDE_LANE_GAP = 24.0
SIDE_LANE_STEP = 10.0
SIDE_PORT_OFFSET = 6.0  # an edge round the side leaves below a node's middle and arrives above it
SIDE_BEND = 16.0
PARALLEL_EDGE_STEP = 12.0
CLUSTER_PADDING = 16.0
BRANCH_GAP = 24.0
MARGIN = 12.0
ORDERING_SWEEPS = 8
PLACEMENT_ROUNDS = 4

_TERMINAL_TYPES = ("Succeed", "Fail")
_FINISHED_STATUSES_EXCLUDED = (None, "RUNNING")


class Visit(Protocol):
    """One visit to a state (local.operations.StateRun is one)."""

    name: str
    attempts: int  # Task attempts scheduled in the visit, 0 for states that are not Tasks
    errors: list[str]  # the error names of its failed attempts, in order


# --- The graph, read from the ASL -------------------------------------------------------------------------


@dataclass(frozen=True)
class Transition:
    source: str
    target: str
    kind: str  # start, next, choice, default, catch or end
    errors: tuple[str, ...] = ()  # what a catch catches


@dataclass
class Level:
    """One scope of states: the machine's own, or a Map's or a Parallel branch's."""

    states: dict[str, Mapping[str, Any]]
    transitions: list[Transition]
    branches: dict[str, list[Level]]  # Map and Parallel states' inner graphs


def parse_level(scope: Mapping[str, Any]) -> Level:
    states: dict[str, Mapping[str, Any]] = {str(name): state for name, state in scope.get("States", {}).items()}
    start_at = str(scope.get("StartAt", ""))
    transitions = [Transition(START, start_at, "start")] if start_at in states else []
    for name, state in states.items():
        transitions.extend(_transitions_of(name, state, states))
    branches = {name: [parse_level(inner) for inner in _inner_scopes(state)] for name, state in states.items()}
    return Level(states, transitions, {name: levels for name, levels in branches.items() if levels})


def _inner_scopes(state: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    processor = state.get("ItemProcessor") or state.get("Iterator")
    return [processor] if processor else list(state.get("Branches", []))


def _transitions_of(name: str, state: Mapping[str, Any], states: Mapping[str, Any]) -> list[Transition]:
    found: list[Transition] = []
    targets = [("next", state.get("Next"))]
    targets += [("choice", rule.get("Next")) for rule in state.get("Choices", [])]
    targets += [("default", state.get("Default"))]
    for kind, target in targets:
        transition = Transition(name, str(target), kind)
        if target in states and transition not in found:
            found.append(transition)
    caught: dict[str, list[str]] = {}
    for catcher in state.get("Catch", []):
        if catcher.get("Next") in states:
            caught.setdefault(catcher["Next"], []).extend(catcher.get("ErrorEquals", []))
    found += [Transition(name, target, "catch", tuple(errors)) for target, errors in caught.items()]
    if _is_terminal(state):
        found.append(Transition(name, END, "end"))
    return found


def _is_terminal(state: Mapping[str, Any]) -> bool:
    return state.get("Type") in _TERMINAL_TYPES or state.get("End") is True


# --- What the execution did ----------------------------------------------------------------------------------


@dataclass
class StateTrace:
    visits: int = 0
    attempts: int = 0
    errors: list[str] = field(default_factory=list)
    retried: bool = False
    all_attempts_failed: bool = False  # in some visit: it is how a Task fails


def _all_attempts_failed(visit: Visit) -> bool:
    return visit.attempts > 0 and len(visit.errors) >= visit.attempts


def trace_states(visits: Sequence[Visit]) -> dict[str, StateTrace]:
    traces: dict[str, StateTrace] = {}
    for visit in visits:
        trace = traces.setdefault(visit.name, StateTrace())
        trace.visits += 1
        trace.attempts += visit.attempts
        trace.errors.extend(visit.errors)
        trace.retried |= visit.attempts > 1
        trace.all_attempts_failed |= _all_attempts_failed(visit)
    return traces


def taken_transitions(level: Level, visits: Sequence[Visit], execution_status: str | None) -> set[Transition]:
    path = [visit for visit in visits if visit.name in level.states]
    if not path:
        return set()
    taken = {transition for transition in level.transitions if transition.kind == "start"}
    for before, after in pairwise(path):
        taken.update(_transitions_between(level, before, after))
    # A terminal state led to End once a later state was entered, or once the execution ended.
    finished = execution_status not in _FINISHED_STATUSES_EXCLUDED
    ended = {visit.name for visit in visits[:-1]} | ({visits[-1].name} if finished else set())
    taken.update(t for t in level.transitions if t.kind == "end" and t.source in ended)
    return taken


def _transitions_between(level: Level, before: Visit, after: Visit) -> list[Transition]:
    candidates = [t for t in level.transitions if t.source == before.name and t.target == after.name]
    caught = [t for t in candidates if t.kind == "catch"]
    if caught and _all_attempts_failed(before):
        return caught
    return [t for t in candidates if t.kind != "catch"] or caught


# --- Layout ------------------------------------------------------------------------------------------------


@dataclass
class Slot:
    """A node's or an edge lane's place in its level: x is its centre, y its top."""

    width: float
    height: float
    rank: int = 0
    x: float = 0.0
    y: float = 0.0

    @property
    def left(self) -> float:
        return self.x - self.width / 2

    @property
    def right(self) -> float:
        return self.x + self.width / 2

    @property
    def bottom(self) -> float:
        return self.y + self.height

    @property
    def middle(self) -> float:
        return self.y + self.height / 2


@dataclass(frozen=True)
class Curve:
    """A chain of cubic Bézier segments, each (control 1, control 2, end)."""

    start: Point
    segments: tuple[tuple[Point, Point, Point], ...]
    around: bool = False  # an edge that goes up, drawn round the side

    def points(self) -> Iterable[Point]:
        yield self.start
        for segment in self.segments:
            yield from segment

    def path(self, dx: float, dy: float) -> str:
        commands = [f"M{_xy(self.start, dx, dy)}"]
        commands += [f"C{' '.join(_xy(point, dx, dy) for point in segment)}" for segment in self.segments]
        return "".join(commands)


@dataclass
class BranchPlacement:
    x: float  # the branch's origin in its parent level's coordinates
    y: float
    layout: LevelLayout


@dataclass
class LevelLayout:
    level: Level
    width: float
    height: float
    slots: dict[str, Slot]  # Start and End markers, states, edge lanes
    curves: dict[Transition, Curve]
    branches: dict[str, list[BranchPlacement]]


def layout_level(level: Level) -> LevelLayout:
    inner = {name: [layout_level(branch) for branch in branches] for name, branches in level.branches.items()}
    slots = _sized_slots(level, inner)
    topological = _rank(slots, _successors(level))
    lanes = _add_lanes(level, slots)
    neighbours = _neighbours(slots, lanes)
    rows = _order_rows(_first_order(slots, topological, lanes), neighbours)
    _place_rows(rows, slots, neighbours)
    _place_ranks(rows, slots)
    curves = _route(level, slots, lanes)
    width = max([slot.right for slot in slots.values()] + [x for curve in curves.values() for x, _ in curve.points()])
    height = max(slot.bottom for slot in slots.values())
    branches = {name: _place_branches(slots[name], layouts) for name, layouts in inner.items()}
    return LevelLayout(level, width, height, slots, curves, branches)


def _sized_slots(level: Level, inner: Mapping[str, list[LevelLayout]]) -> dict[str, Slot]:
    slots = {START: Slot(MARKER_DIAMETER, MARKER_DIAMETER)}
    for name, state in level.states.items():
        width = max(MIN_NODE_WIDTH, _label_width(name, str(state.get("Type", ""))))
        branches = inner.get(name)
        if branches:
            inner_width = sum(branch.width for branch in branches) + BRANCH_GAP * (len(branches) - 1)
            width = max(width, inner_width + 2 * CLUSTER_PADDING)
            slots[name] = Slot(width, NODE_HEIGHT + max(b.height for b in branches) + CLUSTER_PADDING)
        else:
            slots[name] = Slot(width, NODE_HEIGHT)
    if any(t.kind == "end" for t in level.transitions):
        slots[END] = Slot(MARKER_DIAMETER, MARKER_DIAMETER)
    return slots


def _label_width(name: str, state_type: str) -> float:
    return max(len(name) * NAME_CHAR_WIDTH, len(state_type) * TYPE_CHAR_WIDTH) + NODE_PADDING


def _successors(level: Level) -> dict[str, list[str]]:
    successors: dict[str, list[str]] = {}
    for transition in level.transitions:
        targets = successors.setdefault(transition.source, [])
        if transition.target not in targets:
            targets.append(transition.target)
    return successors


def _depth_first(roots: Iterable[str], successors: Mapping[str, list[str]]) -> tuple[list[str], set[tuple[str, str]]]:
    """Postorder, and the edges that close a cycle. Iterative, so no graph can exhaust the stack."""
    on_path: set[str] = set()
    done: set[str] = set()
    postorder: list[str] = []
    back_edges: set[tuple[str, str]] = set()
    for root in roots:
        if root in on_path or root in done:
            continue
        on_path.add(root)
        stack = [(root, iter(successors.get(root, [])))]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                on_path.discard(node)
                done.add(node)
                postorder.append(node)
            elif child in on_path:
                back_edges.add((node, child))
            elif child not in done:
                on_path.add(child)
                stack.append((child, iter(successors.get(child, []))))
    return postorder, back_edges


def _rank(slots: Mapping[str, Slot], successors: Mapping[str, list[str]]) -> list[str]:
    """Longest path from Start; states Start does not reach come after, ranked among themselves; End last.
    Returns the nodes in topological order (edges that close a cycle left out)."""
    reachable = set(_depth_first([START], successors)[0]) - {END}
    postorder, back_edges = _depth_first([START, *slots], successors)
    topological = list(reversed(postorder))
    _rank_longest_path(slots, topological, successors, back_edges, reachable, first_rank=0)
    unreachable = set(topological) - reachable - {END}
    first_unreached = max(slots[node].rank for node in reachable) + 1
    _rank_longest_path(slots, topological, successors, back_edges, unreachable, first_unreached)
    if END in slots:
        slots[END].rank = max(slots[node].rank for node in topological if node != END) + 1
    return topological


def _rank_longest_path(
    slots: Mapping[str, Slot],
    topological: list[str],
    successors: Mapping[str, list[str]],
    back_edges: set[tuple[str, str]],
    members: set[str],
    first_rank: int,
) -> None:
    for node in members:
        slots[node].rank = first_rank
    for node in (node for node in topological if node in members):
        for child in successors.get(node, []):
            if child in members and (node, child) not in back_edges:
                slots[child].rank = max(slots[child].rank, slots[node].rank + 1)


def _is_downward(transition: Transition, slots: Mapping[str, Slot]) -> bool:
    return slots[transition.target].rank > slots[transition.source].rank


def _add_lanes(level: Level, slots: dict[str, Slot]) -> dict[Transition, list[str]]:
    """Each edge spanning ranks runs through a lane slot in every rank between, which ordering keeps clear."""
    lanes: dict[Transition, list[str]] = {}
    for transition in level.transitions:
        if not _is_downward(transition, slots):
            continue
        chain = []
        for rank in range(slots[transition.source].rank + 1, slots[transition.target].rank):
            key = f"{_LANE}{len(slots)}"
            slots[key] = Slot(LANE_WIDTH, 0.0, rank)
            chain.append(key)
        lanes[transition] = chain
    return lanes


def _chain(transition: Transition, lanes: Mapping[Transition, list[str]]) -> list[str]:
    return [transition.source, *lanes[transition], transition.target]


@dataclass
class Neighbours:
    above: dict[str, list[str]]
    below: dict[str, list[str]]


def _neighbours(slots: Mapping[str, Slot], lanes: Mapping[Transition, list[str]]) -> Neighbours:
    neighbours = Neighbours({key: [] for key in slots}, {key: [] for key in slots})
    for transition in lanes:
        for upper, lower in pairwise(_chain(transition, lanes)):
            neighbours.below[upper].append(lower)
            neighbours.above[lower].append(upper)
    return neighbours


def _first_order(
    slots: Mapping[str, Slot], topological: list[str], lanes: Mapping[Transition, list[str]]
) -> list[list[str]]:
    """Each rank in topological order, each lane just after the state its edge leaves."""
    hint = {key: float(index) for index, key in enumerate(topological)}
    for transition, chain in lanes.items():
        for key in chain:
            hint[key] = hint[transition.source] + 0.5
    rows: list[list[str]] = [[] for _ in range(max(slot.rank for slot in slots.values()) + 1)]
    for key in sorted(slots, key=lambda key: hint[key]):
        rows[slots[key].rank].append(key)
    return rows


def _order_rows(rows: list[list[str]], neighbours: Neighbours) -> list[list[str]]:
    best, fewest = rows, _crossings(rows, neighbours)
    current = rows
    for sweep in range(ORDERING_SWEEPS):
        current = _barycenter_sweep(current, neighbours, downward=sweep % 2 == 0)
        crossings = _crossings(current, neighbours)
        if crossings < fewest:
            best, fewest = current, crossings
    return best


def _barycenter_sweep(rows: list[list[str]], neighbours: Neighbours, downward: bool) -> list[list[str]]:
    rows = [list(row) for row in rows]
    indices = range(1, len(rows)) if downward else range(len(rows) - 2, -1, -1)
    adjacent = neighbours.above if downward else neighbours.below
    for index in indices:
        rows[index] = _by_barycenter(rows[index], rows[index - 1 if downward else index + 1], adjacent)
    return rows


def _by_barycenter(row: list[str], fixed_row: list[str], adjacent: Mapping[str, list[str]]) -> list[str]:
    """A node with no neighbour in the fixed row keeps its own position."""
    fixed = {key: position for position, key in enumerate(fixed_row)}

    def barycenter(position: int) -> tuple[float, int]:
        placed = [fixed[other] for other in adjacent[row[position]] if other in fixed]
        return (sum(placed) / len(placed) if placed else float(position)), position

    return [row[position] for position in sorted(range(len(row)), key=barycenter)]


def _crossings(rows: list[list[str]], neighbours: Neighbours) -> int:
    total = 0
    for upper, lower in pairwise(rows):
        position = {key: index for index, key in enumerate(lower)}
        ends = [(index, position[other]) for index, key in enumerate(upper) for other in neighbours.below[key]]
        total += sum(1 for (a, b), (c, d) in combinations(ends, 2) if (a - c) * (b - d) < 0)
    return total


def _place_rows(rows: list[list[str]], slots: Mapping[str, Slot], neighbours: Neighbours) -> None:
    """Centre each rank, then pull each node towards its neighbours' mean, rank by rank down and up."""
    for row in rows:
        offsets = _offsets(row, slots)
        for key, offset in zip(row, offsets, strict=True):
            slots[key].x = offset - offsets[-1] / 2
    for round_ in range(PLACEMENT_ROUNDS):
        downward = round_ % 2 == 0
        adjacent = neighbours.above if downward else neighbours.below
        for row in rows if downward else reversed(rows):
            desired = [_mean([slots[other].x for other in adjacent[key]], slots[key].x) for key in row]
            _fit_row(row, desired, slots)
    leftmost = min(slot.left for slot in slots.values())
    for slot in slots.values():
        slot.x -= leftmost


def _mean(values: list[float], default: float) -> float:
    return sum(values) / len(values) if values else default


def _offsets(row: list[str], slots: Mapping[str, Slot]) -> list[float]:
    """Each centre's least distance from the first's."""
    offsets = [0.0]
    for left, right in pairwise(row):
        gap = LANE_GAP if left.startswith(_LANE) or right.startswith(_LANE) else NODE_GAP
        offsets.append(offsets[-1] + (slots[left].width + slots[right].width) / 2 + gap)
    return offsets


def _fit_row(row: list[str], desired: list[float], slots: Mapping[str, Slot]) -> None:
    """The centres nearest the desired ones (least squares) that keep the row's order and gaps."""
    offsets = _offsets(row, slots)
    fitted = _non_decreasing_fit([want - offset for want, offset in zip(desired, offsets, strict=True)])
    for key, offset, value in zip(row, offsets, fitted, strict=True):
        slots[key].x = value + offset


def _non_decreasing_fit(targets: list[float]) -> list[float]:
    """Isotonic regression by pooling adjacent violators."""
    blocks: list[tuple[float, int]] = []
    for target in targets:
        total, count = target, 1
        while blocks and blocks[-1][0] / blocks[-1][1] > total / count:
            previous_total, previous_count = blocks.pop()
            total, count = total + previous_total, count + previous_count
        blocks.append((total, count))
    return [total / count for total, count in blocks for _ in range(count)]


def _place_ranks(rows: list[list[str]], slots: Mapping[str, Slot]) -> None:
    top = 0.0
    for row in rows:
        height = max((slots[key].height for key in row), default=0.0)
        for key in row:
            if key.startswith(_LANE):
                slots[key].y, slots[key].height = top, height
            else:
                slots[key].y = top + (height - slots[key].height) / 2
        top += height + RANK_GAP


def _route(level: Level, slots: Mapping[str, Slot], lanes: Mapping[Transition, list[str]]) -> dict[Transition, Curve]:
    curves: dict[Transition, Curve] = {}
    side_lanes = 0
    for transition in level.transitions:
        if transition in lanes:
            shift = _parallel_shift(level, transition, lanes)
            curves[transition] = _downward(transition, slots, lanes[transition], shift)
        else:
            curves[transition] = _around(transition, slots, side_lanes)
            side_lanes += 1
    return curves


def _parallel_shift(level: Level, transition: Transition, lanes: Mapping[Transition, list[str]]) -> float:
    """Edges between the same two states (a Next and a Catch to one state) side by side, not on top."""
    twins = [
        t for t in level.transitions if t in lanes and (t.source, t.target) == (transition.source, transition.target)
    ]
    return (twins.index(transition) - (len(twins) - 1) / 2) * PARALLEL_EDGE_STEP


def _downward(transition: Transition, slots: Mapping[str, Slot], lane_keys: list[str], shift: float) -> Curve:
    source, target = slots[transition.source], slots[transition.target]
    points = [(source.x + shift, source.bottom)]
    for key in lane_keys:
        lane = slots[key]
        points += [(lane.x, lane.y), (lane.x, lane.bottom)]
    points.append((target.x + shift, target.y))
    segments = []
    for (x1, y1), (x2, y2) in pairwise(points):
        bend = (y2 - y1) / 2
        segments.append(((x1, y1 + bend), (x2, y2 - bend), (x2, y2)))
    return Curve(points[0], tuple(segments))


def _around(transition: Transition, slots: Mapping[str, Slot], index: int) -> Curve:
    """An edge up (or within a rank) leaves its source's right side and runs up a lane right of the ranks."""
    source, target = slots[transition.source], slots[transition.target]
    low, high = sorted((source.rank, target.rank))
    spanned = [slot.right for slot in slots.values() if low <= slot.rank <= high]
    lane_x = max(spanned) + SIDE_LANE_GAP + index * SIDE_LANE_STEP
    start = (source.right, source.middle + SIDE_PORT_OFFSET)
    end = (target.right, target.middle - SIDE_PORT_OFFSET)
    bend = min(SIDE_BEND, (start[1] - end[1]) / 2)
    leave, arrive = (lane_x, start[1] - bend), (lane_x, end[1] + bend)
    segments = (
        ((lane_x, start[1]), (lane_x, start[1]), leave),
        (leave, arrive, arrive),
        ((lane_x, end[1]), (lane_x, end[1]), end),
    )
    return Curve(start, segments, around=True)


def _place_branches(cluster: Slot, layouts: list[LevelLayout]) -> list[BranchPlacement]:
    inner_width = sum(layout.width for layout in layouts) + BRANCH_GAP * (len(layouts) - 1)
    x = cluster.left + (cluster.width - inner_width) / 2
    placements = []
    for layout in layouts:
        placements.append(BranchPlacement(x, cluster.y + NODE_HEIGHT, layout))
        x += layout.width + BRANCH_GAP
    return placements


# --- SVG ---------------------------------------------------------------------------------------------------

_ARROW_STYLES = ("plain", "taken", "faded")


@dataclass(frozen=True)
class _Context:
    visits: Sequence[Visit]
    execution_status: str | None
    traces: dict[str, StateTrace]
    marker_prefix: str

    @property
    def traced(self) -> bool:
        return bool(self.visits)

    def arrow(self, taken: bool) -> str:
        style = "taken" if taken else "faded" if self.traced else "plain"
        return f"{self.marker_prefix}-{style}"

    def is_current(self, name: str) -> bool:
        return self.execution_status == "RUNNING" and bool(self.visits) and self.visits[-1].name == name


def state_graph(definition: Mapping[str, Any], visits: Sequence[Visit], execution_status: str | None = None) -> Markup:
    level = parse_level(definition)
    layout = layout_level(level)
    context = _Context(visits, execution_status, trace_states(visits), _marker_prefix(level, visits))
    width, height = _num(layout.width + 2 * MARGIN), _num(layout.height + 2 * MARGIN)
    classes = "sfn-graph sfn-graph--traced" if context.traced else "sfn-graph"
    label = _aria_label(level, context)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{classes}" viewBox="0 0 {width} {height}"'
        f' width="{width}" height="{height}" role="img" aria-label="{escape(label)}">',
        _arrow_markers(context.marker_prefix),
        *_render_level(layout, MARGIN, MARGIN, context),
        "</svg>",
    ]
    return Markup("".join(parts))  # noqa: S704 - every name, type and error in it went through escape()


def _marker_prefix(level: Level, visits: Sequence[Visit]) -> str:
    """Marker ids unique per graph, so that a page can hold several; derived from the input, not random."""
    seed = repr((sorted(_state_names(level)), [(v.name, v.attempts, v.errors) for v in visits]))
    return "sfn-arrow-" + hashlib.sha256(seed.encode()).hexdigest()[:10]


def _state_names(level: Level) -> list[str]:
    names = list(level.states)
    for branches in level.branches.values():
        for branch in branches:
            names += _state_names(branch)
    return names


def _aria_label(level: Level, context: _Context) -> str:
    names = _state_names(level)
    label = f"State machine graph: {len(names)} states"
    if context.traced:
        label += f", {sum(1 for name in names if name in context.traces)} visited"
    if context.execution_status:
        label += f"; execution {context.execution_status}"
    return label


def _arrow_markers(prefix: str) -> str:
    markers = [
        f'<marker id="{prefix}-{style}" class="arrow arrow--{style}" viewBox="0 0 10 10" refX="9" refY="5"'
        ' markerWidth="9" markerHeight="9" markerUnits="userSpaceOnUse" orient="auto">'
        '<path d="M0,1L9,5L0,9z"/></marker>'
        for style in _ARROW_STYLES
    ]
    return f"<defs>{''.join(markers)}</defs>"


def _render_level(layout: LevelLayout, dx: float, dy: float, context: _Context) -> list[str]:
    level = layout.level
    taken = taken_transitions(level, context.visits, context.execution_status)
    parts = ['<g class="level">']
    parts += [_render_edge(t, curve, dx, dy, t in taken, context) for t, curve in layout.curves.items()]
    parts.append(_render_marker(START, layout.slots[START], dx, dy, any(t.kind == "start" for t in taken)))
    for name, state in level.states.items():
        parts.append(_render_state(name, state, layout.slots[name], dx, dy, context))
        for branch in layout.branches.get(name, []):
            parts += _render_branch(branch, state, dx, dy, context)
    if END in layout.slots:
        parts.append(_render_marker(END, layout.slots[END], dx, dy, any(t.kind == "end" for t in taken)))
    parts.append("</g>")
    return parts


def _render_edge(transition: Transition, curve: Curve, dx: float, dy: float, taken: bool, context: _Context) -> str:
    classes = ["edge", f"edge--{transition.kind}"]
    classes += ["edge--back"] if curve.around else []
    classes += ["edge--taken"] if taken else []
    ends = f' data-from="{escape(transition.source)}"' if transition.source != START else ""
    ends += f' data-to="{escape(transition.target)}"' if transition.target != END else ""
    title = f"{_display_name(transition.source)} → {_display_name(transition.target)}"
    if transition.errors:
        title += f" (catches {', '.join(transition.errors)})"
    return (
        f'<path class="{" ".join(classes)}"{ends} d="{curve.path(dx, dy)}"'
        f' marker-end="url(#{context.arrow(taken)})"><title>{escape(title)}</title></path>'
    )


def _display_name(key: str) -> str:
    return {START: "Start", END: "End"}.get(key, key)


def _render_marker(key: str, slot: Slot, dx: float, dy: float, reached: bool) -> str:
    kind = "start" if key == START else "end"
    classes = f"terminal terminal--{kind}" + (" terminal--reached" if reached else "")
    cx, cy, radius = _num(dx + slot.x), _num(dy + slot.middle), slot.width / 2
    circles = f'<circle class="terminal__ring" cx="{cx}" cy="{cy}" r="{_num(radius)}"/>'
    if key == END:
        circles += f'<circle class="terminal__dot" cx="{cx}" cy="{cy}" r="{_num(radius - 4)}"/>'
    return f'<g class="{classes}"><title>{_display_name(key)}</title>{circles}</g>'


def _render_state(name: str, state: Mapping[str, Any], slot: Slot, dx: float, dy: float, context: _Context) -> str:
    state_type = str(state.get("Type", ""))
    trace = context.traces.get(name)
    classes = _state_classes(name, state_type, trace, context)
    if slot.height > NODE_HEIGHT:
        classes.append("state--cluster")
    detail = _detail(trace, slot.width)
    lines = [("state__name", name), ("state__type", state_type)] + ([("state__detail", detail)] if detail else [])
    baselines = (18.0, 32.0, 46.0) if detail else (25.0, 40.0)
    left, top, centre = dx + slot.left, dy + slot.y, _num(dx + slot.x)
    parts = [
        f'<g class="{escape(" ".join(classes))}" data-state="{escape(name)}" data-type="{escape(state_type)}">',
        f"<title>{escape(_tooltip(name, state_type, trace, context))}</title>",
        f'<rect x="{_num(left)}" y="{_num(top)}" width="{_num(slot.width)}" height="{_num(slot.height)}" rx="8"/>',
    ]
    for (css_class, text), baseline in zip(lines, baselines, strict=False):
        parts.append(
            f'<text class="{css_class}" x="{centre}" y="{_num(top + baseline)}" text-anchor="middle">'
            f"{escape(text)}</text>"
        )
    parts.append("</g>")
    return "".join(parts)


def _state_classes(name: str, state_type: str, trace: StateTrace | None, context: _Context) -> list[str]:
    classes = ["state", f"state--{''.join(c for c in state_type.lower() if c.isalnum())}"]
    if trace is None:
        return classes
    classes.append("state--visited")
    if trace.retried:
        classes.append("state--retried")
    if trace.all_attempts_failed or state_type == "Fail":
        classes.append("state--failed")
    if context.is_current(name):
        classes.append("state--current")
    return classes


def _detail(trace: StateTrace | None, width: float) -> str:
    if trace is None:
        return ""
    parts = [f"×{trace.visits}"] if trace.visits > 1 else []
    if trace.retried or trace.all_attempts_failed:
        parts.append(_count(trace.attempts, "attempt"))
        parts += [", ".join(dict.fromkeys(trace.errors))] if trace.errors else []
    return _truncate(" · ".join(parts), int((width - 12) / DETAIL_CHAR_WIDTH))


def _tooltip(name: str, state_type: str, trace: StateTrace | None, context: _Context) -> str:
    lines = [name, state_type]
    if trace is None:
        lines += ["not visited"] if context.traced else []
        return "\n".join(lines)
    lines.append("visited once" if trace.visits == 1 else f"visited {trace.visits} times")
    if trace.attempts:
        lines.append(_count(trace.attempts, "attempt"))
    lines += [f"failed: {error}" for error in trace.errors]
    return "\n".join(lines)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def _render_branch(
    branch: BranchPlacement, state: Mapping[str, Any], dx: float, dy: float, context: _Context
) -> list[str]:
    parts = []
    if state.get("Type") == "Parallel":
        inset = CLUSTER_PADDING / 2
        parts.append(
            f'<rect class="branch" x="{_num(dx + branch.x - inset)}" y="{_num(dy + branch.y - inset)}"'
            f' width="{_num(branch.layout.width + 2 * inset)}" height="{_num(branch.layout.height + 2 * inset)}"'
            ' rx="6"/>'
        )
    return parts + _render_level(branch.layout, dx + branch.x, dy + branch.y, context)


def _xy(point: Point, dx: float, dy: float) -> str:
    return f"{_num(point[0] + dx)},{_num(point[1] + dy)}"


def _num(value: float) -> str:
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text
