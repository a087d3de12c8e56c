"""Fixtures for the ``deployfw run`` tests: one example copy and one sandbox per test module.

Module scope keeps the suite fast (the sandbox start and the first builds are paid
once per file) while files stay independent: each has its own repository copy, its
own state store and its own sandbox process. A test module may set
``SANDBOX_TIMINGS`` (fields of :class:`deployfw.sandbox.aws.Timings`) to slow the
simulated deployments down or speed them up, ``SANDBOX_TIME_SCALE`` to run on a
scaled clock instead of the instant one, and ``SANDBOX_CONFIG`` to seed from another
config file of the copy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from run_helpers import SECRET, copy_example, start_sandbox

from deployfw.testing import CliResult, SandboxProcess, run_cli

FAST = {"deploy_step": 0.05, "rolling_step": 0.05}


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A committed copy of this checkout's tracked files (the example's modules.yaml at its root)."""
    return copy_example(tmp_path_factory.mktemp("run") / "repo")


@pytest.fixture(scope="module")
def sandbox(request: pytest.FixtureRequest, example: Path) -> Iterator[SandboxProcess]:
    config = example / getattr(request.module, "SANDBOX_CONFIG", "modules.yaml")
    timings = getattr(request.module, "SANDBOX_TIMINGS", FAST)
    yield from start_sandbox(config, timings, getattr(request.module, "SANDBOX_TIME_SCALE", None))


@pytest.fixture(scope="module")
def deployfw(sandbox: SandboxProcess, example: Path) -> Callable[..., CliResult]:
    """``deployfw(*argv)``: the CLI in-process in the example copy, pointed at the sandbox (our secret as the key)."""

    def invoke(*argv: str) -> CliResult:
        return run_cli(sandbox.run_env(AWS_SECRET_ACCESS_KEY=SECRET), example, *argv)

    return invoke
