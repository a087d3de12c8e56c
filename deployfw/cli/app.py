"""The CLI's session: the core :class:`~deployfw.session.Session` plus ``--sandbox``.

With ``--sandbox`` the embedded AWS endpoint and Jenkins double are started the moment a
command first needs an external system (:meth:`App.connect`), seeded from the loaded config,
and the environment points every client at them - the same variables a user would export
for real AWS and Jenkins, which keeps the code paths identical.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from deployfw.session import Session

if TYPE_CHECKING:
    from deployfw.config import Config


@dataclass
class App(Session):
    sandbox: bool = False
    _sandbox: Any = field(default=None, repr=False)

    def connect(self, config: Config) -> None:
        if self.sandbox:
            self.start_sandbox(config)

    def start_sandbox(self, config: Config) -> Any:
        """Start the embedded sandbox for this command and point AWS/Jenkins clients at it."""
        if self._sandbox is None:
            from deployfw.sandbox.session import SandboxSession

            self._sandbox = SandboxSession.start(config, self.plugins)
            os.environ.update(self._sandbox.environment())
        return self._sandbox

    def close(self) -> None:
        if self._sandbox is not None:
            self._sandbox.stop()
            self._sandbox = None
