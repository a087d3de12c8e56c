"""One example copy and one sandbox process per test module (module scope: paid once per file)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from statecli_helpers import copy_example

from deployfw.testing import CliResult, SandboxProcess, run_cli

FAST = {"deploy_step": 0.05, "rolling_step": 0.05}


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_example(tmp_path_factory.mktemp("statecli") / "repo")


@pytest.fixture(scope="module")
def sandbox(request: pytest.FixtureRequest, example: Path) -> Iterator[SandboxProcess]:
    with SandboxProcess(example, timings=getattr(request.module, "SANDBOX_TIMINGS", FAST)) as box:
        assert box.endpoint.startswith("http://127.0.0.1:")
        yield box


@pytest.fixture(scope="module")
def deployfw(sandbox: SandboxProcess, example: Path) -> Callable[..., CliResult]:
    """``deployfw(*argv)``: the CLI in-process in the example copy, pointed at the sandbox."""
    return lambda *argv: run_cli(sandbox.run_env(), example, *argv)
