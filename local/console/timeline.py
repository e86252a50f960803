"""An execution's timeline as the console draws it: one bar per state visit, placed on the execution's
own time axis (Step Functions' console shows the same in its table view)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from local.operations import StateRun

WIDTH = 320  # the bars' drawing width, in SVG units


@dataclass(frozen=True)
class Bar:
    name: str
    started: dt.datetime
    offset_ms: float  # from the execution's start
    duration_ms: float | None  # None: the state has not ended
    attempts: int
    errors: list[str]
    x: float
    width: float

    @property
    def failed(self) -> bool:
        return self.attempts > 0 and len(self.errors) >= self.attempts

    @property
    def retried(self) -> bool:
        return self.attempts > 1


def timeline_bars(runs: list[StateRun], description: dict[str, Any] | None, now: dt.datetime) -> list[Bar]:
    """The bars of an execution's visits; while it runs, its axis ends now (a state still running reaches it)."""
    if not runs:
        return []
    start = description["startDate"] if description else runs[0].started
    end = (description or {}).get("stopDate") or max([now, *((run.ended or run.started) for run in runs)])
    span_ms = max((end - start).total_seconds() * 1000, 1.0)
    bars = []
    for run in runs:
        offset = (run.started - start).total_seconds() * 1000
        duration = run.duration_ms
        x = WIDTH * max(offset, 0.0) / span_ms
        width = WIDTH * (duration if duration is not None else span_ms - offset) / span_ms  # still running
        bars.append(
            Bar(
                name=run.name,
                started=run.started,
                offset_ms=offset,
                duration_ms=duration,
                attempts=run.attempts,
                errors=list(run.errors),
                x=round(min(x, WIDTH - 1), 1),
                width=round(min(max(width, 1.0), WIDTH - x), 1),
            )
        )
    return bars
