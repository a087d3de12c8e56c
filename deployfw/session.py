"""One invocation's working set: which config, which environment overlay, which plugins.

The CLI creates a :class:`Session` per command (the core never imports the CLI); tests and
embedders create one directly. Everything is made on first use so a command pays only for
what it touches: ``detect`` never builds the AWS backends, ``plugins`` never reads
modules.yaml, and the config module (with PyYAML) is imported only when a config loads.

:meth:`Session.connect` is the one moment before a command first talks to an external
system (AWS, Jenkins). The core calls it; a front end that points clients somewhere else -
the CLI's ``--sandbox`` starting the embedded sandbox - overrides it. That keeps the product
free of any dependency on its stand-ins.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deployfw.config import Config
    from deployfw.plugins import PluginManager


@dataclass
class Session:
    config_path: str | None = None
    env: str | None = None
    disabled: tuple[str, ...] = ()
    # In-process plugins registered after the built-ins and entry points (tests, embedders).
    inline: tuple[object, ...] = ()
    _plugins: PluginManager | None = field(default=None, repr=False)

    def config_file(self) -> Path:
        if self.config_path:
            return Path(self.config_path)
        from deployfw.configmodel import find_config

        return find_config()

    @property
    def plugins(self) -> PluginManager:
        if self._plugins is None:
            from deployfw.plugins import PluginManager

            manager = PluginManager(disabled=self.disabled)
            for plugin in self.inline:
                manager.register(plugin)
            self._plugins = manager
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
        root = path.resolve().parent  # module paths are relative to the folder holding modules.yaml
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

    def connect(self, config: Config) -> None:
        """Called before the command's first call to AWS or Jenkins; nothing to do by default."""

    def close(self) -> None:
        """Release what :meth:`connect` started."""
