"""Fixtures of the reliability suite: one example repository and one long-running sandbox per session.

The sandbox start (moto, seeding) is the most expensive step, so it is paid once; the
scenarios then run one after the other against it, each on fresh commits, and clear
the request log when they start so each judges only its own calls. The figures the
scenarios record are printed in pytest's terminal summary (tests/conftest.py, which also
gathers them from pytest-xdist workers), so a plain ``python -m pytest`` shows them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from reliability_kit import Repo, SandboxProcess, run, start_sandbox


@pytest.fixture(scope="session")
def rel_repo(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    """The example, committed in a throwaway repository (its state store lives under it)."""
    return Repo.create(tmp_path_factory.mktemp("reliability") / "repo")


@pytest.fixture(scope="session")
def rel_sandbox(rel_repo: Repo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    """``deployfw sandbox`` seeded from the example, fast simulated timings, for the whole session."""
    yield from start_sandbox(rel_repo.path, log=tmp_path_factory.mktemp("sandbox-log") / "sandbox.err")


@pytest.fixture(scope="session")
def warmed(rel_repo: Repo, rel_sandbox: SandboxProcess) -> Repo:
    """The example built and deployed once, so scenarios measure deploys (builds reused), not first builds."""
    code, proc = run(rel_repo.path, rel_sandbox.run_env())
    assert code == 0, proc.output[-3000:]
    return rel_repo

