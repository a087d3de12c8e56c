"""The error types every layer raises, and the exit code each one means.

The CLI turns these into one line per problem and an exit code (DESIGN.md):
0 success, 1 a module failed, 2 bad input, 3 a lock is held by another run.
Bad input is collected as :class:`Problem` rows so a user sees every mistake
in a config at once instead of fixing them one run at a time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_LOCKED = 3


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with the user's input, located as precisely as we can.

    ``key`` is a dotted key path (``modules.user-api.deploy.service``) so the
    user can find the value even when no line number is known.
    """

    file: str | None
    line: int | None
    key: str | None
    message: str

    def __str__(self) -> str:
        where = self.file or ""
        if self.file and self.line is not None:
            where = f"{where}:{self.line}"
        parts = [p for p in (where, self.key, self.message) if p]
        return ": ".join(parts)


class DeployfwError(Exception):
    """Base class: a failure deployfw explains in one line, without a traceback."""

    exit_code = EXIT_FAILED


class InputError(DeployfwError):
    """Bad input (config, template, buildspec, CLI flag, plugin); exit 2, nothing changed."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, problems: Problem | Iterable[Problem] | str) -> None:
        if isinstance(problems, str):
            problems = [Problem(None, None, None, problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = sorted(
            set(problems), key=lambda p: (p.file or "", p.line or 0, p.key or "", p.message)
        )
        super().__init__("\n".join(str(p) for p in self.problems))


class ExternalError(DeployfwError):
    """An external system (AWS, Jenkins, git) refused or failed; the message is the service's own."""

    exit_code = EXIT_FAILED


class LockHeldError(DeployfwError):
    """Another run holds the lock for a module/environment and the mode says not to wait."""

    exit_code = EXIT_LOCKED


class Cancelled(DeployfwError):
    """The run was interrupted (Ctrl-C / SIGTERM); in-flight work was stopped."""

    exit_code = EXIT_FAILED
