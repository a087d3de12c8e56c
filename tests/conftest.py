"""Suite-wide: collection order (files marked ``long`` first) and the reliability figures' summary.

The suite runs on pytest-xdist workers, one test file per work unit (``--dist loadfile``),
handed out in collection order (``--no-loadscope-reorder``: by default xdist hands out the
files with the most tests first, which put the one-test, two-minute kill-point file last). A
file of a minute or more handed out last keeps one worker busy while the others have nothing
left, so those files go first; every other file keeps its place. Tests within a file keep
their order (some build on each other).

A folder in :data:`SHARED_UNITS` is one work unit instead, kept in one piece in the collection
order too: its files share one expensive set-up (the reliability suite's warmed sandbox), which
one worker then pays once and can drop as soon as it leaves the folder.

The reliability scenarios record figures (``tests/reliability/reliability_kit.py``) in the
process that runs them: a worker hands its lines to the controller, which prints them in the
terminal summary, so a plain ``python -m pytest`` shows them with or without workers.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

FIGURES_KEY = "deployfw_reliability_figures"
SHARED_UNITS = ("tests/reliability/",)
"""Folders (node id prefixes) whose files run as one unit, on one worker, one after the other."""
_from_workers: list[str] = []


def work_unit(nodeid: str) -> str:
    """The unit a test is scheduled with: its shared folder, else its file."""
    return next((unit for unit in SHARED_UNITS if nodeid.startswith(unit)), nodeid.split("::", 1)[0])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("long") is None)  # stable: files stay whole
    first: dict[str, int] = {}
    for index, item in enumerate(items):
        first.setdefault(work_unit(item.nodeid), index)
    items.sort(key=lambda item: first[work_unit(item.nodeid)])  # a shared unit's files join its first


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile`` with :func:`work_unit` as the unit; other modes are xdist's own."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class SharedUnitScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return SharedUnitScheduling(config, log)


def _figure_lines() -> list[str]:
    """This process's reliability figures, formatted; none when no reliability scenario ran here."""
    kit = sys.modules.get("reliability_kit")
    return list(kit.format_figures()) if kit is not None and kit.FIGURES else []


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller prints
        workeroutput[FIGURES_KEY] = _figure_lines()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    _from_workers.extend(getattr(node, "workeroutput", {}).get(FIGURES_KEY, []))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = _from_workers or _figure_lines()
    if lines:
        terminalreporter.write_sep("=", "deployfw reliability figures")
        for line in lines:
            terminalreporter.write_line(line)
