"""The plugin manager: built-ins first, then third-party entry points.

There is no import-time global manager: each command builds one, so tests and
embedders get a fresh, isolated set of plugins. Built-in plugins are listed in
:data:`BUILTIN_PLUGINS` and go through exactly the same hooks as third-party
ones found in the ``deployfw`` entry-point group. Plugins are disabled by name
(``--disable-plugin NAME`` or ``DEPLOYFW_DISABLE_PLUGINS=a,b``).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pluggy

from deployfw import __version__, hookspecs
from deployfw.backends import BackendRegistry
from deployfw.errors import InputError, Problem

if TYPE_CHECKING:
    from deployfw.commands import CommandRegistry

ENTRY_POINT_GROUP = "deployfw"
DISABLE_ENV = "DEPLOYFW_DISABLE_PLUGINS"
BUILTIN_PLUGINS: tuple[tuple[str, str], ...] = (
    ("local", "deployfw_local.plugin"),
    ("aws", "deployfw_aws.plugin"),
    ("jenkins", "deployfw_jenkins.plugin"),
    ("state", "deployfw.state.plugin"),
    ("notify", "deployfw_notify.plugin"),
)


@dataclass(frozen=True)
class PluginInfo:
    name: str
    version: str
    source: str  # "builtin" or the distribution name
    hooks: tuple[str, ...]


class PluginManager:
    """Wraps pluggy's manager with deployfw's loading order and a typed backend registry."""

    def __init__(self, *, disabled: Iterable[str] = (), entry_points: bool = True) -> None:
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)
        env_disabled = [n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()]
        self.disabled = frozenset([*disabled, *env_disabled])
        for name in self.disabled:
            self._pm.set_blocked(name)
        self._sources: dict[str, tuple[str, str]] = {}
        for name, module_name in BUILTIN_PLUGINS:
            if name in self.disabled:
                continue
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if exc.name and module_name.startswith(exc.name):
                    continue  # that built-in is not part of this installation
                raise
            self._pm.register(module, name=name)
            self._sources[name] = ("builtin", __version__)
        if entry_points:
            self._load_entry_points()
        self._check_pending()
        self.backends = self._collect_backends()

    def _load_entry_points(self) -> None:
        try:
            self._pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        except Exception as exc:  # a broken third-party plugin is bad input, not a crash
            message = f"failed to load a {ENTRY_POINT_GROUP} plugin: {exc}"
            raise InputError(Problem(None, None, "plugins", message)) from exc
        for plugin, dist in self._pm.list_plugin_distinfo():
            name = self._pm.get_name(plugin) or repr(plugin)
            self._sources[name] = (dist.project_name, dist.version)

    def _check_pending(self) -> None:
        """pluggy's ``check_pending`` as bad input: a misspelt hook would otherwise never be called.

        Every unknown hook of every plugin is reported at once, with the hooks that
        do exist, instead of pluggy's traceback naming the first one only.
        """
        callers = {name: caller for name, caller in vars(self._pm.hook).items() if not name.startswith("_")}
        known = ", ".join(sorted(name for name, caller in callers.items() if caller.has_spec()))
        problems = [
            Problem(None, None, f"plugins.{impl.plugin_name}", f"unknown hook {name!r}; known hooks: {known}")
            for name, caller in callers.items()
            if not caller.has_spec()
            for impl in caller.get_hookimpls()
            if not impl.optionalhook
        ]
        if problems:
            raise InputError(problems)
        try:
            self._pm.check_pending()
        except pluggy.PluginValidationError as exc:  # anything pluggy checks that the loop above does not
            raise InputError(Problem(None, None, "plugins", str(exc))) from exc

    def commands(self, reserved: frozenset[str] = frozenset()) -> CommandRegistry:
        """Every plugin's subcommands (``reserved``: names the core command line already uses)."""
        from deployfw.commands import CommandRegistry

        commands = CommandRegistry(reserved)
        for impl in self._pm.hook.deployfw_register_commands.get_hookimpls():
            commands.set_owner(impl.plugin_name)
            try:
                impl.function(commands=commands)
            except InputError:
                raise
            except Exception as exc:
                message = f"command registration failed: {exc}"
                raise InputError(Problem(None, None, f"plugins.{impl.plugin_name}", message)) from exc
        return commands

    def _collect_backends(self) -> BackendRegistry:
        registry = BackendRegistry()
        # Registration order (built-ins, entry points, inline), so a duplicate id blames the newcomer.
        for impl in self._pm.hook.deployfw_register_backends.get_hookimpls():
            registry.set_owner(impl.plugin_name, self._sources.get(impl.plugin_name, ("", ""))[1])
            try:
                impl.function(registry=registry)
            except InputError:
                raise
            except Exception as exc:
                raise InputError(
                    Problem(None, None, f"plugins.{impl.plugin_name}", f"backend registration failed: {exc}")
                ) from exc
        return registry

    @property
    def hook(self) -> Any:
        """pluggy's hook relay; call hooks with keyword arguments only."""
        return self._pm.hook

    def register(self, plugin: object, name: str | None = None) -> None:
        """Register an in-process plugin (tests, embedding) and refresh the backend registry.

        A plugin that fails validation or backend registration is unregistered again
        before the :class:`InputError` propagates, so the manager stays usable.
        """
        try:
            self._pm.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            raise InputError(Problem(None, None, f"plugins.{name or plugin!r}", str(exc))) from exc
        plugin_name = self._pm.get_name(plugin) or ""
        self._sources.setdefault(plugin_name, ("inline", ""))
        try:
            self._check_pending()
            self.backends = self._collect_backends()
        except InputError:
            self._pm.unregister(plugin)
            self._sources.pop(plugin_name, None)
            raise

    def plugins(self) -> list[PluginInfo]:
        rows = []
        for name, plugin in self._pm.list_name_plugin():
            if plugin is None:
                continue
            source, version = self._sources.get(name, ("inline", ""))
            hooks = tuple(sorted(h.name for h in self._pm.get_hookcallers(plugin) or ()))
            rows.append(PluginInfo(name, version, source, hooks))
        return sorted(rows, key=lambda r: r.name)
