"""``deployfw run --sandbox`` run again in one checkout: one AWS account, so the second run is up to date.

Each run is its own ``deployfw`` process, as a user types it, with the test kit's in-process
opt-out removed (``DEPLOYFW_SANDBOX_IN_PROCESS=0``): the first run starts this checkout's
background sandbox, the later ones reuse it. What the sandbox did is read from its request log;
the assertions are outcomes (which modules deployed, which calls were made), never durations.
Every test stops its background sandbox in teardown and checks that it is gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from run_helpers import MODULES, commit_all, copy_example

from deployfw.testing.cli import deployfw_command, terminal_env

pytestmark = [pytest.mark.sandbox, pytest.mark.long]

HANG_GUARD = 600  # seconds for one run or one wait; only a hang comes anywhere near it
DEPLOYING = {"CreateDeployment", "UpdateService", "RegisterTaskDefinition"}
ENV = {"DEPLOYFW_SANDBOX_IN_PROCESS": "0", "DEPLOYFW_SANDBOX_TIMINGS": "deploy_step=0.05,rolling_step=0.05"}


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    report: dict[str, Any]
    calls: list[dict[str, Any]]  # the sandbox's request log entries made during this run

    def deployed(self) -> dict[str, str]:
        return {m["name"]: m["status"] for m in self.report["modules"]}

    def operations(self) -> list[str]:
        return [c["operation"] for c in self.calls]


class Checkout:
    """A copy of the example repository whose background sandbox is stopped at the end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.state = path / ".deployfw" / "sandbox"
        self.seen: dict[str, int] = {}  # endpoint -> request log entries already read

    def run(self, *argv: str, **env: str) -> Run:
        report = self.path / "out.json"
        report.unlink(missing_ok=True)
        done = subprocess.run([*deployfw_command(), "run", *argv, "--report", str(report)], cwd=self.path,
                              env=terminal_env(**{**ENV, **env}), capture_output=True, text=True,
                              timeout=HANG_GUARD)  # fmt: skip
        assert report.exists(), done.stdout[-3000:] + done.stderr[-3000:]
        return Run(done.returncode, done.stdout, done.stderr, json.loads(report.read_text()), self._new_calls())

    def pid(self) -> int:
        return int((self.state / "pid").read_text())

    def endpoint(self) -> str:
        for line in (self.state / "env").read_text().splitlines():
            if line.startswith("export AWS_ENDPOINT_URL="):
                return line.partition("=")[2].strip("'")
        raise AssertionError("no AWS_ENDPOINT_URL in .deployfw/sandbox/env")

    def _new_calls(self) -> list[dict[str, Any]]:
        endpoint = self.endpoint()
        with urllib.request.urlopen(f"{endpoint}/_sandbox/requests", timeout=60) as answer:
            entries: list[dict[str, Any]] = json.loads(answer.read())
        start = self.seen.get(endpoint, 0)
        self.seen[endpoint] = len(entries)
        return entries[start:]

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            pid = self.pid()
            subprocess.run([*deployfw_command(), "sandbox", "--stop"], cwd=self.path, env=terminal_env(**ENV),
                           capture_output=True, text=True, timeout=HANG_GUARD)  # fmt: skip
            wait_until(lambda: not alive(pid))


@pytest.fixture
def checkout(tmp_path: Path) -> Iterator[Checkout]:
    box = Checkout(copy_example(tmp_path / "repo"))
    try:
        yield box
    finally:
        box.stop()


def wait_until(condition: Any) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while not condition():
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):  # a zombie (killed, not yet reaped by init) is not alive
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    return True


def test_a_second_run_is_up_to_date_a_change_deploys_its_module_and_reset_starts_over(checkout: Checkout) -> None:
    first = checkout.run("--sandbox")
    assert first.code == 0, first.stderr[-3000:]
    assert "sandbox: started in the background for this checkout" in first.stderr
    assert first.deployed() == dict.fromkeys(MODULES, "succeeded")
    pid = checkout.pid()

    second = checkout.run("--sandbox")
    assert second.code == 0, second.stderr[-3000:]
    assert f"sandbox: reusing this checkout's background sandbox (pid {pid}" in second.stderr
    assert second.deployed() == {}
    for name in MODULES:
        assert f"{name}: up to date" in second.stdout + second.stderr
    assert not DEPLOYING & set(second.operations()), second.operations()
    assert "DescribeServices" in second.operations()  # drift was checked against the live services

    spec = checkout.path / "examples/shop/services/user-api/buildspec.yml"
    spec.write_text(spec.read_text() + "# a change to user-api only\n")
    commit_all(checkout.path, "change user-api")
    third = checkout.run("--sandbox")
    assert third.code == 0, third.stderr[-3000:]
    assert third.deployed() == {"user-api": "succeeded"}
    assert third.operations().count("CreateDeployment") == 1 and "UpdateService" not in third.operations()
    assert checkout.pid() == pid

    reset = checkout.run("--sandbox-reset")
    assert reset.code == 0, reset.stderr[-3000:]
    assert "(--sandbox-reset)" in reset.stderr and f"stopped the background sandbox (pid {pid})" in reset.stderr
    assert reset.deployed() == dict.fromkeys(MODULES, "succeeded")
    assert checkout.pid() != pid and not alive(pid)


def test_a_killed_or_outdated_sandbox_is_replaced_and_nothing_is_called_up_to_date(checkout: Checkout) -> None:
    first = checkout.run("--sandbox")
    assert first.code == 0, first.stderr[-3000:]
    killed = checkout.pid()
    os.kill(killed, signal.SIGKILL)
    wait_until(lambda: not alive(killed))

    after_kill = checkout.run("--sandbox")
    assert after_kill.code == 0, after_kill.stderr[-3000:]
    assert f"the background sandbox (pid {killed}) has ended" in after_kill.stderr
    assert after_kill.deployed() == dict.fromkeys(MODULES, "succeeded")  # the new sandbox ran none of them
    assert "up to date" not in after_kill.stdout + after_kill.stderr
    replaced = checkout.pid()
    assert replaced != killed

    # A module added to modules.yaml: the same sandbox seeds its service in place and keeps the rest.
    services = checkout.path / "examples/shop/services"
    shutil.copytree(services / "user-api", services / "extra-api")
    config = checkout.path / "modules.yaml"
    config.write_text(
        config.read_text().replace(
            "  user-api:\n", "  extra-api:\n    path: examples/shop/services/extra-api\n\n  user-api:\n", 1
        )
    )
    commit_all(checkout.path, "add extra-api")
    after_edit = checkout.run("--sandbox")
    assert after_edit.code == 0, after_edit.stderr[-3000:]
    assert f"reusing this checkout's background sandbox (pid {replaced}); modules.yaml changed" in after_edit.stderr
    assert "seeded again in place (created what it adds: extra-api;" in after_edit.stderr
    assert after_edit.deployed().get("extra-api") == "succeeded"
    assert checkout.pid() == replaced

    # Other sandbox settings cannot be changed in place: the sandbox is replaced.
    after_settings = checkout.run("--sandbox", DEPLOYFW_SANDBOX_TIMINGS="deploy_step=0.02,rolling_step=0.02")
    assert after_settings.code == 0, after_settings.stderr[-3000:]
    assert "the DEPLOYFW_SANDBOX_* settings, the disabled plugins or deployfw changed" in after_settings.stderr
    assert after_settings.deployed() == dict.fromkeys((*MODULES, "extra-api"), "succeeded")
    assert not alive(replaced)
    # The replaced sandboxes' deploys were forgotten: one scope is left in the state store.
    import sqlite3

    with contextlib.closing(sqlite3.connect(checkout.path / ".deployfw" / "state.db")) as db:
        scopes = {row[0] for row in db.execute("SELECT scope FROM records")}
    assert len(scopes) == 1 and "~" in next(iter(scopes)), scopes
