"""The live terminal view: chosen only on an interactive terminal outside CI, fed by the run's events."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from deployfw.ci import detect_ci
from deployfw.events import EventLog
from deployfw.live import LiveView, wanted

STAGES = {"user-api": ["build", "push", "deploy"], "order-api": ["build", "push", "deploy"], "pay": ["build"]}


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("stream", "environ", "expected"),
    [
        (_Tty(), {"TERM": "xterm"}, True),
        (io.StringIO(), {"TERM": "xterm"}, False),  # piped or redirected: plain lines
        (_Tty(), {"TERM": "dumb"}, False),
        (_Tty(), {"JENKINS_URL": "http://j/", "JOB_NAME": "shop", "BUILD_NUMBER": "7"}, False),
        (_Tty(), {"CODEBUILD_BUILD_ID": "shop:1"}, False),
        (_Tty(), {"GITHUB_ACTIONS": "true"}, False),
    ],
)
def test_live_view_only_on_a_terminal_outside_ci(stream: io.StringIO, environ: dict[str, str], expected: bool) -> None:
    assert wanted(stream, detect_ci(environ), environ) is expected


def _view(verbose: bool = False) -> tuple[LiveView, EventLog, io.StringIO, io.StringIO]:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=140, color_system=None)
    lines = io.StringIO()
    events = EventLog(lines, clock=lambda: 1000.0)
    view = LiveView(STAGES, console=console, verbose=verbose, clock=lambda: 1010.0).attach(events)
    return view, events, lines, screen


def test_rows_follow_the_events_and_line_echo_is_off() -> None:
    view, events, lines, screen = _view()
    with view:
        events.emit("deployfw", "plan", "plan: base none -> head abc")
        events.emit("user-api", "build", "Step 1/3")
        events.emit("user-api", "build", "succeeded in 1.0s")
        events.emit("user-api", "push", "succeeded in 0.1s")
        events.emit("user-api", "deploy", "deployment d-1: InProgress")
        events.emit("order-api", "build", "failed in 2.0s: build order-api-build:1 FAILED")
        events.emit("pay", "build", "succeeded in 1.0s")
        assert view.rows["user-api"].status == "running" and view.rows["user-api"].stage == "deploy"
        assert view.rows["user-api"].last == "deployment d-1: InProgress"
        events.emit("user-api", "deploy", "succeeded in 3.0s")
    assert lines.getvalue() == "", "the live view replaces the line log"
    assert {n: r.status for n, r in view.rows.items()} == {
        "user-api": "succeeded",
        "order-api": "failed",
        "pay": "succeeded",
    }
    shown = screen.getvalue()
    # run lines and failures stay above the table; ordinary module lines only in the table
    assert "plan: base none -> head abc" in shown and "failed in 2.0s: build order-api-build:1 FAILED" in shown
    assert "Step 1/3" not in shown
    final = shown.rsplit("MODULE", 1)[1]
    assert "user-api" in final and "succeeded" in final and "order-api" in final and "failed" in final


def test_skips_and_verbose_lines() -> None:
    view, events, _, screen = _view(verbose=True)
    with view:
        events.emit("user-api", "build", "Step 1/3 (only with --verbose)")
        events.emit("order-api", "skip", "dependency user-api failed")
    assert view.rows["order-api"].status == "skipped"
    assert view.rows["order-api"].last == "dependency user-api failed"
    assert "Step 1/3" in screen.getvalue(), "--verbose keeps every line"


def test_subscribers_get_masked_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    from deployfw import redact

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "live-view-secret-1234567890")
    redact.register_environment()
    view, events, _, screen = _view(verbose=True)
    with view:
        events.emit("user-api", "build", "key is live-view-secret-1234567890")
    assert "live-view-secret-1234567890" not in screen.getvalue() + view.rows["user-api"].last
