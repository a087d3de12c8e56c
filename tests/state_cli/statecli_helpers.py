"""Helpers for the status/rollback/state/recovery tests: an example copy, a sandbox process, the CLI.

The sandbox runs in a process of its own (``deployfw sandbox`` in another shell, as a user
runs it): moto keeps its state process-wide, and these tests need a world where only their
own runs deployed anything. The CLI runs in-process for speed, with the environment a
terminal user would have after exporting the sandbox's variables.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
REGION = "ap-northeast-2"
ACCOUNT = "123456789012"
_OUTSIDE = ("JENKINS_", "CODEBUILD_", "GITHUB_", "GIT_", "AWS_", "DEPLOYFW_")
_CI_NAMES = {"CI", "JOB_NAME", "BUILD_NUMBER", "BUILD_URL", "CODEBUILD_BUILD_ID", "GITHUB_ACTIONS"}

_SERVER = textwrap.dedent(
    """
    import json, sys
    from deployfw.cli.app import App
    from deployfw.sandbox.session import SandboxSession

    config = App(config_path=sys.argv[1], env=None).load_config()
    session = SandboxSession.start(config)
    for name, value in json.loads(sys.argv[2]).items():
        setattr(session.aws.timings, name, value)
    print(json.dumps(session.environment()), flush=True)
    sys.stdin.read()  # serve until the test closes our stdin
    session.stop()
    """
)


def terminal_env(**overrides: str) -> dict[str, str]:
    """This environment without CI, AWS, Jenkins or deployfw variables, plus ``overrides``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OUTSIDE) and k not in _CI_NAMES}
    env.update(overrides)
    return env


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}  # fmt: skip
    return subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True).stdout


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


def copy_example(dest: Path) -> Path:
    """This checkout's tracked files as they are on disk, committed in a new repository."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPOSITORY, capture_output=True, check=True).stdout
    for rel in filter(None, listed.decode().split("\0")):
        source = REPOSITORY / rel
        if source.is_file():
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    git(dest, "init", "--quiet", "--initial-branch=main")
    commit_all(dest, "example")
    return dest


def change(repo: Path, module: str, text: str) -> str:
    """Commit a change to ``module``'s source; returns the new HEAD."""
    path = repo / "examples" / "shop" / "services" / module / "app" / "server.py"
    path.write_text(path.read_text() + f"\n# {text}\n")
    return commit_all(repo, f"{module}: {text}")


class Sandbox:
    """A sandbox process seeded from one modules.yaml, with its control endpoints."""

    def __init__(self, config: Path, timings: Mapping[str, float]) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _SERVER, str(config), json.dumps(dict(timings))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=config.parent,
            env=terminal_env(),
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            self._proc.kill()
            raise RuntimeError("the sandbox process ended before printing its environment")
        self.env: dict[str, str] = json.loads(line)
        self.endpoint = self.env["AWS_ENDPOINT_URL"]
        assert self.endpoint.startswith("http://127.0.0.1:")

    def close(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def requests(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.endpoint}/_sandbox/requests", timeout=10) as answer:
            return list(json.load(answer))

    def clear_requests(self) -> None:
        request = urllib.request.Request(f"{self.endpoint}/_sandbox/requests", method="DELETE")
        urllib.request.urlopen(request, timeout=10).close()

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service, region_name=REGION, endpoint_url=self.endpoint,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )  # fmt: skip

    def run_env(self) -> dict[str, str]:
        return terminal_env(
            AWS_ENDPOINT_URL=self.endpoint,
            AWS_ACCESS_KEY_ID="sandbox",
            AWS_SECRET_ACCESS_KEY="sandbox-secret",
            AWS_DEFAULT_REGION=REGION,
            AWS_REGION=REGION,
            JENKINS_URL=self.env["JENKINS_URL"],
            JENKINS_USER=self.env["JENKINS_USER"],
            JENKINS_API_TOKEN=self.env["JENKINS_API_TOKEN"],
        )

    def scope(self, env: str | None = None) -> Any:
        """The state scope runs against this sandbox use: the endpoint is part of the account key."""
        from deployfw.state import Scope

        return Scope(f"{ACCOUNT}@{self.endpoint.removeprefix('http://')}", REGION, env)


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_cli(env: Mapping[str, str], cwd: Path, *argv: str) -> Result:
    """``deployfw ARGV`` in this process with ``env`` as the whole environment; signal handlers restored."""
    from deployfw.cli import main

    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        for name in list(os.environ):
            patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        patch.chdir(cwd)
        try:
            main(list(argv))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            for sig, handler in saved.items():
                signal.signal(sig, handler)
    return Result(code, out.getvalue(), err.getvalue())


def operations(requests: list[dict[str, Any]], operation: str, **params: Any) -> list[dict[str, Any]]:
    """Requests of one operation whose logged key parameters include ``params``."""
    return [
        r for r in requests
        if r["operation"] == operation and all(r.get("params", {}).get(k) == v for k, v in params.items())
    ]  # fmt: skip
