"""Run the real ``deployfw`` CLI from a test, as a user in a plain terminal would.

A plugin's backend is best tested the way it is used: through ``deployfw run``/``plan``/
``status`` against a sandbox, not by calling the backend object directly. Two things make
that reliable:

- :func:`terminal_env` - the test process usually runs inside CI, with AWS, Jenkins and
  CI variables set. deployfw reads all of them (CI detection, credentials, plugin
  switches), so a test that inherited them would behave differently on a laptop and on
  an agent. It starts from a clean slate and adds only what the test means to set.
- :func:`run_cli` - ``deployfw ARGV`` in this process (no interpreter start-up, so a
  suite can afford hundreds of calls) with the given environment as the *whole*
  environment and ``cwd`` as the working directory, both put back afterwards. Output is
  captured by swapping ``sys.stdout``/``sys.stderr``, so it works from fixtures of any
  scope (no ``capsys``). ``deployfw run`` installs SIGINT/SIGTERM handlers; they are
  restored so pytest's own Ctrl-C handling survives.

Use a subprocess (:func:`deployfw_command`) instead when the test sends signals or kills
the run, which must not hit the test process::

    from deployfw.testing.cli import run_cli

    def test_plan_is_read_only(sandbox_process, repo):
        result = run_cli(sandbox_process.run_env(), repo, "plan", "--json")
        assert result.code == 0, result.output
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from deployfw.timescale import TIME_SCALE_ENV

__all__ = ["CI_NAMES", "OUTSIDE_PREFIXES", "CliResult", "deployfw_command", "run_cli", "terminal_env"]

# Variables deployfw (or a plugin) reads to detect CI or find credentials; a "plain terminal" has none.
CI_NAMES = frozenset(
    {"CI", "JOB_NAME", "BUILD_NUMBER", "BUILD_URL", "JENKINS_URL", "GITHUB_ACTIONS", "CODEBUILD_BUILD_ID"}
)
OUTSIDE_PREFIXES = ("JENKINS_", "CODEBUILD_", "GITHUB_", "GIT_", "AWS_", "DEPLOYFW_")


def terminal_env(**overrides: str) -> dict[str, str]:
    """This process's environment without CI, AWS, Jenkins, git-identity or deployfw variables, plus ``overrides``.

    What a developer's plain terminal has: PATH, HOME and the like stay (git and docker
    must still be found), everything that changes deployfw's behaviour goes. Two things are
    added:

    - ``DEPLOYFW_SANDBOX_IN_PROCESS=1``, so ``--sandbox`` starts a sandbox inside the command,
      for it alone - a test never leaves a background sandbox behind or shares one with another
      test. Pass ``DEPLOYFW_SANDBOX_IN_PROCESS="0"`` to test the background sandbox itself.
    - ``DEPLOYFW_SANDBOX_TIME_SCALE=0`` (or the test process's own value, when it sets one): a
      ``--sandbox`` run is on the instant clock, as in-process sandboxes and
      :class:`~deployfw.testing.sandbox_process.SandboxProcess` are. A test about durations
      passes a scale, e.g. ``DEPLOYFW_SANDBOX_TIME_SCALE="60"`` for what a user's terminal gets.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(OUTSIDE_PREFIXES) and k not in CI_NAMES}
    env["DEPLOYFW_SANDBOX_IN_PROCESS"] = "1"
    env[TIME_SCALE_ENV] = os.environ.get(TIME_SCALE_ENV, "0")
    env.update(overrides)
    return env


def deployfw_command() -> list[str]:
    """argv prefix for a ``deployfw`` subprocess: the console script next to this interpreter, else ``python -m``.

    The console script (rather than ``python -m deployfw``) keeps the working directory off
    ``sys.path``: a test working in a copy of a repository that contains a ``deployfw/``
    folder must still run the installed package. The fallback uses ``-P`` for the same reason.
    """
    script = Path(sys.executable).with_name("deployfw")
    found = str(script) if script.exists() else shutil.which("deployfw")
    return [found] if found else [sys.executable, "-P", "-m", "deployfw"]


@dataclass
class CliResult:
    """Exit status and captured output of one in-process CLI call."""

    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """stdout then stderr: for assertion messages and for "never printed" checks."""
        return self.stdout + self.stderr


def run_cli(
    env: Mapping[str, str], cwd: str | os.PathLike[str], *argv: str, plugins: tuple[object, ...] = ()
) -> CliResult:
    """``deployfw ARGV`` in this process, with ``env`` as the whole environment and ``cwd`` as working directory.

    Both are restored afterwards, as are the SIGINT/SIGTERM handlers ``run`` installs. A
    ``SystemExit`` becomes the result's ``code`` (a non-int exit argument counts as 1).
    ``plugins`` are registered in-process for this call, after the installed ones: a plugin
    under test runs through the real command line without being pip-installed.
    """
    from deployfw.cli import main

    saved_signals = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    out, err = io.StringIO(), io.StringIO()
    try:
        os.environ.clear()
        os.environ.update(env)
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(list(argv), plugins=plugins)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        for sig, handler in saved_signals.items():
            signal.signal(sig, handler)
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return CliResult(code, out.getvalue(), err.getvalue())
