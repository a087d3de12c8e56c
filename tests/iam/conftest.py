"""One example copy and one IAM-enforcing sandbox process per test module, and principals in it.

The sandbox's administrator (its printed keys) creates the principals deployfw runs as - user
``ci``, the CodeBuild projects' role, the Jenkins agent user - holding exactly the policies
``deployfw iam policy`` generates for the copy, and swaps a policy for one with a statement
removed when a test asks.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "run"))  # the example copy of the run tests

from iam_helpers import Principals
from run_helpers import commit_all, copy_example

from deployfw.testing import SandboxProcess, run_cli

# Deployments take a few real seconds: long enough to cancel one while it runs (the StopDeployment proof).
TIMINGS = {"deploy_step": 0.25, "rolling_step": 0.05}


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example, with its deploy state in DynamoDB so the state store's needs are exercised too."""
    repo = copy_example(tmp_path_factory.mktemp("iam") / "repo")
    config = repo / "modules.yaml"
    config.write_text(config.read_text() + "\nstate: {backend: dynamodb, table: deployfw-state}\n")
    commit_all(repo, "state in DynamoDB")
    return repo


@pytest.fixture(scope="module")
def sandbox(example: Path) -> Iterator[SandboxProcess]:
    with SandboxProcess(example, timings=TIMINGS, iam="enforce") as box:
        done = run_cli(box.run_env(), example, "state", "init")  # as the administrator: first-time setup
        assert done.code == 0, done.output
        yield box


@pytest.fixture(scope="module")
def principals(sandbox: SandboxProcess, example: Path) -> Principals:
    return Principals(sandbox, example).create()
