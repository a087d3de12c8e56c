"""The planner and the executor with in-memory backends (as chalice tests its planner).

No AWS, no sandbox: fake build, registry and deploy backends registered through the public
hook record what the runner asks of them, and a sqlite state store keyed by a test plugin's
account. What these pin down: the plan carries what the runner needs (stage backends and
options, content tags, order), the runner executes the plan in dependency order, and the one
deploy sequence - shared by ``run`` and ``rollback`` - concludes a killed run's deployment the
same way for both.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from deployfw.backends import DeployOutcome, ImageRef, ModuleJob, RunContext, StageResult
from deployfw.config import Config, Module, load_config
from deployfw.context import make_context
from deployfw.deploying import conclude_in_flight, recorded_deploy
from deployfw.detect import Affected, Detection
from deployfw.errors import Problem
from deployfw.events import EventLog
from deployfw.hookspecs import hookimpl
from deployfw.plan import make_plan
from deployfw.plugins import PluginManager
from deployfw.runner import Runner, RunOptions
from deployfw.runstate import RunState
from deployfw.state import DeployRecord

HEAD = "c" * 40
MODULES = """\
version: 1
project: shop
region: us-east-1
defaults:
  build: {backend: fake-build}
  registry: {backend: fake-registry}
  deploy: {backend: fake-deploy, lane: blue}
modules:
  common: {path: libs/common, kind: library}
  users: {path: svc/users, depends_on: [common]}
  orders: {path: svc/orders, depends_on: [users]}
  search: {path: svc/search, deploy: {lane: green}}
"""


class World:
    """What the fake backends share: the images they hold, the calls they saw, what fails."""

    def __init__(self) -> None:
        self.images: dict[str, str] = {}
        self.calls: list[tuple[str, str]] = []
        self.fail_deploy: set[str] = set()
        self.findings: list[Problem] = []
        self.in_flight: dict[str, str] = {}  # deployment id -> how it ends when recovered
        self.located: dict[str, str] = {}  # run id -> deployment id it created
        self.lock = threading.Lock()

    def saw(self, what: str, module: str) -> None:
        with self.lock:
            self.calls.append((what, module))


class FakeBuild:
    def __init__(self, ctx: RunContext, world: World) -> None:
        self.world = world

    def steps(self, module: Module, config: Config) -> Sequence[str]:
        return [f"build {module.name}"]

    def preflight(self, module: Module, config: Config) -> Sequence[Problem]:
        return list(self.world.findings)

    def build(self, job: ModuleJob) -> StageResult:
        assert job.image is not None
        self.world.saw("build", job.module.name)
        self.world.images[job.image.content_tag] = f"sha256:{job.module.name}"
        return StageResult(True, details={"built": True})


class FakeRegistry:
    def __init__(self, ctx: RunContext, world: World) -> None:
        self.world = world

    def steps(self, module: Module, config: Config) -> Sequence[str]:
        return ["find or push"]

    def preflight(self, module: Module, config: Config) -> Sequence[Problem]:
        return []

    def prepare(self, job: ModuleJob, content_tag: str) -> ImageRef:
        return ImageRef(job.module.name, f"registry.example/{job.module.name}", job.ctx.head, content_tag)

    def find(self, job: ModuleJob, tag: str) -> str | None:
        return self.world.images.get(tag)

    def promote(self, job: ModuleJob, digest: str, tags: Sequence[str]) -> None:
        for tag in tags:
            self.world.images[tag] = digest


class FakeDeploy:
    def __init__(self, ctx: RunContext, world: World) -> None:
        self.world = world

    def steps(self, module: Module, config: Config) -> Sequence[str]:
        return [f"deploy to lane {module.deploy.get('lane') if module.deploy else '?'}"]

    def preflight(self, module: Module, config: Config) -> Sequence[Problem]:
        return []

    def deploy(self, job: ModuleJob) -> DeployOutcome:
        self.world.saw("deploy", job.module.name)
        job.progress(deployment_id=f"dep-{job.module.name}")
        if job.module.name in self.world.fail_deploy:
            return DeployOutcome(False, "health checks failed", f"dep-{job.module.name}", rolled_back=True)
        return DeployOutcome(True, None, f"dep-{job.module.name}", f"td-{job.module.name}", details={"lane": "x"})

    def redeploy(self, job: ModuleJob, record: DeployRecord) -> DeployOutcome:
        self.world.saw("redeploy", job.module.name)
        return DeployOutcome(True, None, "dep-redeploy", record.task_definition)

    def locate(self, job: ModuleJob, run_id: str, task_definition: str | None) -> str | None:
        self.world.saw("locate", job.module.name)
        return self.world.located.get(run_id)

    def recover(self, job: ModuleJob, deployment_id: str) -> DeployOutcome:
        self.world.saw(f"recover {deployment_id}", job.module.name)
        ok = self.world.in_flight.pop(deployment_id) == "succeeded"
        return DeployOutcome(ok, None if ok else "it failed", deployment_id, "td-old")


class Fakes:
    def __init__(self, world: World) -> None:
        self.world = world

    @hookimpl
    def deployfw_register_backends(self, registry: Any) -> None:
        world = self.world
        registry.add_build("fake-build", lambda ctx: FakeBuild(ctx, world))
        registry.add_registry("fake-registry", lambda ctx: FakeRegistry(ctx, world))
        registry.add_deploy(
            "fake-deploy", lambda ctx: FakeDeploy(ctx, world), schema={"type": "object", "properties": {"lane": {}}}
        )

    @hookimpl(tryfirst=True)
    def deployfw_state_account(self, ctx: RunContext) -> str:
        return "000000000000"


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def manager(world: World) -> PluginManager:
    manager = PluginManager(entry_points=False)
    manager.register(Fakes(world), name="fakes")
    return manager


@pytest.fixture
def config(tmp_path: Path, manager: PluginManager) -> Config:
    (tmp_path / "modules.yaml").write_text(MODULES)
    return load_config(tmp_path / "modules.yaml", catalog=manager.backends.catalog(), check_paths=False)


def detection(*names: str) -> Detection:
    kinds = {"common": "library"}
    modules = tuple(Affected(n, kinds.get(n, "service"), ("changed",)) for n in sorted(names))  # type: ignore[arg-type]
    return Detection(None, HEAD, None, modules, 0, ())


def plan_of(config: Config, manager: PluginManager, *names: str, **kwargs: Any) -> Any:
    ctx = make_context(config, head=HEAD, environ={})
    return make_plan(config, detection(*names), manager.backends, ctx, content_tag=lambda m: f"content-{m.name}",
                     **kwargs), ctx  # fmt: skip


def run_plan(config: Config, manager: PluginManager, plan: Any, ctx: RunContext, state: RunState | None) -> Any:
    events = EventLog(echo=False)
    return Runner(plan, manager.backends, ctx, manager.hook, events, RunOptions(max_parallel=4), state).run()


def open_state(config: Config, manager: PluginManager, ctx: RunContext) -> RunState:
    return RunState.open(manager, ctx, {"backend": "sqlite", "path": str(config.root / "state.db")})


# -- the planner ---------------------------------------------------------------------------------


def test_the_plan_carries_what_the_runner_needs(config: Config, manager: PluginManager) -> None:
    plan, _ = plan_of(config, manager, "common", "orders", "search", "users")

    assert [m.name for m in plan.modules] == ["search", "users", "orders"]  # dependencies first
    assert plan.libraries == ("common",)
    orders = plan.modules[2]
    assert orders.after == ("users",) and orders.content_tag == "content-orders"
    assert [(s.stage, s.section, s.backend) for s in orders.stages] == [
        ("build", "build", "fake-build"),
        ("push", "registry", "fake-registry"),
        ("deploy", "deploy", "fake-deploy"),
    ]
    assert orders.stage("deploy").options == {"lane": "blue"}  # type: ignore[union-attr]
    assert plan.modules[0].stage("deploy").steps == ("deploy to lane green",)  # type: ignore[union-attr]


def test_stop_after_leaves_later_stages_out_but_keeps_their_backends(config: Config, manager: PluginManager) -> None:
    plan, _ = plan_of(config, manager, "search", stop_after="push")
    search = plan.modules[0]
    assert [s.stage for s in search.stages] == ["build", "push"]
    assert search.backend_of("deploy") == "fake-deploy"  # artifacts are the deploy backend's


def test_preflight_findings_are_collected_once(config: Config, manager: PluginManager, world: World) -> None:
    world.findings = [Problem("svc/buildspec.yml", 3, "phases", "bad")]
    plan, _ = plan_of(config, manager, "users", "search")
    assert plan.findings == (Problem("svc/buildspec.yml", 3, "phases", "bad"),)


# -- the executor ---------------------------------------------------------------------------------


def test_the_runner_executes_the_plan_in_dependency_order(config: Config, manager: PluginManager, world: World) -> None:
    plan, ctx = plan_of(config, manager, "orders", "users")
    report = run_plan(config, manager, plan, ctx, None)

    assert [(m.name, m.status) for m in report.modules] == [("users", "succeeded"), ("orders", "succeeded")]
    deploys = [module for what, module in world.calls if what == "deploy"]
    assert deploys == ["users", "orders"]
    users = report.modules[0]
    assert users.image == "registry.example/users@sha256:users"
    assert users.deploy == {"lane": "x", "backend": "fake-deploy", "id": "dep-users", "task_definition": "td-users",
                            "rolled_back": False}  # fmt: skip


def test_a_failed_deploy_skips_its_dependents_only(config: Config, manager: PluginManager, world: World) -> None:
    world.fail_deploy = {"users"}
    plan, ctx = plan_of(config, manager, "orders", "search", "users")
    report = run_plan(config, manager, plan, ctx, None)

    status = {m.name: (m.status, m.error) for m in report.modules}
    assert status["users"] == ("failed", "health checks failed")
    assert status["orders"] == ("skipped", "dependency users failed")
    assert status["search"] == ("succeeded", None)
    users = next(m for m in report.modules if m.name == "users")
    assert users.deploy["rolled_back"] is True and report.failed


def test_a_second_run_reuses_the_image_by_content_tag(config: Config, manager: PluginManager, world: World) -> None:
    plan, ctx = plan_of(config, manager, "search")
    run_plan(config, manager, plan, ctx, None)
    again = run_plan(config, manager, plan, make_context(config, head=HEAD, environ={}), None)

    assert [c for c in world.calls if c[0] == "build"] == [("build", "search")]
    assert again.modules[0].build["reused"] is True


def test_outcomes_are_recorded_in_the_state_store(config: Config, manager: PluginManager, world: World) -> None:
    world.fail_deploy = {"search"}
    plan, ctx = plan_of(config, manager, "users", "search")
    state = open_state(config, manager, ctx)
    state.acquire_all({"users": "fail", "search": "fail"}, wait_seconds=1)
    run_plan(config, manager, plan, ctx, state)

    users = state.store.last_success(state.scope, "users")
    assert users is not None and (users.deployment_id, users.task_definition) == ("dep-users", "td-users")
    (search,) = state.store.history(state.scope, "search")
    assert (search.outcome, search.error, search.deployment_id) == ("rolled_back", "health checks failed", "dep-search")


# -- one deploy sequence for run and rollback ------------------------------------------------------


def _killed_run_left(config: Config, manager: PluginManager, world: World, *, recorded_id: bool) -> RunState:
    """A run that recorded the start of a deploy of ``users`` and died (its lock long gone)."""
    ctx = make_context(config, head=HEAD, run_id="killed-run", environ={})
    state = open_state(config, manager, ctx)
    state.started("users", "a" * 40, image_uri=None, digest=None, backend="fake-deploy", task_definition="td-old")
    world.in_flight["dep-old"] = "succeeded"
    if recorded_id:
        state.store.record_progress(state.scope, "users", "killed-run", deployment_id="dep-old")
    else:
        world.located["killed-run"] = "dep-old"  # created, but the id never reached the store
    return state


@pytest.mark.parametrize("recorded_id", [True, False], ids=["id recorded", "id lost"])
@pytest.mark.parametrize("command", ["run", "rollback"])
def test_run_and_rollback_conclude_a_killed_runs_deployment_alike(
    config: Config, manager: PluginManager, world: World, command: str, recorded_id: bool
) -> None:
    killed = _killed_run_left(config, manager, world, recorded_id=recorded_id)
    ctx = make_context(config, head=HEAD, environ={})
    state = open_state(config, manager, ctx)
    deployer = FakeDeploy(ctx, world)
    job = ModuleJob(ctx, config.modules["users"], lambda _line: None)

    conclude_in_flight(state, deployer, job, job.log)
    if command == "run":
        outcome = recorded_deploy(state, job, lambda: deployer.deploy(job), backend="fake-deploy", commit=HEAD,
                                  image_uri=None, digest=None)  # fmt: skip
    else:
        target = killed.store.last_success(killed.scope, "users")
        assert target is not None  # the killed run's deployment, awaited and recorded succeeded
        outcome = recorded_deploy(state, job, lambda: deployer.redeploy(job, target), backend="fake-deploy",
                                  commit=target.commit, image_uri=None, digest=None)  # fmt: skip

    assert outcome.ok
    history = {r.run_id: r for r in state.store.history(state.scope, "users")}
    assert (history["killed-run"].outcome, history["killed-run"].deployment_id) == ("succeeded", "dep-old")
    assert ("recover dep-old", "users") in world.calls and world.in_flight == {}
    assert ("locate", "users") in world.calls or recorded_id


def test_an_exception_from_the_deployer_is_recorded_failed(config: Config, manager: PluginManager) -> None:
    ctx = make_context(config, head=HEAD, environ={})
    state = open_state(config, manager, ctx)
    job = ModuleJob(ctx, config.modules["search"], lambda _line: None)

    def explode() -> DeployOutcome:
        raise RuntimeError("the SDK fell over")

    with pytest.raises(RuntimeError):
        recorded_deploy(state, job, explode, backend="fake-deploy", commit=HEAD, image_uri=None, digest=None)
    (record,) = state.store.history(state.scope, "search")
    assert (record.outcome, record.error) == ("failed", "the SDK fell over")
