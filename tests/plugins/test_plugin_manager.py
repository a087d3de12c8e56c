"""The plugin system's promises: one registration path for everyone, clear refusals, keyword-only hooks.

Broken third-party plugins are real distributions on a temporary ``PYTHONPATH``
(``make_distribution``), so they reach deployfw through the same entry-point
scan as a pip-installed plugin, and the CLI's exit code and message are checked
in a fresh interpreter.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from plugin_helpers import MODULES_YAML, make_distribution, run_cli

from deployfw.backends import RunContext, StageResult
from deployfw.config import load_config
from deployfw.errors import InputError
from deployfw.hookspecs import hookimpl
from deployfw.plugins import BUILTIN_PLUGINS, PluginManager


def _manager() -> PluginManager:
    """Built-ins only: a plugin installed in the developer's environment must not change these tests."""
    return PluginManager(entry_points=False)


class DeployPlugin:
    """An in-process plugin adding one deploy backend with its own section schema."""

    def __init__(self, backend_id: str = "fleet") -> None:
        self.backend_id = backend_id

    @hookimpl
    def deployfw_register_backends(self, registry: Any) -> None:
        registry.add_deploy(
            self.backend_id,
            lambda ctx: None,
            schema={
                "type": "object",
                "properties": {"fleet": {"type": "string"}, "batch": {"type": "integer", "minimum": 1}},
                "required": ["fleet"],
            },
            description="Roll out to a fleet",
        )


# -- built-ins --------------------------------------------------------------------------


def test_builtins_register_through_the_public_hook() -> None:
    manager = _manager()

    impls = manager.hook.deployfw_register_backends.get_hookimpls()
    registering = {impl.plugin_name for impl in impls}
    owners = {spec.id: spec.plugin for spec in manager.backends.specs()}
    assert {"local", "aws"} <= registering
    assert registering <= {name for name, _ in BUILTIN_PLUGINS}
    assert owners["local"] == "local"
    assert {owners[i] for i in ("codebuild", "ecr", "ecs-bluegreen", "ecs-rolling", "ecs-nlb")} == {"aws"}


def test_builtin_infos_carry_source_and_version() -> None:
    from deployfw import __version__

    infos = {p.name: p for p in _manager().plugins()}

    assert infos["aws"].source == "builtin"
    assert infos["aws"].version == __version__
    assert "deployfw_register_backends" in infos["local"].hooks


def test_a_disabled_builtin_takes_its_backends_with_it() -> None:
    manager = PluginManager(disabled=["aws"], entry_points=False)

    assert "aws" not in {p.name for p in manager.plugins()}
    assert "aws" not in {s.plugin for s in manager.backends.specs()}
    assert "ecr" not in manager.backends.catalog().get("registry", {})
    assert "local" in manager.backends.catalog()["build"]


# -- backend registry --------------------------------------------------------------------


def test_inline_backend_appears_in_the_catalog_and_is_attributed() -> None:
    manager = _manager()
    manager.register(DeployPlugin(), name="fleet-plugin")

    assert "fleet" in manager.backends.catalog()["deploy"]
    spec = manager.backends.get("deploy", "fleet")
    assert (spec.plugin, spec.description) == ("fleet-plugin", "Roll out to a fleet")
    assert {"name": "fleet-plugin", "source": "inline"}.items() <= vars(
        {p.name: p for p in manager.plugins()}["fleet-plugin"]
    ).items()


def test_config_validation_uses_the_plugins_backend_and_schema(tmp_path: Path) -> None:
    config_file = tmp_path / "modules.yaml"
    config_file.write_text(MODULES_YAML.replace("backend: ecs-rolling, cluster: test", "backend: fleet, fleet: blue"))
    before = _manager()

    with pytest.raises(InputError) as unknown:
        load_config(config_file, catalog=before.backends.catalog(), check_paths=False)
    assert "fleet" in str(unknown.value)
    assert "ecs-rolling" in str(unknown.value)  # the valid ids are listed

    after = _manager()
    after.register(DeployPlugin(), name="fleet-plugin")
    config = load_config(config_file, catalog=after.backends.catalog(), check_paths=False)
    assert config.modules["user-api"].deploy is not None
    assert config.modules["user-api"].deploy.get("fleet") == "blue"

    config_file.write_text(
        MODULES_YAML.replace("backend: ecs-rolling, cluster: test", "backend: fleet, batch: 0, colour: red")
    )
    with pytest.raises(InputError) as bad:
        load_config(config_file, catalog=after.backends.catalog(), check_paths=False)
    message = str(bad.value)
    # Every violation of the plugin's own section schema, located, in one error.
    assert "modules.yaml:7: defaults.deploy.batch: must be at least 1 (deploy backend 'fleet')" in message
    assert "defaults.deploy.colour: unknown key; valid keys: batch, fleet" in message
    assert "modules.user-api.deploy: missing required key 'fleet'" in message


def test_duplicate_backend_id_names_both_plugins() -> None:
    manager = _manager()
    manager.register(DeployPlugin("fleet"), name="first-plugin")

    with pytest.raises(InputError) as excinfo:
        manager.register(DeployPlugin("fleet"), name="second-plugin")

    assert "first-plugin" in str(excinfo.value)
    assert "second-plugin" in str(excinfo.value)
    assert "deploy.fleet" in str(excinfo.value)
    # The refused plugin is gone again and the manager still works.
    assert "second-plugin" not in {p.name for p in manager.plugins()}
    assert manager.backends.get("deploy", "fleet").plugin == "first-plugin"


def test_a_plugin_cannot_take_over_a_builtin_backend_id() -> None:
    manager = _manager()

    with pytest.raises(InputError, match=r"deploy\.ecs-rolling: registered twice: by aws and hijack"):
        manager.register(DeployPlugin("ecs-rolling"), name="hijack")


def test_registration_that_raises_is_bad_input_naming_the_plugin() -> None:
    class Broken:
        @hookimpl
        def deployfw_register_backends(self, registry: Any) -> None:
            raise RuntimeError("cannot find my SDK")

    manager = _manager()
    with pytest.raises(InputError, match=r"plugins\.broken: backend registration failed: cannot find my SDK"):
        manager.register(Broken(), name="broken")
    assert "broken" not in {p.name for p in manager.plugins()}


# -- hook validation and calling --------------------------------------------------------


def test_unknown_hook_is_refused_with_the_known_ones_listed() -> None:
    class Typo:
        @hookimpl
        def deployfw_typo(self) -> None:
            pass

    manager = _manager()
    with pytest.raises(InputError) as excinfo:
        manager.register(Typo(), name="typo-plugin")

    message = str(excinfo.value)
    assert "plugins.typo-plugin: unknown hook 'deployfw_typo'" in message
    assert "deployfw_run_end" in message
    assert "Traceback" not in message
    assert "typo-plugin" not in {p.name for p in manager.plugins()}
    manager.register(DeployPlugin(), name="fleet-plugin")  # still usable afterwards


def test_hook_argument_not_in_the_spec_is_refused() -> None:
    class WrongArgs:
        @hookimpl
        def deployfw_run_end(self, report: dict, summary: str) -> None:
            pass

    with pytest.raises(InputError, match="summary"):
        _manager().register(WrongArgs(), name="wrong-args")


def test_hooks_are_called_with_keyword_arguments_only(run_context: RunContext) -> None:
    manager = _manager()

    with pytest.raises(TypeError, match="positional argument"):
        manager.hook.deployfw_run_start(run_context, ["user-api"])


class Recorder:
    """Implements every lifecycle hook; records the keyword arguments each call received."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    @hookimpl
    def deployfw_config_loaded(self, config: Any) -> None:
        self.calls.append(("deployfw_config_loaded", {"config": config}))

    @hookimpl
    def deployfw_run_start(self, ctx: Any, modules: list[str]) -> None:
        self.calls.append(("deployfw_run_start", {"ctx": ctx, "modules": modules}))

    @hookimpl
    def deployfw_module_start(self, module: Any) -> None:  # a subset of the spec's arguments is fine
        self.calls.append(("deployfw_module_start", {"module": module}))

    @hookimpl
    def deployfw_stage_end(self, module: Any, stage: str, result: StageResult) -> None:
        self.calls.append(("deployfw_stage_end", {"module": module, "stage": stage, "result": result}))

    @hookimpl
    def deployfw_module_end(self, module: Any, status: str, error: str | None) -> None:
        self.calls.append(("deployfw_module_end", {"module": module, "status": status, "error": error}))

    @hookimpl
    def deployfw_run_end(self, ctx: Any, report: dict[str, Any]) -> None:
        self.calls.append(("deployfw_run_end", {"ctx": ctx, "report": report}))


def test_every_lifecycle_hook_reaches_an_inline_plugin(run_context: RunContext) -> None:
    manager = _manager()
    recorder = Recorder()
    manager.register(recorder, name="recorder")
    ctx, module = run_context, run_context.config.modules["user-api"]
    result = StageResult(ok=True, details={"reused": False})

    manager.hook.deployfw_config_loaded(config=ctx.config)
    manager.hook.deployfw_run_start(ctx=ctx, modules=["user-api"])
    manager.hook.deployfw_module_start(ctx=ctx, module=module)
    manager.hook.deployfw_stage_end(ctx=ctx, module=module, stage="build", result=result)
    manager.hook.deployfw_module_end(ctx=ctx, module=module, status="succeeded", error=None)
    manager.hook.deployfw_run_end(ctx=ctx, report={"status": "succeeded"})

    assert [name for name, _ in recorder.calls] == [
        "deployfw_config_loaded",
        "deployfw_run_start",
        "deployfw_module_start",
        "deployfw_stage_end",
        "deployfw_module_end",
        "deployfw_run_end",
    ]
    assert recorder.calls[2][1] == {"module": module}
    assert recorder.calls[3][1]["result"] is result
    info = {p.name: p for p in manager.plugins()}["recorder"]
    assert len(info.hooks) == 6


def test_config_loaded_can_refuse_the_config(run_context: RunContext) -> None:
    class Policy:
        @hookimpl
        def deployfw_config_loaded(self, config: Any) -> None:
            if config.region != "eu-west-1":
                raise InputError(f"region {config.region} is not allowed here")

    manager = _manager()
    manager.register(Policy(), name="policy")

    with pytest.raises(InputError, match="region ap-northeast-2 is not allowed"):
        manager.hook.deployfw_config_loaded(config=run_context.config)


# -- broken third-party plugins through the CLI -------------------------------------------

BROKEN_PLUGINS = {
    "registration_raises": (
        """
        from deployfw.hookspecs import hookimpl

        @hookimpl
        def deployfw_register_backends(registry):
            raise RuntimeError("missing credentials file")
        """,
        "plugins.registration_raises: backend registration failed: missing credentials file",
    ),
    "typo_hook": (
        """
        from deployfw.hookspecs import hookimpl

        @hookimpl
        def deployfw_typo(ctx):
            pass
        """,
        "plugins.typo_hook: unknown hook 'deployfw_typo'; known hooks: deployfw_config_loaded",
    ),
    "import_fails": (
        """
        import a_module_that_is_not_installed
        """,
        "failed to load a deployfw plugin: No module named 'a_module_that_is_not_installed'",
    ),
    "duplicate_id": (
        """
        from deployfw.hookspecs import hookimpl

        @hookimpl
        def deployfw_register_backends(registry):
            registry.add_build("local", lambda ctx: None)
        """,
        "build.local: registered twice: by local and duplicate_id",
    ),
}


@pytest.mark.parametrize("name", sorted(BROKEN_PLUGINS))
def test_a_broken_installed_plugin_exits_2_with_one_clear_line(tmp_path: Path, name: str) -> None:
    source, expected = BROKEN_PLUGINS[name]
    site = make_distribution(tmp_path / "site", name, source)

    result = run_cli("plugins", site=site)

    assert result.returncode == 2, result.stdout + result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_a_broken_plugin_can_be_disabled_to_get_going_again(tmp_path: Path) -> None:
    source, _ = BROKEN_PLUGINS["registration_raises"]
    site = make_distribution(tmp_path / "site", "registration_raises", source)

    result = run_cli("--disable-plugin", "registration_raises", "plugins", site=site)

    assert result.returncode == 0, result.stderr


# -- `deployfw plugins` output ---------------------------------------------------------


def test_plugins_json_shape() -> None:
    result = run_cli("plugins", "--json")

    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {"backends", "plugins"}
    for row in data["backends"]:
        assert set(row) == {"stage", "id", "plugin", "version", "description"}
        assert row["stage"] in {"build", "registry", "deploy", "state"}
    for row in data["plugins"]:
        assert set(row) == {"name", "version", "source", "hooks"}
    backends = {(r["stage"], r["id"]): r["plugin"] for r in data["backends"]}
    assert backends[("build", "local")] == "local"
    assert backends[("registry", "ecr")] == "aws"
    assert data["backends"] == sorted(data["backends"], key=lambda r: (r["stage"], r["id"]))


def test_plugins_text_lists_backends_then_plugins() -> None:
    result = run_cli("plugins")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Backends:"
    plugins_at = lines.index("Plugins:")
    backend_lines = lines[1:plugins_at]
    assert any(line.split()[:3] == ["build", "local", "local"] for line in backend_lines)
    assert any(line.split()[:3] == ["deploy", "ecs-bluegreen", "aws"] for line in backend_lines)
    plugin_names = [line.split()[0] for line in lines[plugins_at + 1 :]]
    assert {"aws", "local"} <= set(plugin_names)


def test_manager_has_no_import_time_global() -> None:
    """Two managers are independent: a plugin registered in one is absent from the other."""
    first, second = _manager(), _manager()
    first.register(DeployPlugin(), name="fleet-plugin")

    assert "fleet" in first.backends.catalog()["deploy"]
    assert "fleet" not in second.backends.catalog()["deploy"]


def test_load_config_hook_order_in_app(tmp_path: Path) -> None:
    """The CLI's config loading validates against the manager's catalog, then calls config_loaded."""
    from deployfw.cli.app import App

    config_file = tmp_path / "modules.yaml"
    config_file.write_text(MODULES_YAML.replace("backend: ecs-rolling, cluster: test", "backend: fleet, fleet: x"))
    (tmp_path / "services" / "user-api").mkdir(parents=True)
    (tmp_path / "libs" / "common").mkdir(parents=True)
    app = App(config_path=str(config_file), env=None)
    app._plugins = _manager()
    recorder = Recorder()
    app.plugins.register(DeployPlugin(), name="fleet-plugin")
    app.plugins.register(recorder, name="recorder")

    config = app.load_config()

    assert recorder.calls == [("deployfw_config_loaded", {"config": config})]
