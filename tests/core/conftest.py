"""Fixtures for the core tests: the CLI run in-process, and a clean CI environment.

The CLI runs in-process (``deployfw.cli.main``) rather than in a subprocess so the
whole suite stays fast; one test (``test_cli_detect``) still starts real processes
to check what ``--help`` and ``detect`` import. Every test starts without CI
variables, because a test suite that itself runs under Jenkins or GitHub Actions
would otherwise pick up the real CI's base commit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from deployfw.cli import main

AWS_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_PROFILE")
CI_VARIABLES = (
    "CI",
    "JOB_NAME",
    "BUILD_NUMBER",
    "BUILD_URL",
    "JENKINS_URL",
    "GIT_COMMIT",
    "GIT_PREVIOUS_SUCCESSFUL_COMMIT",
    "CODEBUILD_BUILD_ID",
    "CODEBUILD_WEBHOOK_PREV_COMMIT",
    "CODEBUILD_RESOLVED_SOURCE_VERSION",
    "CODEBUILD_PUBLIC_BUILD_URL",
    "GITHUB_ACTIONS",
    "GITHUB_EVENT_PATH",
    "GITHUB_SHA",
    "GITHUB_RUN_ID",
    "DEPLOYFW_DISABLE_PLUGINS",
    "DEPLOYFW_STATE",
    "DEPLOYFW_REQUIRE_SHARED_STATE",
)


@dataclass(frozen=True)
class CliResult:
    """What one CLI invocation produced."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.code == 0, self.err
        return json.loads(self.out)

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()

    @property
    def errors(self) -> list[str]:
        return self.err.splitlines()


@pytest.fixture(autouse=True)
def no_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start every test as if run from a plain terminal: no CI, and no AWS credentials or endpoint (an
    in-process sandbox started earlier in the session leaves dummy credentials behind; with them a
    ``plan`` would spend its caller-identity deadline asking an AWS this machine cannot reach)."""
    for name in (*CI_VARIABLES, *AWS_VARIABLES):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., CliResult]:
    """``cli(args, cwd=...)`` runs ``deployfw`` in-process and returns exit code, stdout, stderr."""

    def run(args: Sequence[str], *, cwd: Path | None = None) -> CliResult:
        if cwd is not None:
            monkeypatch.chdir(cwd)
        capsys.readouterr()
        code = 0
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run
