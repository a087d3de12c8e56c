"""CodeBuild-shaped builds: every build a fresh clone with CodeBuild's variables and no ``.deployfw/``.

Each build runs the shipped root ``buildspec.yml`` as CodeBuild would - its ``env.variables``,
its ``build`` phase commands in bash - in a fresh shallow clone of the repository, with
``CODEBUILD_BUILD_ID``, ``CODEBUILD_RESOLVED_SOURCE_VERSION`` and ``CODEBUILD_WEBHOOK_PREV_COMMIT``
set, against the sandbox (which serves DynamoDB). With the buildspec's shared store the second
build measures each module from its own last deploy: the unchanged ones are "up to date" and the
module that failed in the first build is deployed again, although the CI variables alone would
never have picked it. With the agent's sqlite file instead, every build says what it loses.
Tests run in file order on one history.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from statecli_helpers import change, git

from deployfw.testing import SandboxProcess, calls, mutating, run_cli

SERVICES = ["order-api", "payment-api", "product-api", "user-api"]


def buildspec(example: Path) -> dict[str, Any]:
    return dict(yaml.safe_load((example / "buildspec.yml").read_text()))


def fresh_clone(example: Path, dest: Path) -> Path:
    """What CodeBuild checks out: a shallow clone (depth 1) of the pushed commit, nothing else on disk."""
    subprocess.run(["git", "clone", "--quiet", "--depth", "1", f"file://{example}", str(dest)], check=True)
    assert not (dest / ".deployfw").exists()
    return dest


def codebuild_env(sandbox: SandboxProcess, example: Path, head: str, prev: str | None, **extra: str) -> dict[str, str]:
    variables = {k: str(v) for k, v in (buildspec(example)["env"]["variables"] or {}).items()}
    ci = {
        "CODEBUILD_BUILD_ID": f"shop-deploy:{uuid.uuid4()}",
        "CODEBUILD_RESOLVED_SOURCE_VERSION": head,
        "CODEBUILD_WEBHOOK_PREV_COMMIT": prev or "0" * 40,  # the first push of a branch names no commit
    }
    env = sandbox.run_env(**{**variables, **ci, **extra})
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"  # the installed deployfw
    return env


def run_build(clone: Path, env: dict[str, str], example: Path) -> subprocess.CompletedProcess[str]:
    """The build phase of the shipped buildspec, each command in bash as CodeBuild runs it."""
    commands = "\n".join(buildspec(example)["phases"]["build"]["commands"])
    return subprocess.run(["bash", "-e", "-c", commands], cwd=clone, env=env, capture_output=True, text=True,
                          timeout=900)  # fmt: skip


def report_of(clone: Path) -> dict[str, Any]:
    return dict(json.loads((clone / "deployfw-report.json").read_text()))


@pytest.fixture(scope="module")
def table(sandbox: SandboxProcess, example: Path) -> str:
    """The shared table, created once before the first build (what the buildspec's comment asks)."""
    env = codebuild_env(sandbox, example, "x", None)
    created = run_cli({k: v for k, v in env.items() if not k.startswith("CODEBUILD_")}, example, "state", "init")
    assert created.code == 0, created.output
    assert created.stdout.strip() == "created DynamoDB table deployfw-state in ap-northeast-2"
    return "deployfw-state"


@pytest.fixture(scope="module")
def first_build(sandbox: SandboxProcess, example: Path, table: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Build 1 of the first commit; user-api's deployment fails its health checks (rolled back)."""
    head = git(example, "rev-parse", "HEAD").strip()
    clone = fresh_clone(example, tmp_path_factory.mktemp("build1") / "src")
    sandbox.set_faults("deploy:user-api")
    try:
        done = run_build(clone, codebuild_env(sandbox, example, head, None), example)
    finally:
        sandbox.set_faults("")
    assert done.returncode == 1, done.stdout + done.stderr
    statuses = {m["name"]: m["status"] for m in report_of(clone)["modules"]}
    assert statuses == {"order-api": "succeeded", "payment-api": "succeeded", "product-api": "succeeded",
                        "user-api": "failed"}  # fmt: skip
    assert not (clone / ".deployfw" / "state.db").exists()  # nothing of the history on the agent's disk
    state = report_of(clone)["state"]
    assert (state["backend"], state["shared"], state["source"], state["ci"]) == (
        "dynamodb", True, "DEPLOYFW_STATE", "CodeBuild"
    )  # fmt: skip
    assert state["warning"] is None and "warning:" not in done.stderr
    return head


def test_the_next_build_from_a_fresh_clone_keeps_per_module_bases_and_retries_the_failure(
    sandbox: SandboxProcess, example: Path, first_build: str, tmp_path: Path
) -> None:
    head = change(example, "order-api", "version 2")
    clone = fresh_clone(example, tmp_path / "src")
    sandbox.clear_requests()

    done = run_build(clone, codebuild_env(sandbox, example, head, first_build), example)

    assert done.returncode == 0, done.stdout + done.stderr
    for unchanged in ("payment-api", "product-api"):
        assert f"{unchanged}: up to date (deployed {first_build[:12]}, nothing it depends on changed since)" in (
            done.stderr
        )
    assert "user-api: no successful deploy yet: last attempt rolled_back" in done.stderr
    modules = {m["name"]: m for m in report_of(clone)["modules"]}
    assert sorted(modules) == ["order-api", "user-api"]  # the CI variables alone name order-api only
    assert all(m["status"] == "succeeded" for m in modules.values())
    requests = sandbox.requests()
    assert len(calls(requests, "CreateDeployment")) == 2  # order-api and user-api (CodeDeploy blue/green)
    assert calls(requests, "UpdateService") == []  # product-api (rolling) was up to date


def test_the_same_builds_on_the_agents_sqlite_file_say_what_they_lose(
    sandbox: SandboxProcess, example: Path, first_build: str, tmp_path: Path
) -> None:
    base = git(example, "rev-parse", "HEAD").strip()
    head = change(example, "product-api", "version 2")
    clone = fresh_clone(example, tmp_path / "src")
    env = codebuild_env(sandbox, example, head, base, DEPLOYFW_STATE="", DEPLOYFW_REQUIRE_SHARED_STATE="")

    done = run_build(clone, env, example)

    assert done.returncode == 0, done.stdout + done.stderr
    warning = done.stderr.splitlines()[0]  # the first thing the log says, before any lock is waited for
    assert [line for line in done.stderr.splitlines() if "warning:" in line] == [warning]  # and only once
    assert " deployfw     state  | warning: " in warning
    assert "warning: the state store is a sqlite file" in warning and "on this CodeBuild agent's disk" in warning
    assert "measures changes from CODEBUILD_WEBHOOK_PREV_COMMIT and does not retry failed modules" in warning
    report = report_of(clone)
    assert report["state"]["backend"] == "sqlite" and report["state"]["warning"] in warning
    assert [m["name"] for m in report["modules"]] == ["product-api"]  # from the CI variables, nothing else known

    plan = run_cli(env, clone, "plan", "--json")
    assert plan.code == 0, plan.output
    [planned] = json.loads(plan.stdout)["warnings"]
    assert planned.startswith("warning: the state store is a sqlite file")


def test_requiring_a_shared_store_stops_a_sqlite_build_before_anything_changes(
    sandbox: SandboxProcess, example: Path, first_build: str, tmp_path: Path
) -> None:
    head = git(example, "rev-parse", "HEAD").strip()
    clone = fresh_clone(example, tmp_path / "src")
    env = codebuild_env(sandbox, example, head, first_build, DEPLOYFW_STATE="{backend: sqlite}")
    assert env["DEPLOYFW_REQUIRE_SHARED_STATE"] == "true"  # the shipped buildspec enforces it
    sandbox.clear_requests()

    done = run_build(clone, env, example)

    assert done.returncode == 2, done.stdout + done.stderr
    assert "DEPLOYFW_REQUIRE_SHARED_STATE: this CodeBuild run needs a shared state store" in done.stderr
    assert mutating(sandbox.requests()) == [] and not (clone / ".deployfw" / "state.db").exists()


def test_shipped_ci_files_name_the_shared_store(example: Path) -> None:
    variables = buildspec(example)["env"]["variables"]
    assert yaml.safe_load(variables["DEPLOYFW_STATE"]) == {"backend": "dynamodb", "table": "deployfw-state"}
    jenkinsfile = (example / "Jenkinsfile").read_text()
    assert "DEPLOYFW_STATE = '{backend: dynamodb, table: deployfw-state}'" in jenkinsfile
