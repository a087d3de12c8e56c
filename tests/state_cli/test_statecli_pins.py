"""Rollbacks that hold: a rollback pins its module until the module's own inputs change or it is unpinned.

One history on the sandbox with the DynamoDB store (``DEPLOYFW_STATE``, as the CI files set it):
every module deployed, then a change to user-api deployed. ``rollback user-api`` then returns it to
the first task definition and pins it; a run triggered by a commit to *another* module - from a
fresh clone with CodeBuild's variables, as the next CodeBuild build would be - leaves user-api on the
rolled-back task definition and says why; naming it with ``-m`` needs ``--unpin``; a commit to
user-api itself deploys head and releases the pin, and so do ``deployfw unpin`` and ``run -m
user-api --unpin``. Tests run in file order.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from statecli_helpers import change, git, primary_task_definition

from deployfw.testing import CliResult, SandboxProcess, mutating, run_cli

STATE = "{backend: dynamodb, table: pins-state}"


@pytest.fixture(scope="module")
def cli(sandbox: SandboxProcess) -> Callable[..., CliResult]:
    """``cli(cwd, *argv, **env)``: the CLI in-process against the sandbox with the shared DynamoDB store."""
    return lambda cwd, *argv, **env: run_cli(sandbox.run_env(DEPLOYFW_STATE=STATE, **env), cwd, *argv)


@dataclass
class History:
    first_commit: str
    second_commit: str
    first_td: str
    second_td: str


def head_of(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


def status_of(cli: Callable[..., CliResult], cwd: Path, module: str) -> dict[str, Any]:
    result = cli(cwd, "status", "--json")
    assert result.code == 0, result.output
    return next(m for m in json.loads(result.stdout)["modules"] if m["name"] == module)


@pytest.fixture(scope="module")
def history(cli: Callable[..., CliResult], example: Path, sandbox: SandboxProcess) -> History:
    created = cli(example, "state", "init")
    assert created.code == 0, created.output
    first = cli(example, "run", "--all")
    assert first.code == 0, first.output
    first_commit, first_td = head_of(example), primary_task_definition(sandbox, "user-api")
    second_commit = change(example, "user-api", "version 2 (the one to roll back)")
    second = cli(example, "run")
    assert second.code == 0, second.output
    second_td = primary_task_definition(sandbox, "user-api")
    assert second_td != first_td
    return History(first_commit, second_commit, first_td, second_td)


def test_a_failed_rollback_leaves_no_pin(
    cli: Callable[..., CliResult], example: Path, sandbox: SandboxProcess, history: History
) -> None:
    sandbox.set_faults("deploy:user-api")
    try:
        failed = cli(example, "rollback", "user-api")
    finally:
        sandbox.set_faults("")

    assert failed.code == 1, failed.output
    assert "rollback to commit" in failed.stdout and "failed" in failed.stdout
    assert status_of(cli, example, "user-api")["pin"] is None
    assert primary_task_definition(sandbox, "user-api") == history.second_td  # CodeDeploy rolled it back


def test_rollback_pins_the_module_to_the_rolled_back_revision(
    cli: Callable[..., CliResult], example: Path, sandbox: SandboxProcess, history: History
) -> None:
    result = cli(example, "rollback", "user-api")

    assert result.code == 0, result.output
    assert f"user-api: rolled back to commit {history.first_commit[:12]}" in result.stdout
    assert f"pinned: runs skip it until its own inputs change after {history.second_commit[:12]}" in result.stdout
    assert primary_task_definition(sandbox, "user-api") == history.first_td
    pin = status_of(cli, example, "user-api")["pin"]
    assert pin["holds"] is True and pin["void"] is None
    assert (pin["commit"], pin["since"], pin["task_definition"]) == (
        history.first_commit, history.second_commit, history.first_td
    )  # fmt: skip
    assert pin["reason"].startswith(f"pinned by rollback {pin['run_id']} at ")
    text = cli(example, "status", "--no-live")
    assert f"  - {pin['reason']} (holds commit {history.first_commit[:12]}, " in text.stdout


def test_a_build_for_another_module_keeps_the_rollback_and_says_why(
    cli: Callable[..., CliResult], example: Path, sandbox: SandboxProcess, history: History, tmp_path: Path
) -> None:
    previous = head_of(example)
    head = change(example, "order-api", "a teammate's change")
    clone = tmp_path / "agent"  # another agent: a fresh clone, CodeBuild's variables, no local state
    subprocess.run(["git", "clone", "--quiet", "--depth", "1", f"file://{example}", str(clone)], check=True)
    codebuild = {"CODEBUILD_BUILD_ID": f"shop-deploy:{uuid.uuid4()}", "CODEBUILD_RESOLVED_SOURCE_VERSION": head,
                 "CODEBUILD_WEBHOOK_PREV_COMMIT": previous}  # fmt: skip
    pin = status_of(cli, example, "user-api")["pin"]

    result = cli(clone, "run", "--report", "report.json", "--html", "page.html", **codebuild)

    assert result.code == 0, result.output
    reason = f"pinned by rollback {pin['run_id']} at {pin['reason'].split(' at ', 1)[1].split(';')[0]}"
    assert f"user-api: {reason}; `deployfw unpin user-api` to release" in result.stderr  # in the plan
    assert primary_task_definition(sandbox, "user-api") == history.first_td  # still the rolled-back revision
    report = json.loads((clone / "report.json").read_text())
    modules = {m["name"]: m for m in report["modules"]}
    assert modules["order-api"]["status"] == "succeeded"
    assert modules["user-api"]["status"] == "skipped" and modules["user-api"]["reason"] == pin["reason"]
    assert modules["user-api"]["error"] is None and report["status"] == "succeeded"
    assert [(p["module"], p["status"], p["run_id"]) for p in report["pins"]] == [("user-api", "held", pin["run_id"])]
    assert "skipped" in result.stdout.split("user-api", 1)[1].splitlines()[0]  # the summary table
    assert f"pinned by rollback {pin['run_id']}" in (clone / "page.html").read_text()  # the run page too


def test_naming_a_pinned_module_needs_unpin(
    cli: Callable[..., CliResult], example: Path, sandbox: SandboxProcess, history: History
) -> None:
    sandbox.clear_requests()

    result = cli(example, "run", "-m", "user-api")
    stray = cli(example, "run", "--unpin")

    assert result.code == 2, result.output
    assert "user-api is pinned by rollback" in result.stderr and "`run -m user-api --unpin`" in result.stderr
    assert stray.code == 2 and "--unpin needs -m MODULE" in stray.stderr
    assert mutating(sandbox.requests()) == []
    assert primary_task_definition(sandbox, "user-api") == history.first_td


def test_a_change_to_the_module_deploys_head_and_releases_the_pin(
    cli: Callable[..., CliResult], example: Path, sandbox: SandboxProcess, history: History
) -> None:
    fix = change(example, "user-api", "the fix")
    plan = cli(example, "plan")
    assert plan.code == 0, plan.output
    assert f"user-api: changed since the rollback pin ({history.second_commit[:12]}): " in plan.stdout
    assert "  pin:   released when this deploy succeeds (set by rollback " in plan.stdout

    result = cli(example, "run", "--report", "fix.json")

    assert result.code == 0, result.output
    assert primary_task_definition(sandbox, "user-api") not in (history.first_td, history.second_td)
    assert status_of(cli, example, "user-api")["pin"] is None
    pins = json.loads((example / "fix.json").read_text())["pins"]
    assert [(p["module"], p["status"]) for p in pins] == [("user-api", "released")]
    assert status_of(cli, example, "user-api")["last_success"]["commit"] == fix


def test_unpin_releases_a_rollback_and_the_next_run_deploys_head(
    cli: Callable[..., CliResult], example: Path, sandbox: SandboxProcess, history: History
) -> None:
    rolled = cli(example, "rollback", "user-api")
    assert rolled.code == 0 and "pinned" in rolled.stdout, rolled.output
    held_td = primary_task_definition(sandbox, "user-api")

    released = cli(example, "unpin", "user-api")
    again = cli(example, "unpin", "user-api")
    change(example, "order-api", "another unrelated change")
    result = cli(example, "run")

    assert released.code == 0 and released.stdout.startswith("user-api: released the pin of rollback "), released.output
    assert again.code == 0 and again.stdout.strip() == "user-api: not pinned"
    assert result.code == 0, result.output
    assert "user-api: since deploy " in result.stderr  # measured from the rollback's deploy again
    assert primary_task_definition(sandbox, "user-api") != held_td


def test_run_m_with_unpin_deploys_head_over_the_pin(
    cli: Callable[..., CliResult], example: Path, sandbox: SandboxProcess, history: History
) -> None:
    rolled = cli(example, "rollback", "user-api")
    assert rolled.code == 0, rolled.output
    held_td = primary_task_definition(sandbox, "user-api")

    result = cli(example, "run", "-m", "user-api", "--unpin")

    assert result.code == 0, result.output
    assert "--unpin: deploys head over the pin of rollback " in result.stderr
    assert primary_task_definition(sandbox, "user-api") != held_td
    assert status_of(cli, example, "user-api")["pin"] is None
