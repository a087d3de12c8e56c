"""The drawn part of the run page: one lane of shapes per module on the run's clock.

Coordinates are percentages of the lane's width (SVG accepts them for ``x`` and
``width``), so a lane stretches to any screen without a viewBox and its text is
never distorted. Colours are SVG presentation attributes, not CSS: under a
Content-Security-Policy that forbids inline styles (Jenkins' default for published
files) the lanes still draw exactly as they do everywhere else.

Only what the report holds is drawn: a stage bar from its ``started_at`` to its
``ended_at``, a wait where the report says time passed before a module started or
a backend marked a wait, a tick for each timeline mark and a traffic band from
the ``traffic`` marks. A report without times gets no lanes at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

BAR_Y, BAR_HEIGHT = 4, 22
BAND_Y, BAND_HEIGHT = 30, 12  # the traffic band under the bars, when there are traffic steps
MIN_WIDTH = 0.25  # percent: a stage of a few milliseconds still shows as a sliver
LABEL_MIN_WIDTH = 9.0  # percent: narrower bars carry no text (it would overflow on a phone)
MIN_WAIT = 0.2  # seconds: shorter gaps are bookkeeping, not waiting

# Colours with at least 4.5:1 contrast on white (text) and 3:1 against their neighbours (shapes).
COLOURS = {
    "succeeded": "#1a7f37",
    "failed": "#cf222e",
    "skipped": "#6e7781",
    "wait": "#eaeef2",
    "wait_edge": "#57606a",
    "tick": "#24292f",
    "rollback": "#9a6700",
    "traffic": "#0969da",
    "grid": "#d0d7de",
}
ROLLBACK_KINDS = ("rollback", "rolled_back", "rollback_failed")


def parse_time(value: Any) -> float | None:
    """Epoch seconds of a report time (ISO-8601), or None when absent or malformed."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def seconds_text(seconds: float) -> str:
    """``0.4 s``, ``12.3 s``, ``4 min 05 s``, ``1 h 02 min``: durations as people read them."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


@dataclass(frozen=True)
class Scale:
    """The run's clock mapped onto 0-100 % of a lane."""

    start: float
    end: float

    @property
    def span(self) -> float:
        return max(self.end - self.start, 1e-3)

    def x(self, at: float) -> float:
        return min(100.0, max(0.0, (at - self.start) / self.span * 100))

    def offset(self, at: float) -> str:
        return "+" + seconds_text(max(0.0, at - self.start))

    def axis(self, parts: int = 4) -> list[str]:
        """Labels at 0, 1/parts, ... 1 of the run: what the grid lines of every lane mark."""
        return [seconds_text(self.span * i / parts) for i in range(parts + 1)]


@dataclass(frozen=True)
class Rect:
    x: float
    width: float
    y: float
    height: float
    fill: str
    css: str
    title: str
    label: str = ""
    stroke: str | None = None
    dashed: bool = False
    opacity: float = 1.0


@dataclass(frozen=True)
class Tick:
    x: float
    colour: str
    css: str
    title: str
    width: int = 2


@dataclass
class Lane:
    """Everything drawn for one module, plus the same facts as one sentence for screen readers."""

    rects: list[Rect] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)
    band: list[Rect] = field(default_factory=list)
    summary: str = ""

    @property
    def height(self) -> int:
        return BAND_Y + BAND_HEIGHT + 2 if self.band else BAR_Y + BAR_HEIGHT + 4


def run_scale(report: Mapping[str, Any]) -> Scale | None:
    """The clock of the whole run: its own start and end, widened to any time a module reports."""
    times = [parse_time(report.get("started_at")), parse_time(report.get("ended_at"))]
    for module in report.get("modules") or []:
        times += [parse_time(module.get("started_at")), parse_time(module.get("ended_at"))]
        times += [parse_time(s.get("started_at")) for s in module.get("stages") or []]
        times += [parse_time(s.get("ended_at")) for s in module.get("stages") or []]
    known = [t for t in times if t is not None]
    if not known:
        return None
    return Scale(min(known), max(known))


def lane(module: Mapping[str, Any], scale: Scale, run_start: float | None, describe: Any) -> Lane:
    """The shapes of one module; ``describe(mark)`` words a timeline mark (shared with the text list)."""
    out = Lane()
    sentences: list[str] = []
    begun = parse_time(module.get("started_at"))
    if run_start is not None and begun is not None and begun - run_start >= MIN_WAIT:
        after = ", ".join(module.get("after") or [])
        what = f"waited {seconds_text(begun - run_start)}" + (f" for {after}" if after else " to start")
        out.rects.append(_rect(scale, run_start, begun, COLOURS["wait"], "wait", what, "waiting", wait=True))
        sentences.append(what)
    for stage in module.get("stages") or []:
        start, end = parse_time(stage.get("started_at")), parse_time(stage.get("ended_at"))
        name, status = str(stage.get("stage")), str(stage.get("status"))
        if start is None or end is None:
            if status == "skipped":
                sentences.append(f"{name} skipped")
            continue
        what = f"{name} {status} in {seconds_text(end - start)}"
        colour = COLOURS.get(status, COLOURS["skipped"])
        out.rects.append(_rect(scale, start, end, colour, f"stage {name} {status}", what, name))
        sentences.append(what)
    for mark in module.get("timeline") or []:
        at = parse_time(mark.get("at"))
        if at is None:
            continue
        kind = str(mark.get("kind"))
        text = describe(mark)
        if kind == "waited" and isinstance(mark.get("seconds"), int | float):
            out.rects.append(
                _rect(scale, at - float(mark["seconds"]), at, COLOURS["wait"], "wait", text, "", wait=True)
            )
        elif kind != "traffic":
            rollback = kind in ROLLBACK_KINDS
            colour = COLOURS["rollback"] if rollback else COLOURS["tick"]
            title = f"{scale.offset(at)} {text}"
            out.ticks.append(Tick(scale.x(at), colour, f"mark {kind}", title, 3 if rollback else 2))
        if kind in ROLLBACK_KINDS:
            sentences.append(text)
    out.band = _traffic_band(module, scale)
    if out.band:
        sentences.append("traffic " + ", ".join(r.label for r in out.band))
    out.summary = f"{module.get('name')}: " + ("; ".join(sentences) or "nothing ran")
    return out


def _rect(
    scale: Scale, start: float, end: float, fill: str, css: str, title: str, label: str, *, wait: bool = False
) -> Rect:
    x = scale.x(start)
    width = max(scale.x(end) - x, MIN_WIDTH)
    shown = label if width >= LABEL_MIN_WIDTH else ""
    edge = COLOURS["wait_edge"] if wait else None
    return Rect(round(x, 3), round(width, 3), BAR_Y, BAR_HEIGHT, fill, css, title, shown, edge, wait)


def _traffic_band(module: Mapping[str, Any], scale: Scale) -> list[Rect]:
    """One step per ``traffic`` mark: its height is the replacement's share, until the next step or the stage end."""
    steps: list[tuple[float, float]] = []
    for mark in module.get("timeline") or []:
        at, percent = parse_time(mark.get("at")), mark.get("percent")
        if mark.get("kind") == "traffic" and at is not None and isinstance(percent, int | float):
            steps.append((at, float(percent)))
    if not steps:
        return []
    deploy: Mapping[str, Any] = next((s for s in module.get("stages") or [] if s.get("stage") == "deploy"), {})
    end = parse_time(deploy.get("ended_at")) or parse_time(module.get("ended_at")) or steps[-1][0]
    band: list[Rect] = []
    for index, (at, percent) in enumerate(steps):
        until = steps[index + 1][0] if index + 1 < len(steps) else max(end, at)
        height = round(BAND_HEIGHT * min(max(percent, 0.0), 100.0) / 100, 2)
        x = scale.x(at)
        title = f"{percent:g}% of traffic on the replacement from {scale.offset(at)} for {seconds_text(until - at)}"
        width = round(max(scale.x(until) - x, MIN_WIDTH), 3)
        y = BAND_Y + BAND_HEIGHT - height
        band.append(Rect(round(x, 3), width, y, height, COLOURS["traffic"], "traffic", title, f"{percent:g}%"))
    return band


def grid(parts: int = 4) -> Sequence[float]:
    """x of the grid lines every lane draws (the axis labels sit under them)."""
    return [100 * i / parts for i in range(1, parts)]
