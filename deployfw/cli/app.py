"""Per-invocation state shared by the subcommands: config, plugins, sandbox.

Everything is created on first use so each command pays only for what it
touches: ``detect`` never builds the plugin manager's AWS backends, ``plugins``
never reads modules.yaml. The config module (and with it PyYAML) is imported
only when a command loads the config, so ``deployfw --help`` does not pay for it.
"""

from __future__ import annotations

import os
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
        from deployfw.config import find_config

        return find_config()

    @property
    def plugins(self) -> PluginManager:
        if self._plugins is None:
            from deployfw.plugins import PluginManager

            self._plugins = PluginManager(disabled=self.disabled)
        return self._plugins

    def load_config(self, *, backends: bool = True) -> Config:
        """The validated config; ``backends=False`` skips backend checks (detect stays fast)."""
        from deployfw.config import load_config

        path = self.config_file()
        root = _repository_root(path)
        catalog = self.plugins.backends.catalog() if backends else None
        config = load_config(path, env=self.env, catalog=catalog, root=root)
        if backends:
            self.plugins.hook.deployfw_config_loaded(config=config)
        return config

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
