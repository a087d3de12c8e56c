"""``plan``'s live checks: deploy backends with ``ChecksLive`` asked read-only, in plan order; none
when AWS is out of reach."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deployfw.backends import DeployOutcome, LiveCheck, ModuleJob, RunContext
from deployfw.config import Config, Module, load_config
from deployfw.context import make_context
from deployfw.detect import Affected, Detection
from deployfw.errors import ExternalError, Problem
from deployfw.hookspecs import hookimpl
from deployfw.livecheck import live_checks
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

    def live_checks(self, job: ModuleJob) -> Sequence[LiveCheck]:
        Checked.asked.append(job.module.name)
        if job.module.name == "broken":
            raise ExternalError("ecs.describe_services failed: the check has a bug")
        return [LiveCheck("controller", False, "the service is on the wrong controller", "migrate it"),
                LiveCheck("role", True, "pass the role")]  # fmt: skip


class Backends:
    @hookimpl
    def deployfw_register_backends(self, registry: Any) -> None:
        registry.add_build("noop-build", Stage)
        registry.add_registry("noop-registry", Stage)
        registry.add_deploy("checked", Checked)
        registry.add_deploy("plain", Stage)


def planned(tmp_path: Path) -> tuple[Any, Config, PluginManager, RunContext]:
    manager = PluginManager(entry_points=False)
    manager.register(Backends(), name="backends")
    (tmp_path / "modules.yaml").write_text(MODULES)
    config = load_config(tmp_path / "modules.yaml", catalog=manager.backends.catalog(), check_paths=False)
    names = ("broken", "checked", "plain")
    detection = Detection(None, "c" * 40, None, tuple(Affected(n, "service", ("x",)) for n in names), 0, ())
    ctx = make_context(config, head="c" * 40, environ={})
    return make_plan(config, detection, manager.backends, ctx), config, manager, ctx


def test_plan_asks_each_checking_backend_and_a_check_that_breaks_is_a_failed_row(tmp_path: Path) -> None:
    plan, config, manager, ctx = planned(tmp_path)
    Checked.asked.clear()

    found = live_checks(plan, config, manager.backends, ctx, unreachable=lambda _ctx: None)

    assert Checked.asked == ["broken", "checked"]  # plan order; the plain backend has no live checks
    assert [(r.module, r.row.check, r.row.ok) for r in found.rows] == [
        ("broken", "deploy", False), ("checked", "controller", False), ("checked", "role", True),
    ]  # fmt: skip
    assert found.rows[0].row.detail.startswith("the check failed: ExternalError: ecs.describe_services failed")
    assert [r.module for r in found.failed] == ["broken", "checked"]
    assert found.rows[1].text() == (
        "  FAIL  checked: controller: the service is on the wrong controller\n        fix: migrate it"
    )
    assert found.rows[2].to_json() == {"module": "checked", "check": "role", "ok": True, "detail": "pass the role",
                                       "fix": None}  # fmt: skip
    assert found.text().startswith("live checks: 3 (2 failed)\n")


def test_without_aws_no_check_runs_and_the_plan_says_why(tmp_path: Path) -> None:
    plan, config, manager, ctx = planned(tmp_path)
    Checked.asked.clear()

    found = live_checks(plan, config, manager.backends, ctx, unreachable=lambda _ctx: "Unable to locate credentials")

    assert Checked.asked == [] and found.rows == () and found.failed == []
    assert found.text() == "live checks: not run (Unable to locate credentials)"
    assert found.to_json() == {"rows": [], "not_run": "Unable to locate credentials"}
