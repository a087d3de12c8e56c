"""A rollback killed mid-deployment still holds: its pin is written before the deployment is created.

``deployfw rollback`` runs in a process of its own and is SIGKILLed once its CodeDeploy
deployment exists (the sandbox is slowed down so the deployment is still running). The pin is
in the store and holds - the rollback's record says "started", the service is on its way to the
pinned revision - so the plan of the next run skips the module with the pin's reason; ``run -m
--unpin`` then concludes the killed rollback's deployment before it deploys head, and releases
the pin.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from statecli_helpers import change

from deployfw.testing import CliResult, SandboxProcess
from deployfw.testing.cli import deployfw_command

SANDBOX_TIMINGS = {"deploy_step": 0.3, "rolling_step": 0.05}  # a rollback deployment takes a few seconds


def kill_once_deploying(example: Path, sandbox: SandboxProcess) -> list[str]:
    """``deployfw rollback user-api``, SIGKILLed right after it created its deployment; its stderr lines."""
    proc = subprocess.Popen([*deployfw_command(), "rollback", "user-api"], cwd=example, env=sandbox.run_env(),
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)  # fmt: skip
    assert proc.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + 120
    try:
        for line in proc.stderr:
            lines.append(line)
            if "deploy | deployment d-" in line or time.monotonic() > deadline:
                break
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, "".join(lines)
    return lines


def test_a_killed_rollback_holds_until_unpin_deploys_head(
    deployfw: Callable[..., CliResult], example: Path, sandbox: SandboxProcess
) -> None:
    for text in ("", "version 2"):
        if text:
            change(example, "user-api", text)
        deployed = deployfw("run", "-m", "user-api")
        assert deployed.code == 0, deployed.output

    lines = kill_once_deploying(example, sandbox)

    assert any("pin    | user-api pinned by rollback" in line for line in lines), "".join(lines)
    status = json.loads(deployfw("status", "--json", "--no-live").stdout)
    module = next(m for m in status["modules"] if m["name"] == "user-api")
    assert module["pin"]["holds"] is True and module["in_flight"]["run_id"] == module["pin"]["run_id"]
    text = deployfw("status", "--no-live").stdout  # the killed process's lease has not run out yet
    assert f"by run {module['pin']['run_id']}, running" in text and f"  - {module['pin']['reason']}" in text, text
    change(example, "product-api", "unrelated")
    plan = deployfw("plan")
    assert plan.code == 0, plan.output
    assert f"user-api: {module['pin']['reason']}" in plan.stdout and "product-api: " in plan.stdout

    unpinned = deployfw("run", "-m", "user-api", "--unpin", "--mode", "supersede")  # the killed holder is gone

    assert unpinned.code == 0, unpinned.output
    killed = module["pin"]["run_id"]
    assert f"run {killed} left deployment " in unpinned.stderr and "in flight; concluding it" in unpinned.stderr
    after = json.loads(deployfw("status", "--json", "--no-live").stdout)
    module = next(m for m in after["modules"] if m["name"] == "user-api")
    assert module["pin"] is None and module["in_flight"] is None
    assert module["last_success"]["run_id"] not in (killed,)  # head, deployed after the rollback was concluded
