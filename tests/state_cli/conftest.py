"""One example copy and one sandbox process per test module (module scope: paid once per file)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from statecli_helpers import Result, Sandbox, copy_example, run_cli

FAST = {"deploy_step": 0.05, "rolling_step": 0.05}


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_example(tmp_path_factory.mktemp("statecli") / "repo")


@pytest.fixture(scope="module")
def sandbox(request: pytest.FixtureRequest, example: Path) -> Iterator[Sandbox]:
    box = Sandbox(example / "modules.yaml", getattr(request.module, "SANDBOX_TIMINGS", FAST))
    try:
        yield box
    finally:
        box.close()


@pytest.fixture(scope="module")
def deployfw(sandbox: Sandbox, example: Path) -> Callable[..., Result]:
    """``deployfw(*argv)``: the CLI in-process in the example copy, pointed at the sandbox."""
    return lambda *argv: run_cli(sandbox.run_env(), example, *argv)
