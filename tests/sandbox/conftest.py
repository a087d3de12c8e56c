"""Shared fixtures for the AWS sandbox contract tests (tests/sandbox/test_aws_*.py).

One sandbox per test module keeps the suite fast (moto's start-up and seeding are paid
once per file); tests of a file use distinct services so they cannot interfere, and
every test that injects faults clears them again. Not one per session: moto's state is
process-wide and the most recently started in-process sandbox's settings apply to all
(:mod:`deployfw.sandbox.aws.context`), so a sandbox outliving its file would be changed
by whatever another file (on the same pytest-xdist worker) starts next.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from sandbox_infra import AWS_INFRA

from deployfw.sandbox.aws import AwsSandbox, Timings, seed
from deployfw.testing.images import push_app


@dataclass
class StubPhase:
    name: str
    status: str


@dataclass
class StubResult:
    status: str
    phases: list[StubPhase] = field(default_factory=list)
    exported_variables: dict[str, str] = field(default_factory=dict)


class StubRunner:
    """A tiny stand-in for deployfw.buildspec: runs each phase's commands with bash."""

    @staticmethod
    def load_buildspec(text: str, filename: str) -> dict[str, Any]:
        doc = yaml.safe_load(text)
        if not isinstance(doc, dict) or "phases" not in doc:
            raise ValueError(f"{filename}: no phases")
        return doc

    @staticmethod
    def run_buildspec(
        spec: dict[str, Any],
        *,
        workdir: Path,
        env: Mapping[str, str],
        emit: Callable[[str], None],
        cancel: threading.Event | None = None,
        resolver: Any = None,
        phase_callback: Callable[[str], None] | None = None,
    ) -> StubResult:
        import os
        import signal

        result = StubResult("SUCCEEDED")
        full_env = {**os.environ, **env}
        for name in ("install", "pre_build", "build", "post_build"):
            commands = (spec["phases"].get(name) or {}).get("commands") or []
            if phase_callback:
                phase_callback(name.upper())
            for command in commands:
                if cancel is not None and cancel.is_set():
                    result.phases.append(StubPhase(name.upper(), "STOPPED"))
                    result.status = "STOPPED"
                    return result
                proc = subprocess.Popen(
                    command,
                    shell=True,
                    cwd=workdir,
                    env=full_env,
                    text=True,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                while proc.poll() is None:
                    if cancel is not None and cancel.wait(0.02):
                        os.killpg(proc.pid, signal.SIGKILL)
                out = proc.stdout.read() if proc.stdout else ""
                for line in out.splitlines():
                    emit(line)
                if cancel is not None and cancel.is_set():
                    result.phases.append(StubPhase(name.upper(), "STOPPED"))
                    result.status = "STOPPED"
                    return result
                if proc.returncode != 0:
                    result.phases.append(StubPhase(name.upper(), "FAILED"))
                    result.status = "FAILED"
                    return result
            result.phases.append(StubPhase(name.upper(), "SUCCEEDED"))
        return result


def _git_repo(root: Path) -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout.strip()

    git("init", "-q", "-b", "main")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    (root / "buildspec.yml").write_text(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo from-repo $GREETING\n"
    )
    (root / "marker.txt").write_text("first\n")
    git("add", ".")
    git("commit", "-q", "-m", "first")
    first = git("rev-parse", "HEAD")
    (root / "marker.txt").write_text("second\n")
    git("commit", "-q", "-am", "second")
    return first


@pytest.fixture(scope="session")
def aws_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("repo")
    first = _git_repo(root)
    return root, first


@pytest.fixture(scope="module")
def aws_sandbox(aws_repo: tuple[Path, str]) -> Iterator[AwsSandbox]:
    sandbox = AwsSandbox(
        repo_root=aws_repo[0],
        build_runner=StubRunner(),
        timings=Timings(deploy_step=0.15, rolling_step=0.15, build_phase=0.01),
        seed=7,
        faults="",
        time_scale=0,
    ).start()
    sandbox.seeded = seed(sandbox, AWS_INFRA)  # type: ignore[attr-defined]
    yield sandbox
    sandbox.stop()


@pytest.fixture(scope="module")
def aws_client(aws_sandbox: AwsSandbox) -> Callable[[str], Any]:
    from botocore.config import Config

    def make(service: str) -> Any:
        return boto3.client(
            service,
            region_name="us-east-1",
            endpoint_url=aws_sandbox.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )

    return make


@pytest.fixture
def no_faults(aws_sandbox: AwsSandbox) -> Iterator[None]:
    aws_sandbox.set_faults("")
    yield
    aws_sandbox.set_faults("")


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll until ``predicate`` returns something truthy; fail the test on timeout."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value {value!r})")
        time.sleep(interval)


@pytest.fixture(scope="session")
def aws_wait() -> Callable[..., Any]:
    return wait_for


@pytest.fixture(scope="module")
def app_image(aws_client: Callable[[str], Any]) -> Callable[..., str]:
    """``app_image(repository, version, exit_at_start=False, health_status=200)`` -> pushed image URI."""
    ecr = aws_client("ecr")
    cache: dict[tuple[Any, ...], str] = {}

    def make(repository: str, version: str, **options: Any) -> str:
        key = (repository, version, tuple(sorted(options.items())))
        if key not in cache:
            cache[key] = push_app(ecr, repository, version, **options)
        return cache[key]

    return make
