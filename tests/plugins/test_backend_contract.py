"""The typed backend contract: what a plugin must implement, checked before anything runs.

A backend that lacks a required method is bad input naming the plugin and the method - at
registration when the plugin registers a class, when a plan first makes it otherwise - never
an AttributeError halfway through a deploy. Optional abilities are protocols the runner tests
with ``isinstance``. The hooks added for the re-layered rings (commands, state account,
sandbox seeding) are exercised by real test plugins here.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from deployfw.backends import (
    DeployOutcome,
    Describes,
    ModuleJob,
    Recovers,
    Redeploys,
    RunContext,
    WritesArtifacts,
    backend_for,
)
from deployfw.config import Config, Module, load_config
from deployfw.context import make_context
from deployfw.errors import InputError, Problem
from deployfw.hookspecs import hookimpl
from deployfw.plugins import PluginManager
from deployfw.testing import GitRepoBuilder, run_cli, terminal_env

MODULES = """\
version: 1
project: shop
region: us-east-1
defaults:
  build: {backend: local}
  registry: {backend: ecr}
  deploy: {backend: fleet}
modules:
  api: {path: svc/api}
"""


class MinimalDeploy:
    """Only what a deploy backend must have."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx

    def steps(self, module: Module, config: Config) -> Sequence[str]:
        return [f"roll {module.name} out to the fleet"]

    def preflight(self, module: Module, config: Config) -> Sequence[Problem]:
        return []

    def deploy(self, job: ModuleJob) -> DeployOutcome:
        return DeployOutcome(True, deployment_id="fleet-1")


class NoDeploy:
    """Looks like a backend, but cannot deploy."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx

    def steps(self, module: Module, config: Config) -> Sequence[str]:
        return []

    def preflight(self, module: Module, config: Config) -> Sequence[Problem]:
        return []


class CapableDeploy(MinimalDeploy):
    """Every optional ability."""

    def write_artifacts(self, job: ModuleJob, out_dir: Path) -> list[Path]:
        return []

    def locate(self, job: ModuleJob, run_id: str, task_definition: str | None) -> str | None:
        return None

    def recover(self, job: ModuleJob, deployment_id: str) -> DeployOutcome:
        return DeployOutcome(True, deployment_id=deployment_id)

    def describe(self, job: ModuleJob) -> dict[str, Any]:
        return {"exists": True, "task_definition": None}

    def redeploy(self, job: ModuleJob, record: Any) -> DeployOutcome:
        return DeployOutcome(True)


class Registers:
    """A plugin registering ``factory`` as the ``fleet`` deploy backend."""

    def __init__(self, factory: Any) -> None:
        self.factory = factory

    @hookimpl
    def deployfw_register_backends(self, registry: Any) -> None:
        registry.add_deploy("fleet", self.factory, description="roll out to a fleet")


@pytest.fixture
def config(git_repo: Callable[..., GitRepoBuilder]) -> Config:
    repo = git_repo({"modules.yaml": MODULES, "svc/api/buildspec.yml": "version: 0.2\nphases: {}\n"})
    manager = PluginManager(entry_points=False)
    manager.register(Registers(MinimalDeploy), name="fleet")
    return load_config(repo.path / "modules.yaml", catalog=manager.backends.catalog())


def test_a_class_without_a_required_method_is_refused_when_registered() -> None:
    manager = PluginManager(entry_points=False)
    with pytest.raises(InputError) as info:
        manager.register(Registers(NoDeploy), name="broken_fleet")
    assert str(info.value) == (
        "plugins.broken_fleet: deploy backend 'fleet': NoDeploy lacks the required method deploy()"
    )
    assert "fleet" not in manager.backends.catalog().get("deploy", {})  # the manager stays usable


def test_a_dotted_path_is_checked_when_a_plan_first_needs_it(config: Config, monkeypatch: Any) -> None:
    module = types.ModuleType("fleet_backends")
    module.NoDeploy = NoDeploy  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fleet_backends", module)
    manager = PluginManager(entry_points=False)
    manager.register(Registers("fleet_backends:NoDeploy"), name="lazy_fleet")  # registration imports nothing
    ctx = make_context(config, head="0" * 40)
    with pytest.raises(InputError, match=r"plugins\.lazy_fleet: deploy backend 'fleet': NoDeploy lacks the required"):
        backend_for(ctx, manager.backends, "deploy", "fleet")
    manager_missing = PluginManager(entry_points=False)
    manager_missing.register(Registers("fleet_backends:Nothing"), name="typo_fleet")
    with pytest.raises(InputError, match=r"plugins\.typo_fleet: deploy backend 'fleet': cannot load"):
        backend_for(make_context(config, head="0" * 40), manager_missing.backends, "deploy", "fleet")


def test_a_callable_factory_is_checked_on_what_it_makes(config: Config) -> None:
    manager = PluginManager(entry_points=False)
    manager.register(Registers(lambda ctx: NoDeploy(ctx)), name="made_fleet")
    with pytest.raises(InputError, match=r"NoDeploy lacks the required method deploy\(\)"):
        backend_for(make_context(config, head="0" * 40), manager.backends, "deploy", "fleet")


def test_optional_abilities_are_protocols_tested_with_isinstance(config: Config) -> None:
    ctx = make_context(config, head="0" * 40)
    minimal, capable = MinimalDeploy(ctx), CapableDeploy(ctx)
    for ability in (WritesArtifacts, Recovers, Describes, Redeploys):
        assert not isinstance(minimal, ability), ability
        assert isinstance(capable, ability), ability


def test_the_outcome_says_what_the_state_store_records_and_the_report_shows() -> None:
    assert DeployOutcome(True).recorded == "succeeded"
    assert DeployOutcome(False, "x", rolled_back=True).recorded == "rolled_back"
    assert DeployOutcome(False, "cancelled too late", live=True).recorded == "succeeded"
    assert DeployOutcome(False, "gone", gone=True).recorded == "abandoned"
    assert DeployOutcome(False, "boom").recorded == "failed"
    report = DeployOutcome(False, "x", "d-1", "arn:td:1", True, details={"id": "ignored", "status": "Failed"}).report(
        "ecs-bluegreen"
    )
    assert report == {
        "id": "d-1",
        "status": "Failed",
        "backend": "ecs-bluegreen",
        "task_definition": "arn:td:1",
        "rolled_back": True,
    }


# -- the hooks of the rings -------------------------------------------------------------------------


class HelloCommand:
    """A plugin contributing a ``hello`` subcommand (the target is imported when it runs)."""

    @hookimpl
    def deployfw_register_commands(self, commands: Any) -> None:
        commands.add("hello", "plugin_commands_target:hello", help="Say hello from a plugin.")


def _hello_module() -> types.ModuleType:
    import click

    module = types.ModuleType("plugin_commands_target")

    @click.command("hello")
    @click.argument("name")
    @click.pass_obj
    def hello(session: Any, name: str) -> None:
        click.echo(f"hello {name} from {type(session).__name__}")

    module.hello = hello  # type: ignore[attr-defined]
    return module


def test_a_plugin_command_runs_and_is_listed(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setitem(sys.modules, "plugin_commands_target", _hello_module())
    env = terminal_env()
    done = run_cli(env, tmp_path, "hello", "fleet", plugins=(HelloCommand(),))
    assert done.code == 0, done.output
    assert done.stdout.strip() == "hello fleet from App"
    listed = run_cli(env, tmp_path, "--help", plugins=(HelloCommand(),))
    assert "hello     Say hello from a plugin." in listed.stdout
    assert "hello" not in run_cli(env, tmp_path, "--help").stdout


def test_a_plugin_command_may_not_take_a_core_name(tmp_path: Path) -> None:
    class Clash:
        @hookimpl
        def deployfw_register_commands(self, commands: Any) -> None:
            commands.add("run", "somewhere:run", help="Not deployfw's run.")

    done = run_cli(terminal_env(), tmp_path, "--help", plugins=(Clash(),))
    assert done.code == 2
    assert "command 'run' is already provided by deployfw" in done.stderr


def test_the_state_account_hook_keys_the_scope(config: Config) -> None:
    from deployfw.runstate import RunState

    class Account:
        @hookimpl(tryfirst=True)
        def deployfw_state_account(self, ctx: RunContext) -> str:
            return f"acct-{ctx.config.project}"

    manager = PluginManager(entry_points=False)
    manager.register(Registers(MinimalDeploy), name="fleet")
    manager.register(Account(), name="account")
    ctx = make_context(config, head="0" * 40, environ={})  # no endpoint and no credentials: STS is never asked
    state = RunState.open(manager, ctx, {"backend": "sqlite", "path": str(config.root / "s.db")}, read_only=True)
    assert (state.scope.account, state.scope.region, state.scope.env) == ("acct-shop", "us-east-1", "default")
    assert not (config.root / "s.db").exists()  # read-only: nothing created


def test_a_backend_seeds_its_own_resources_in_the_sandbox(config: Config) -> None:
    from deployfw.sandbox.session import SandboxSession
    from deployfw.seeding import AwsCall

    class Buckets:
        @hookimpl
        def deployfw_sandbox_seed(self, config: Config, module: Module) -> list[Any]:
            bucket = f"{config.project}-{module.name}-fleet"
            return [AwsCall(module.name, "s3", "create_bucket", {"Bucket": bucket}, ("BucketAlreadyOwnedByYou",))]

    manager = PluginManager(entry_points=False)
    manager.register(Registers(MinimalDeploy), name="fleet")
    manager.register(Buckets(), name="buckets")
    session = SandboxSession.start(config, manager)
    try:
        names = [b["Name"] for b in session.aws.client("s3").list_buckets()["Buckets"]]
        assert names == ["shop-api-fleet"]
    finally:
        session.stop()
