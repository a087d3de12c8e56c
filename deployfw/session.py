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

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

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
        from deployfw.config import find_config

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

    def load_config(self, *, backends: bool = True) -> Config:
        """The validated config; ``backends=False`` skips backend checks (detect stays fast)."""
        from deployfw.config import load_config

        path = self.config_file()
        catalog = self.plugins.backends.catalog() if backends else None
        config = load_config(path, env=self.env, catalog=catalog, root=path.resolve().parent)
        if backends:
            self.plugins.hook.deployfw_config_loaded(config=config)
        return config

    def connect(self, config: Config) -> None:
        """Called before the command's first call to AWS or Jenkins; nothing to do by default."""

    def close(self) -> None:
        """Release what :meth:`connect` started."""
