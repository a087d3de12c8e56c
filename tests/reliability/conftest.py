"""Fixtures of the reliability suite: one example repository and one warmed, long-running sandbox.

The sandbox start (moto, seeding) and the first run (every build) are the most expensive
steps, so the files of this folder share them: the scenarios run one after the other against
one sandbox, each on fresh commits, and clear the request log when they start so each judges
only its own calls. The root conftest sends the whole folder to one pytest-xdist worker as a
single work unit (``SHARED_UNITS``), in one piece.

The sandbox is stopped as soon as the worker's next test lies outside this folder, not at the
end of the session: an idle sandbox keeps its example tasks running and health-checked, which
cost the rest of the suite minutes of CPU when it lived on to the end. Should a later test of
the folder come after all (another ``-p``/``-k`` selection, another distribution), a fresh
repository and sandbox are made for it.

The figures the scenarios record are printed in pytest's terminal summary (tests/conftest.py,
which also gathers them from pytest-xdist workers), so a plain ``python -m pytest`` shows them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from reliability_kit import Repo, SandboxProcess, open_sandbox, run

HERE = Path(__file__).resolve().parent


class Shared:
    """The folder's repository, sandbox and warm-up: made on first use, dropped by :meth:`close`."""

    def __init__(self) -> None:
        self.repo: Repo | None = None
        self.sandbox: SandboxProcess | None = None
        self.warmed = False

    def open(self, factory: pytest.TempPathFactory) -> tuple[Repo, SandboxProcess]:
        if self.repo is None or self.sandbox is None:
            self.repo = Repo.create(factory.mktemp("reliability") / "repo")
            self.sandbox = open_sandbox(self.repo.path, log=factory.mktemp("sandbox-log") / "sandbox.err")
            self.warmed = False
        return self.repo, self.sandbox

    def warm(self, factory: pytest.TempPathFactory) -> Repo:
        """The example built and deployed once, so scenarios measure deploys (builds reused), not first builds."""
        repo, sandbox = self.open(factory)
        if not self.warmed:
            code, proc = run(repo.path, sandbox.run_env())
            assert code == 0, proc.output[-3000:]
            self.warmed = True
        return repo

    def close(self) -> None:
        if self.sandbox is not None:
            self.sandbox.stop()
        self.repo, self.sandbox, self.warmed = None, None, False


_shared = Shared()


@pytest.fixture(scope="module")
def rel_repo(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    """The example, committed in a throwaway repository (its state store lives under it)."""
    return _shared.open(tmp_path_factory)[0]


@pytest.fixture(scope="module")
def rel_sandbox(rel_repo: Repo, tmp_path_factory: pytest.TempPathFactory) -> SandboxProcess:
    """``deployfw sandbox`` seeded from the example, fast simulated timings, shared by the folder."""
    return _shared.open(tmp_path_factory)[1]


@pytest.fixture(scope="module")
def warmed(rel_repo: Repo, rel_sandbox: SandboxProcess, tmp_path_factory: pytest.TempPathFactory) -> Repo:
    """The shared example after one full run."""
    return _shared.warm(tmp_path_factory)


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Stop the shared sandbox once this worker's next test is not one of this folder's."""
    if nextitem is None or HERE not in nextitem.path.parents:
        _shared.close()


def pytest_sessionfinish(session: pytest.Session) -> None:
    _shared.close()  # an interrupted session never reaches the last teardown
