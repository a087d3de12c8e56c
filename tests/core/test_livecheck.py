"""``plan``'s live checks: deploy backends with ``ChecksLive`` asked read-only, in plan order, never fatal to run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deployfw.backends import DeployOutcome, LiveFinding, ModuleJob, RunContext
from deployfw.config import Config, Module, load_config
from deployfw.context import make_context
from deployfw.detect import Affected, Detection
from deployfw.errors import ExternalError, Problem
from deployfw.hookspecs import hookimpl
from deployfw.livecheck import live_findings
from deployfw.plan import make_plan
from deployfw.plugins import PluginManager

MODULES = """\
version: 1
defaults:
  build: {backend: noop-build}
  registry: {backend: noop-registry}
modules:
  checked: {path: svc/checked, deploy: {backend: checked}}
  broken: {path: svc/broken, deploy: {backend: checked}}
  plain: {path: svc/plain, deploy: {backend: plain}}
"""


class Stage:
    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx

    def steps(self, module: Module, config: Config) -> Sequence[str]:
        return []

    def preflight(self, module: Module, config: Config) -> Sequence[Problem]:
        return []

    def build(self, job: ModuleJob) -> Any:
        raise AssertionError("plan never builds")

    def prepare(self, job: ModuleJob, content_tag: str) -> Any:
        raise AssertionError("plan never prepares")

    def find(self, job: ModuleJob, tag: str) -> str | None:
        return None

    def promote(self, job: ModuleJob, digest: str, tags: Sequence[str]) -> None:
        raise AssertionError("plan never promotes")

    def deploy(self, job: ModuleJob) -> DeployOutcome:
        raise AssertionError("plan never deploys")


class Checked(Stage):
    asked: list[str] = []

    def live_checks(self, job: ModuleJob) -> Sequence[LiveFinding]:
        Checked.asked.append(job.module.name)
        if job.module.name == "broken":
            raise ExternalError("ecs.describe_services failed: Unable to locate credentials")
        return [LiveFinding("the service is on the wrong controller"), LiveFinding("pass the role", blocking=False)]


class Backends:
    @hookimpl
    def deployfw_register_backends(self, registry: Any) -> None:
        registry.add_build("noop-build", Stage)
        registry.add_registry("noop-registry", Stage)
        registry.add_deploy("checked", Checked)
        registry.add_deploy("plain", Stage)


def test_plan_asks_each_checking_backend_and_a_check_that_cannot_run_is_a_note(tmp_path: Path) -> None:
    manager = PluginManager(entry_points=False)
    manager.register(Backends(), name="backends")
    (tmp_path / "modules.yaml").write_text(MODULES)
    config = load_config(tmp_path / "modules.yaml", catalog=manager.backends.catalog(), check_paths=False)
    names = ("broken", "checked", "plain")
    detection = Detection(None, "c" * 40, None, tuple(Affected(n, "service", ("x",)) for n in names), 0, ())
    ctx = make_context(config, head="c" * 40, environ={})
    plan = make_plan(config, detection, manager.backends, ctx)
    Checked.asked.clear()

    found = live_findings(plan, config, manager.backends, ctx)

    assert Checked.asked == ["broken", "checked"]  # plan order; the plain backend has no live checks
    assert [(f.module, f.finding.blocking) for f in found] == [("broken", False), ("checked", True), ("checked", False)]
    assert found[0].finding.message.startswith("live checks not run: ecs.describe_services failed")
    assert found[1].text() == "  checked: FAIL the service is on the wrong controller"
    assert found[2].to_json() == {"module": "checked", "message": "pass the role", "blocking": False}
