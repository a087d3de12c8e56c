"""A third-party deploy backend with only the required methods works with every run option.

The plugin is registered in-process (``run_cli(..., plugins=...)``) next to the built-ins, its
modules build with the ``local`` backend and push to the sandbox's ECR; only the deploy stage is
the plugin's. Every option of ``run`` (and ``plan``, ``status``, ``rollback``) must either work
or say clearly why it does not apply - never an AttributeError because an optional ability
(artifacts, recovery, describe, redeploy) is missing.
"""

from __future__ import annotations

import json
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from deployfw.backends import DeployOutcome, ModuleJob, RunContext
from deployfw.config import Config, Module
from deployfw.errors import Problem
from deployfw.hookspecs import hookimpl
from deployfw.state import DeployRecord
from deployfw.state.sqlite import SqliteStore
from deployfw.testing import CliResult, GitRepoBuilder, SandboxProcess, run_cli

MODULES = """\
version: 1
project: edge
region: us-east-1
defaults:
  build: {backend: local}
  registry: {backend: ecr}
  deploy: {backend: fleet, hosts: 3}
modules:
  api: {path: svc/api}
  web: {path: svc/web}
"""
BUILDSPEC = """\
version: 0.2
phases:
  build:
    commands:
      - deployfw image build "$DEPLOYFW_MODULE_PATH/app" --push "$REPOSITORY_URI:$IMAGE_TAG" --tag "$IMAGE_CONTENT_TAG"
"""


class Fleet:
    """The whole deploy backend: steps, preflight, deploy."""

    deployed: list[tuple[str, str | None]] = []
    lock = threading.Lock()

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx

    def steps(self, module: Module, config: Config) -> Sequence[str]:
        hosts = module.deploy.get("hosts") if module.deploy else "?"
        return [f"roll {module.name} out to {hosts} hosts"]

    def preflight(self, module: Module, config: Config) -> Sequence[Problem]:
        return []

    def deploy(self, job: ModuleJob) -> DeployOutcome:
        with self.lock:
            Fleet.deployed.append((job.module.name, job.image_uri))
        job.log(f"rolled out {job.image_uri}")
        return DeployOutcome(True, deployment_id=f"fleet-{job.module.name}-{len(Fleet.deployed)}")


class FleetPlugin:
    @hookimpl
    def deployfw_register_backends(self, registry: Any) -> None:
        registry.add_deploy(
            "fleet",
            Fleet,
            schema={"type": "object", "properties": {"hosts": {"type": "integer", "minimum": 1}}},
            description="roll out to a fleet of hosts",
        )


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> GitRepoBuilder:
    files = {"modules.yaml": MODULES, "sandbox.yaml": "version: 1\nregion: us-east-1\nmodules: {}\n"}
    for name in ("api", "web"):
        files[f"svc/{name}/buildspec.yml"] = BUILDSPEC
        files[f"svc/{name}/app/main.py"] = f"print('{name}')\n"
    return GitRepoBuilder(tmp_path_factory.mktemp("fleet") / "repo", files)


@pytest.fixture(scope="module")
def sandbox(repo: GitRepoBuilder) -> Iterator[SandboxProcess]:
    # Seeded from a config without the fleet modules: the sandbox process does not have the plugin.
    with SandboxProcess(repo.path, config=repo.path / "sandbox.yaml") as box:
        yield box


@pytest.fixture
def deployfw(sandbox: SandboxProcess, repo: GitRepoBuilder) -> Callable[..., CliResult]:
    Fleet.deployed.clear()

    def invoke(*argv: str) -> CliResult:
        return run_cli(sandbox.run_env(), repo.path, *argv, plugins=(FleetPlugin(),))

    return invoke


def test_plan_and_dry_run_show_the_plugins_steps(deployfw: Callable[..., CliResult]) -> None:
    plan = deployfw("plan", "--all", "--json")
    assert plan.code == 0, plan.output
    stages = {m["name"]: m["stages"][-1] for m in json.loads(plan.stdout)["modules"]}
    assert stages["api"]["backend"] == "fleet" and stages["api"]["steps"] == ["roll api out to 3 hosts"]
    dry = deployfw("run", "--all", "--dry-run")
    assert dry.code == 0 and "roll web out to 3 hosts" in dry.stdout
    assert Fleet.deployed == []


def test_stop_after_build_and_push_with_artifacts(deployfw: Callable[..., CliResult], tmp_path: Path) -> None:
    built = deployfw("run", "--all", "--stop-after", "build", "--max-parallel", "1")
    assert built.code == 0, built.output
    pushed = deployfw("run", "--all", "--stop-after", "push", "--artifacts-dir", str(tmp_path / "art"))
    assert pushed.code == 0, pushed.output
    assert "deploy backend 'fleet' writes no CodePipeline artifacts" in pushed.stderr
    assert Fleet.deployed == []


def test_run_deploys_reports_and_is_up_to_date_after(
    deployfw: Callable[..., CliResult], tmp_path: Path, sandbox: SandboxProcess, repo: GitRepoBuilder
) -> None:
    report, junit = tmp_path / "r.json", tmp_path / "j.xml"
    done = deployfw("run", "--mode", "fail", "--report", str(report), "--junit", str(junit))
    assert done.code == 0, done.output
    assert sorted(name for name, _ in Fleet.deployed) == ["api", "web"]
    assert all(uri and "@sha256:" in uri for _, uri in Fleet.deployed)
    modules = {m["name"]: m for m in json.loads(report.read_text())["modules"]}
    assert modules["api"]["deploy"]["backend"] == "fleet" and modules["api"]["deploy"]["rolled_back"] is False
    assert modules["api"]["deploy"]["id"].startswith("fleet-api-")
    cases = list(ET.parse(junit).getroot().iter("testcase"))
    assert len(cases) == 6 and all(case.find("failure") is None for case in cases)  # 2 modules x 3 stages

    again = deployfw("run")
    assert again.code == 0, again.output
    assert "api: up to date" in again.stderr and len(Fleet.deployed) == 2

    status = deployfw("status", "--json")
    assert status.code == 0, status.output
    api = next(m for m in json.loads(status.stdout)["modules"] if m["name"] == "api")
    assert api["state"] == "unknown" and "cannot describe" in api["live"]["error"]

    rollback = deployfw("rollback", "api")
    assert rollback.code == 2
    assert "deploy backend 'fleet' of api cannot redeploy a recorded deploy" in rollback.stderr


def test_a_killed_runs_record_is_concluded_and_the_module_deployed(
    deployfw: Callable[..., CliResult], sandbox: SandboxProcess, repo: GitRepoBuilder
) -> None:
    store = SqliteStore(repo.path / ".deployfw" / "state.db")
    scope = sandbox.scope()
    store.record_start(DeployRecord(scope, "web", "killed-run", repo.head, backend="fleet"))
    repo.commit({"svc/web/app/main.py": "print('web v2')\n"})

    done = deployfw("run")

    assert done.code == 0, done.output
    assert "run killed-run: abandoned" in done.stderr  # no Recovers ability: nothing to await
    assert [name for name, _ in Fleet.deployed] == ["web"]
    outcomes = {r.run_id: r.outcome for r in store.history(scope, "web")}
    assert outcomes["killed-run"] == "abandoned" and list(outcomes.values()).count("succeeded") >= 1
