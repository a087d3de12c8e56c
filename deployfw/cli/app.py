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
    _replaced: dict[str, str | None] = field(default_factory=dict, repr=False)

    def connect(self, config: Config) -> None:
        if self.sandbox:
            self.start_sandbox(config)

    def start_sandbox(self, config: Config) -> Any:
        """Start the embedded sandbox for this command and point AWS/Jenkins clients at it."""
        if self._sandbox is None:
            from deployfw.sandbox.session import SandboxSession

            self._sandbox = SandboxSession.start(config, self.plugins)
            pointed = self._sandbox.environment()
            self._replaced = {key: os.environ.get(key) for key in pointed}
            os.environ.update(pointed)
        return self._sandbox

    def close(self) -> None:
        if self._sandbox is not None:
            self._sandbox.stop()
            self._sandbox = None
            # Put the environment back: a process that runs more commands (a test, an embedding tool)
            # must not point its next AWS client at a sandbox that no longer listens.
            for key, value in self._replaced.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
