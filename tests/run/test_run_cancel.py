"""SIGTERM during a deployment: the deployment is stopped and rolled back, and the run says it failed.

payment-api (ecs-nlb, CodeDeploy) holds the only slot (``--max-parallel 1``) while
user-api waits for it. The sandbox's CodeDeploy steps are slowed down so the signal surely lands while the
deployment is in progress. ``deployfw run`` is a real subprocess here: signals are
what is under test.
"""

from __future__ import annotations

import json
import selectors
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from run_helpers import SECRET

from deployfw.testing import SandboxProcess, calls

SANDBOX_TIMINGS = {"deploy_step": 1.0, "rolling_step": 0.05}


def _read_until(proc: subprocess.Popen[str], needle: str, timeout: float) -> list[str]:
    """stderr lines of ``proc`` up to and including the first containing ``needle``."""
    assert proc.stderr is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stderr, selectors.EVENT_READ)
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not selector.select(timeout=deadline - time.monotonic()):
            break
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if needle in line:
            return lines
    proc.kill()
    raise AssertionError(f"no line with {needle!r} within {timeout}s:\n{''.join(lines)}")


@pytest.fixture(scope="module")
def cancelled(sandbox: SandboxProcess, example: Path) -> tuple[int, str, dict[str, Any]]:
    sandbox.clear_requests()
    proc = subprocess.Popen(
        [sys.executable, "-P", "-m", "deployfw", "run", "-m", "payment-api", "-m", "user-api", "--max-parallel", "1",
         "--report", "out/cancel.json", "--junit", "out/cancel.xml"],
        cwd=example, env=sandbox.run_env(AWS_SECRET_ACCESS_KEY=SECRET), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        before = _read_until(proc, "payment-api  deploy | deployment d-", timeout=60)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out + "".join(before) + err, json.loads((example / "out/cancel.json").read_text())


def test_sigterm_stops_and_rolls_back_the_deployment_in_progress(
    cancelled: tuple[int, str, dict[str, Any]], sandbox: SandboxProcess
) -> None:
    code, output, report = cancelled
    assert code == 1, output
    assert "SIGTERM: stopping builds and rolling back deployments in progress" in output
    module = next(m for m in report["modules"] if m["name"] == "payment-api")
    assert module["status"] == "failed", module
    deployment = module["deploy"]["id"]
    assert deployment and module["deploy"]["rolled_back"] is True
    stops = calls(sandbox.requests(), "StopDeployment", deploymentId=deployment)
    assert stops and all(r["status"] == 200 for r in stops)
    info = sandbox.client("codedeploy").get_deployment(deploymentId=deployment)["deploymentInfo"]
    assert info["status"] == "Stopped"
    # the service still runs what it ran before (the seeded task definition, not the new one)
    service = sandbox.client("ecs").describe_services(cluster="shop", services=["payment-api"])["services"][0]
    primary = next(t for t in service["taskSets"] if t["status"] == "PRIMARY")
    assert primary["taskDefinition"] != module["deploy"]["task_definition"]


def test_nothing_is_reported_succeeded_that_did_not(cancelled: tuple[int, str, dict[str, Any]], example: Path) -> None:
    _, output, report = cancelled
    assert report["status"] == "failed"
    modules = {m["name"]: m for m in report["modules"]}
    assert [s["status"] for s in modules["payment-api"]["stages"]][-1] == "failed"
    # user-api waited for the one slot and never started: not succeeded, and it says why
    waiting = modules["user-api"]
    assert waiting["status"] == "skipped" and waiting["error"] == "cancelled before it started"
    assert {s["status"] for s in waiting["stages"]} == {"skipped"} and waiting["image"] is None
    summary = [line.split()[:2] for line in output.splitlines() if line.split()[:1] in (["user-api"], ["payment-api"])]
    assert ["user-api", "succeeded"] not in summary and ["payment-api", "succeeded"] not in summary
    root = ET.parse(example / "out/cancel.xml").getroot()
    assert root.find("testsuite") is not None and root.find("testsuite").get("failures") != "0"  # type: ignore[union-attr]
    assert SECRET not in output + (example / "out/cancel.json").read_text() + (example / "out/cancel.xml").read_text()
