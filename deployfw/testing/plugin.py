"""pytest11 entry point: the fixtures of :mod:`deployfw.testing` for any test suite."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from deployfw.testing.gitrepo import GitRepoBuilder


def pytest_configure(config: pytest.Config) -> None:
    """Sandboxes started by tests run on the instant clock unless a test asks for another scale.

    At scale 0 every wait a deployment config names (canary intervals, bake and
    termination waits) is due at once, so a suite is not paced by sandbox minutes; a
    test that is about durations passes ``time_scale`` (or sets
    ``DEPLOYFW_SANDBOX_TIME_SCALE``, which still wins). Nothing is put into the
    environment, so builds and subprocesses see the test process's environment as it is.
    """
    from deployfw.sandbox.clock import set_default_scale

    set_default_scale(0.0)


@pytest.fixture
def git_repo(tmp_path: Path) -> Callable[..., GitRepoBuilder]:
    """Factory: ``git_repo({"path": "content", ...})`` -> a committed :class:`GitRepoBuilder`."""
    count = 0

    def make(files: Mapping[str, str] | None = None, *, name: str | None = None) -> GitRepoBuilder:
        nonlocal count
        count += 1
        return GitRepoBuilder(tmp_path / (name or f"repo{count}"), files)

    return make


@pytest.fixture
def aws_sandbox() -> Iterator[Any]:
    """A started AWS sandbox (moto server with deploy lifecycles) on a free loopback port."""
    from deployfw.sandbox.aws import AwsSandbox

    with AwsSandbox(port=0) as sandbox:
        yield sandbox


@pytest.fixture
def jenkins_double() -> Iterator[Any]:
    """A started Jenkins controller double that unmodified python-jenkins can drive."""
    from deployfw.sandbox.jenkins import JenkinsDouble

    with JenkinsDouble(port=0) as double:
        yield double
