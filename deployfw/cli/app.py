"""The CLI's session: the core :class:`~deployfw.session.Session` plus ``--sandbox``.

With ``--sandbox`` the command uses this checkout's background sandbox - the embedded AWS
endpoint and Jenkins double in a process of their own, started the first time and reused by
every later command, so repeated runs see one AWS account (:mod:`deployfw.cli.sandbox_reuse`).
``DEPLOYFW_SANDBOX_IN_PROCESS=1`` starts one inside the command instead, for that command only
(the test kit sets it: a test's sandbox never outlives it). Either way the sandbox is reached the
moment a command first needs an external system (:meth:`App.connect`), and the environment
points every client at it - the same variables a user would export for real AWS and Jenkins,
which keeps the code paths identical.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from deployfw.session import Session

if TYPE_CHECKING:
    from deployfw.config import Config

IN_PROCESS_ENV = "DEPLOYFW_SANDBOX_IN_PROCESS"


def in_process() -> bool:
    """``DEPLOYFW_SANDBOX_IN_PROCESS`` set to anything but ``""``/``0``/``false``/``no``."""
    return os.environ.get(IN_PROCESS_ENV, "").strip().lower() not in ("", "0", "false", "no")


@dataclass
class App(Session):
    sandbox: bool = False
    sandbox_reset: bool = False
    _sandbox: Any = field(default=None, repr=False)
    _replaced: dict[str, str | None] = field(default_factory=dict, repr=False)

    def connect(self, config: Config) -> None:
        if self.sandbox or self.sandbox_reset:
            self.start_sandbox(config)

    def start_sandbox(self, config: Config) -> Any:
        """Reach the sandbox for this command and point AWS/Jenkins clients at it."""
        if self._sandbox is None:
            if in_process():
                from deployfw.sandbox.session import SandboxSession

                self._sandbox = SandboxSession.start(config, self.plugins)
            else:
                from deployfw.cli.sandbox_reuse import attach

                self._sandbox = attach(self, config, reset=self.sandbox_reset)
                self.plugins.register(self._sandbox.scope, name="deployfw-sandbox-scope")
            pointed = self._sandbox.environment()
            self._replaced = {key: os.environ.get(key) for key in pointed}
            os.environ.update(pointed)
        return self._sandbox

    def close(self) -> None:
        if self._sandbox is not None:
            self._sandbox.stop()  # a background sandbox stays: stop() only lets go of it
            self._sandbox = None
            # Put the environment back: a process that runs more commands (a test, an embedding tool)
            # must not point its next AWS client at a sandbox that no longer listens.
            for key, value in self._replaced.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
