"""Helpers for the ``deployfw run`` tests: a copy of the example repository, a sandbox, the CLI.

The sandbox runs in its own process (``python -c`` around :class:`SandboxSession`),
the way a user runs ``deployfw sandbox`` in another shell: moto keeps its state in
process-wide dictionaries, so an in-process sandbox would share ECR images and
services with other test directories' sandboxes and make "no image pushed" or "a
fresh build" depend on which tests ran before. Its request log and faults are read
and set over the sandbox's HTTP control endpoints, exactly as DESIGN.md documents
them. The CLI itself runs in-process (fast) or as a subprocess (signals).
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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
REGION = "ap-northeast-2"
SERVICES = ("order-api", "payment-api", "product-api", "user-api")
BLUEGREEN = ("order-api", "payment-api", "user-api")  # ecs-bluegreen and ecs-nlb: CodeDeploy
SECRET = "deployfwTESTsecret-7c1e94b2a55d"  # recognisable: must never reach a log, report or JUnit file
# Every API that changes something: what --dry-run and plan must never call.
MUTATING_PREFIXES = (
    "Create", "Delete", "Put", "Register", "Deregister", "Update", "Start", "Stop", "Tag", "Untag",
    "Initiate", "Upload", "Complete", "BatchDelete", "Modify", "Set", "Continue",
)  # fmt: skip
_CI_NAMES = {"CI", "JOB_NAME", "BUILD_NUMBER", "BUILD_URL", "JENKINS_URL", "GITHUB_ACTIONS", "CODEBUILD_BUILD_ID"}
_OUTSIDE = ("JENKINS_", "CODEBUILD_", "GITHUB_", "GIT_", "AWS_", "DEPLOYFW_")

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


def copy_example(dest: Path) -> Path:
    """The repository's tracked files as they are on disk (uncommitted edits too), committed in a new repo.

    ``git archive HEAD`` would miss work in progress in this checkout; ``git ls-files``
    lists what is tracked and the copy takes each file's current content.
    """
    listed = (
        subprocess.run(["git", "ls-files", "-z"], cwd=REPOSITORY, capture_output=True, check=True)
        .stdout.decode()
        .split("\0")
    )
    for rel in filter(None, listed):
        source = REPOSITORY / rel
        if not source.is_file():  # deleted in the working tree
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    git(dest, "init", "--quiet", "--initial-branch=main")
    commit_all(dest, "example")
    return dest


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}  # fmt: skip
    return subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True).stdout


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


class Sandbox:
    """A ``deployfw`` sandbox process seeded from one modules.yaml, with its control endpoints."""

    def __init__(self, config: Path, timings: Mapping[str, float]) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-P", "-c", _SERVER, str(config), json.dumps(dict(timings))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=config.parent.parent,  # not the copy: its own deployfw/ must not shadow the installed one
            env=terminal_env(),
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            self._proc.kill()
            raise RuntimeError("the sandbox process ended before printing its environment")
        self.env: dict[str, str] = json.loads(line)
        self.endpoint = self.env["AWS_ENDPOINT_URL"]

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
        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint}/_sandbox/requests", method="DELETE"))

    def set_faults(self, faults: str) -> None:
        body = json.dumps({"faults": faults}).encode()
        request = urllib.request.Request(
            f"{self.endpoint}/_sandbox/faults", data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        urllib.request.urlopen(request, timeout=10).close()

    def client(self, service: str) -> Any:
        """Plain boto3, to look at the outcome the way a user would."""
        import boto3

        return boto3.client(
            service, region_name=REGION, endpoint_url=self.endpoint,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )  # fmt: skip

    def run_env(self) -> dict[str, str]:
        """What a terminal user pointing deployfw at this sandbox has exported (our secret as the key)."""
        return terminal_env(
            AWS_ENDPOINT_URL=self.endpoint,
            AWS_ACCESS_KEY_ID="sandbox",
            AWS_SECRET_ACCESS_KEY=SECRET,
            AWS_DEFAULT_REGION=REGION,
            AWS_REGION=REGION,
            JENKINS_URL=self.env["JENKINS_URL"],
            JENKINS_USER=self.env["JENKINS_USER"],
            JENKINS_API_TOKEN=self.env["JENKINS_API_TOKEN"],
        )


def terminal_env(**overrides: str) -> dict[str, str]:
    """This environment without CI, AWS, Jenkins or deployfw variables: a plain terminal."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OUTSIDE) and k not in _CI_NAMES}
    env.update(overrides)
    return env


def start_sandbox(config: Path, **timings: float) -> Iterator[Sandbox]:
    """Generator body for a fixture: a sandbox for ``config`` that stops at teardown."""
    box = Sandbox(config, timings)
    try:
        yield box
    finally:
        box.close()


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_cli(env: Mapping[str, str], cwd: Path, *argv: str) -> Result:
    """``deployfw ARGV`` in this process, with ``env`` as the whole environment.

    Usable from fixtures of any scope (no capsys): output is captured by swapping
    ``sys.stdout``/``sys.stderr``. ``run`` installs SIGINT/SIGTERM handlers; they are
    put back afterwards so pytest's own Ctrl-C handling survives.
    """
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


def calls(requests: list[dict[str, Any]], operation: str, **params: Any) -> list[dict[str, Any]]:
    """Requests of one operation whose logged key parameters include ``params``."""
    return [
        r for r in requests
        if r["operation"] == operation and all(r.get("params", {}).get(k) == v for k, v in params.items())
    ]  # fmt: skip


def mutating(requests: list[dict[str, Any]]) -> list[str]:
    return [f"{r['service']}:{r['operation']}" for r in requests if r["operation"].startswith(MUTATING_PREFIXES)]
