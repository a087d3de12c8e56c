"""The live terminal view of a run: one row per module, redrawn in place.

A person at a terminal running several modules in parallel cannot follow
interleaved build logs; they want to see at a glance which module is in which
stage, for how long, and its latest line. CI logs have no terminal to redraw
(and are read afterwards), so there the one-line-per-event log of
:mod:`deployfw.events` stays: :func:`wanted` decides. The view subscribes to the
same :class:`~deployfw.events.EventLog` as the line log, so both show the same
(already masked) events. Lines of the run itself (plan, cancel, warnings) and
every stage failure are printed above the table, so they stay on screen after
it; with ``verbose`` every module line is too.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from deployfw.ci import CIContext
from deployfw.events import Event, EventLog

_STYLE = {"waiting": "dim", "running": "cyan", "succeeded": "green", "failed": "bold red", "skipped": "yellow"}


def wanted(stream: TextIO, ci: CIContext, environ: Mapping[str, str] | None = None) -> bool:
    """A live view only on an interactive terminal outside CI (and not on a dumb one)."""
    env = os.environ if environ is None else environ
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and not ci.is_ci and env.get("TERM") != "dumb"


@dataclass
class Row:
    """What the table shows for one module."""

    name: str
    stages: tuple[str, ...]
    status: str = "waiting"
    stage: str = ""
    started: float | None = None
    ended: float | None = None
    last: str = ""
    done: list[str] = field(default_factory=list)

    def elapsed(self, now: float) -> str:
        if self.started is None:
            return ""
        return f"{(self.ended or now) - self.started:.0f}s"


class LiveView:
    """A ``rich.live.Live`` table fed by :class:`EventLog` events; use as a context manager."""

    def __init__(
        self,
        modules: Mapping[str, Sequence[str]],
        *,
        console: Console | None = None,
        verbose: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.rows = {name: Row(name, tuple(stages)) for name, stages in modules.items()}
        self.console = console or Console(stderr=True)
        self.verbose = verbose
        self._clock = clock
        self._lock = threading.Lock()
        self._live = Live(self, console=self.console, refresh_per_second=4, transient=False)

    def attach(self, events: EventLog) -> LiveView:
        """Show ``events`` here instead of as lines on the stream."""
        events.echo = False
        events.subscribe(self.on_event)
        return self

    def __enter__(self) -> LiveView:
        self._live.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._live.refresh()
        self._live.stop()

    # -- events ----------------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        row = self.rows.get(event.module)
        keep = row is None or self.verbose
        with self._lock:
            if row is not None:
                keep = self._update(row, event) or keep
        if keep:
            stamp = time.strftime("%H:%M:%S", time.localtime(event.time))
            self.console.print(Text(f"{stamp} {event.module:<12} {event.stage:<7}| {event.line}"), highlight=False)

    def _update(self, row: Row, event: Event) -> bool:
        """Apply ``event`` to ``row``; True when the line should also stay above the table."""
        row.last = event.line
        if event.stage == "skip":
            row.status, row.stage, row.ended = "skipped", "", event.time
            return True
        if row.started is None:
            row.started = event.time
        if event.stage not in row.stages:  # recover, lock, error: informative, no stage change
            if event.stage == "error":
                row.status, row.ended = "failed", event.time
                return True
            return event.stage == "lock"
        if event.line.startswith(("succeeded in ", "failed in ")):
            ok = event.line.startswith("succeeded")
            row.done.append(event.stage)
            if not ok:
                row.status, row.ended = "failed", event.time
            elif row.done[-1] == row.stages[-1]:
                row.status, row.ended = "succeeded", event.time
            return not ok
        if row.status == "waiting" or row.status == "running":
            row.status, row.stage = "running", event.stage
        return False

    # -- drawing ---------------------------------------------------------------------------

    def __rich__(self) -> Table:
        now = self._clock()
        table = Table(box=None, pad_edge=False, expand=False, show_edge=False)
        for column in ("MODULE", "STATUS", "STAGE", "TIME"):
            table.add_column(column, no_wrap=True)
        table.add_column("LAST LINE", no_wrap=True, overflow="ellipsis", max_width=max(20, self.console.width - 48))
        with self._lock:
            rows = list(self.rows.values())
            for row in rows:
                stage = row.stage or (row.done[-1] if row.done else "")
                table.add_row(
                    row.name,
                    Text(row.status, style=_STYLE.get(row.status, "")),
                    stage,
                    row.elapsed(now),
                    Text(row.last),
                )
        return table
