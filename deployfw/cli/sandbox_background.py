"""``deployfw sandbox --detach`` / ``--stop``: the foreground sandbox, run as a background process.

A foreground server cannot hand its variables to the calling shell: ``export $(deployfw sandbox |
head -4)`` waits for the sandbox to exit, which it never does. So ``--detach`` starts ``deployfw
sandbox --env-file F`` as a process of its own (new session, output to a log file), waits until
``F`` appears - written only once the sandbox serves - or the process ends (a busy port, a bad
config: its own message, its own exit code), then prints ``F``'s ``export`` lines for ``eval``.

Its pid, log and variables live in ``.deployfw/sandbox/`` next to modules.yaml: one background
sandbox per checkout, which ``--stop`` ends (SIGTERM: the sandbox stops its servers cleanly).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from deployfw.cli.app import App
from deployfw.errors import EXIT_BAD_INPUT, DeployfwError, InputError

STATE_DIR = Path(".deployfw") / "sandbox"
READY_SECONDS = 300.0  # seeding a large config on a loaded machine; the process is watched meanwhile
STOP_SECONDS = 15.0


class BackgroundFailed(DeployfwError):
    """The background sandbox ended before it served; carries its exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _state(config_file: Path) -> Path:
    return config_file.resolve().parent / STATE_DIR


def start(
    app: App, *, port: int, jenkins_port: int, faults: str | None, env_file: Path | None, enforce_iam: bool = False
) -> str:
    """Start the background sandbox of this checkout; the ``export`` lines for the calling shell."""
    config_file = app.config_file()
    state = _state(config_file)
    running = _pid(state)
    if running is not None:
        raise InputError(
            f"a background sandbox of this checkout is already running (pid {running}); "
            "use it (its variables are in .deployfw/sandbox/env), or stop it with: deployfw sandbox --stop"
        )
    state.mkdir(parents=True, exist_ok=True)
    variables = state / "env"
    variables.unlink(missing_ok=True)
    log = state / "log"
    argv = [sys.executable, "-P", "-m", "deployfw", "--config", str(config_file.resolve())]
    if app.env:
        argv += ["--env", app.env]
    for name in app.disabled:
        argv += ["--disable-plugin", name]
    argv += ["sandbox", "--port", str(port), "--jenkins-port", str(jenkins_port), "--env-file", str(variables)]
    if faults is not None:
        argv += ["--faults", faults]
    if enforce_iam:
        argv += ["--enforce-iam"]
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    (state / "pid").write_text(f"{proc.pid}\n", encoding="utf-8")
    deadline = time.monotonic() + READY_SECONDS
    while not variables.exists():
        code = proc.poll()
        if code is not None:
            (state / "pid").unlink(missing_ok=True)
            raise BackgroundFailed(_ended(log, code), code or EXIT_BAD_INPUT)
        if time.monotonic() > deadline:
            proc.kill()
            raise BackgroundFailed(f"the sandbox did not start within {READY_SECONDS:g} s; see {log}", 1)
        time.sleep(0.05)
    exports = variables.read_text(encoding="utf-8")
    if env_file is not None:
        write_private(env_file, exports)
    click.echo(f"sandbox serving in the background (pid {proc.pid}, log {log}); stop it with: deployfw sandbox --stop",
               err=True)  # fmt: skip
    return exports + f"export DEPLOYFW_SANDBOX_PID={proc.pid}\n"


def write_private(path: Path, text: str) -> None:
    """Write ``text`` atomically with mode 0600 (it holds the Jenkins token)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(partial, path)


def remove_if_unchanged(path: Path, text: str) -> None:
    """Remove the file this sandbox wrote, unless another sandbox has replaced it since."""
    try:
        if path.read_text(encoding="utf-8") == text:
            path.unlink()
    except OSError:
        pass


def stop(config_file: Path) -> str:
    """Stop the background sandbox of this checkout; what happened, in one line."""
    state = _state(config_file)
    pid = _pid(state)
    if pid is None:
        (state / "pid").unlink(missing_ok=True)
        return "no background sandbox is running for this checkout"
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
    (state / "pid").unlink(missing_ok=True)
    (state / "env").unlink(missing_ok=True)
    return f"stopped the background sandbox (pid {pid})"


def _pid(state: Path) -> int | None:
    """The recorded background sandbox's pid, if that process is still a deployfw sandbox."""
    try:
        pid = int((state / "pid").read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None
    if not _alive(pid):
        return None
    with contextlib.suppress(OSError):  # Linux: make sure the pid was not reused by something else
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if b"sandbox" not in cmdline:
            return None
    return pid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A child of ours that ended but was not reaped yet is not alive either.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    return True


def _ended(log: Path, code: int) -> str:
    """The background sandbox's own last words (its error line), for the caller's terminal."""
    try:
        lines = [line for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
    except OSError:
        lines = []
    errors = [line.removeprefix("deployfw: error: ") for line in lines if line.startswith("deployfw: error: ")]
    detail = "; ".join(errors) or (lines[-1] if lines else f"see {log}")
    return f"the sandbox exited ({code}) before serving: {detail}"
