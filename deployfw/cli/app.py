"""Per-invocation state shared by the subcommands: config, plugins, sandbox.

Everything is created on first use so each command pays only for what it
touches: ``detect`` never builds the plugin manager's AWS backends, ``plugins``
never reads modules.yaml. The config module (and with it PyYAML) is imported
only when a command loads the config, so ``deployfw --help`` does not pay for it.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deployfw.config import Config
    from deployfw.plugins import PluginManager


@dataclass
class App:
    config_path: str | None
    env: str | None
    sandbox: bool = False
    disabled: tuple[str, ...] = ()
    _plugins: PluginManager | None = field(default=None, repr=False)
    _sandbox: Any = field(default=None, repr=False)

    def config_file(self) -> Path:
        if self.config_path:
            return Path(self.config_path)
        from deployfw.configmodel import find_config

        return find_config()

    @property
    def plugins(self) -> PluginManager:
        if self._plugins is None:
            from deployfw.plugins import PluginManager

            self._plugins = PluginManager(disabled=self.disabled)
        return self._plugins

    def load_config(self, *, hooks: bool = True) -> Config:
        """The validated config, backend sections included, for every command alike.

        It comes from the parsed-config cache when modules.yaml and everything that
        validated it are unchanged (see :mod:`deployfw.configcache`); only a miss builds
        the plugin manager for the backend schemas. ``hooks=False`` (``detect``) does not
        run the plugins' ``deployfw_config_loaded`` hooks, which may look beyond the config.
        """
        from deployfw import configcache

        path = self.config_file()
        root = _repository_root(path)
        config = configcache.load(path, root=root, env=self.env, catalog=self._catalog, disabled=self.disabled)
        if hooks:
            self.plugins.hook.deployfw_config_loaded(config=config)
        return config

    def _catalog(self) -> tuple[Any, list[str]]:
        """Backend section schemas, and the source files of the plugin code that declared them."""
        catalog = self.plugins.backends.catalog()
        files = {
            getattr(module, "__file__", None)
            for name, module in list(sys.modules.items())
            if name.startswith("deployfw_") or name == "deployfw.plugins"
        }
        for impl in self.plugins.hook.deployfw_register_backends.get_hookimpls():
            files.add(getattr(impl.plugin, "__file__", None))
        return catalog, sorted(f for f in files if f)

    def start_sandbox(self, config: Config) -> Any:
        """Start the embedded sandbox for this command and point AWS/Jenkins clients at it."""
        if self._sandbox is None:
            from deployfw.sandbox.session import SandboxSession

            self._sandbox = SandboxSession.start(config)
            os.environ.update(self._sandbox.environment())
        return self._sandbox

    def close(self) -> None:
        if self._sandbox is not None:
            self._sandbox.stop()
            self._sandbox = None


def _repository_root(config_file: Path) -> Path:
    """Module paths are relative to the folder holding modules.yaml."""
    return config_file.resolve().parent
