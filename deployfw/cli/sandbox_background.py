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
import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from deployfw.errors import EXIT_BAD_INPUT, DeployfwError, InputError

if TYPE_CHECKING:
    from deployfw.cli.app import App

STATE_DIR = Path(".deployfw") / "sandbox"
READY_SECONDS = 300.0  # seeding a large config on a loaded machine; the process is watched meanwhile
STOP_SECONDS = 15.0


class BackgroundFailed(DeployfwError):
    """The background sandbox ended before it served; carries its exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def state_dir(config_file: Path) -> Path:
    return config_file.resolve().parent / STATE_DIR


IDLE_ENV = "DEPLOYFW_SANDBOX_IDLE_MINUTES"
DEFAULT_IDLE_MINUTES = 30.0
# Variables of the caller that do not change what the sandbox serves (the rest of DEPLOYFW_SANDBOX_* do).
NOT_SETTINGS = frozenset({IDLE_ENV, "DEPLOYFW_SANDBOX_PID", "DEPLOYFW_SANDBOX_IN_PROCESS"})


@dataclass(frozen=True)
class Launched:
    """A background sandbox that serves: its pid, its ``export`` lines, its log."""

    pid: int
    exports: str
    log: Path


def idle_minutes_from_env() -> float:
    """``DEPLOYFW_SANDBOX_IDLE_MINUTES`` (default 30; 0: never); anything else is bad input."""
    text = os.environ.get(IDLE_ENV, "").strip()
    if not text:
        return DEFAULT_IDLE_MINUTES
    try:
        minutes = float(text)
    except ValueError:
        minutes = -1.0
    if not minutes >= 0:  # also refuses nan
        raise InputError(f"{IDLE_ENV}={text!r}: expected a number of minutes, 0 for never")
    return minutes


def settings_digest(
    app: App, *, faults: str | None = None, enforce_iam: bool = False, with_config: bool = True
) -> str:
    """What the sandbox was seeded and set up from: modules.yaml's bytes (every environment of it is
    seeded; left out with ``with_config=False``), the disabled plugins, deployfw's version and the
    caller's DEPLOYFW_SANDBOX_* settings.

    A background sandbox serves later commands while this is unchanged; when only modules.yaml
    changed it is seeded again in place, otherwise it is restarted.
    """
    from deployfw import __version__

    sandbox_env = {k: v for k, v in os.environ.items() if k.startswith("DEPLOYFW_SANDBOX_") and k not in NOT_SETTINGS}
    doc = {"version": __version__, "disabled": sorted(app.disabled), "env": sandbox_env, "faults": faults,
           "enforce_iam": enforce_iam}  # fmt: skip
    if with_config:
        doc["config"] = hashlib.sha256(app.config_file().read_bytes()).hexdigest()
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def remember_settings(config_file: Path, digest: str) -> None:
    """Record in ``meta.json`` that the running sandbox now serves ``digest`` (after seeding it again)."""
    doc = meta(config_file)
    if doc:
        write_private(state_dir(config_file) / "meta.json", json.dumps({**doc, "settings": digest}) + "\n")


def start(
    app: App,
    *,
    port: int,
    jenkins_port: int,
    faults: str | None,
    env_file: Path | None,
    enforce_iam: bool = False,
    idle_minutes: float | None = None,
) -> str:
    """Start the background sandbox of this checkout; the ``export`` lines for the calling shell."""
    running = _pid(state_dir(app.config_file()))
    if running is not None:
        raise InputError(
            f"a background sandbox of this checkout is already running (pid {running}); "
            "use it (its variables are in .deployfw/sandbox/env), or stop it with: deployfw sandbox --stop"
        )
    launched = launch(
        app, port=port, jenkins_port=jenkins_port, faults=faults, enforce_iam=enforce_iam,
        idle_minutes=idle_minutes_from_env() if idle_minutes is None else idle_minutes,
    )  # fmt: skip
    if env_file is not None:
        write_private(env_file, launched.exports)
    click.echo(f"sandbox serving in the background (pid {launched.pid}, log {launched.log}); "
               "stop it with: deployfw sandbox --stop", err=True)  # fmt: skip
    return launched.exports + f"export DEPLOYFW_SANDBOX_PID={launched.pid}\n"


def launch(
    app: App,
    *,
    port: int = 0,
    jenkins_port: int = 0,
    faults: str | None = None,
    enforce_iam: bool = False,
    idle_minutes: float = DEFAULT_IDLE_MINUTES,
) -> Launched:
    """Start ``deployfw sandbox`` as a process of its own and wait until it serves (or ends, or hangs).

    Records its pid, and in ``meta.json`` an instance id (new for every sandbox: deploy state kept
    against one sandbox is never read against another) and :func:`settings_digest`.
    """
    config_file = app.config_file()
    state = state_dir(config_file)
    state.mkdir(parents=True, exist_ok=True)
    ignore = state.parent / ".gitignore"  # as the state store does: .deployfw/ is never committed
    if not ignore.exists():
        ignore.write_text("# created by deployfw: local deploy state, never committed\n*\n", encoding="utf-8")
    variables = state / "env"
    variables.unlink(missing_ok=True)
    log = state / "log"
    argv = [sys.executable, "-P", "-m", "deployfw", "--config", str(config_file.resolve())]
    if app.env:
        argv += ["--env", app.env]
    for name in app.disabled:
        argv += ["--disable-plugin", name]
    argv += ["sandbox", "--port", str(port), "--jenkins-port", str(jenkins_port), "--env-file", str(variables)]
    argv += ["--idle-minutes", f"{idle_minutes:g}"]
    if faults is not None:
        argv += ["--faults", faults]
    if enforce_iam:
        argv += ["--enforce-iam"]
    meta = {"instance": secrets.token_hex(8), "settings": settings_digest(app, faults=faults, enforce_iam=enforce_iam),
            "setup": settings_digest(app, faults=faults, enforce_iam=enforce_iam, with_config=False)}  # fmt: skip
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    (state / "pid").write_text(f"{proc.pid}\n", encoding="utf-8")
    write_private(state / "meta.json", json.dumps({**meta, "pid": proc.pid}) + "\n")
    deadline = time.monotonic() + READY_SECONDS
    while not variables.exists():
        code = proc.poll()
        if code is not None:
            (state / "pid").unlink(missing_ok=True)
            raise BackgroundFailed(_ended(log, code), code or EXIT_BAD_INPUT)
        if time.monotonic() > deadline:
            proc.kill()
            (state / "pid").unlink(missing_ok=True)
            raise BackgroundFailed(f"the sandbox did not start within {READY_SECONDS:g} s; see {log}", 1)
        time.sleep(0.05)
    return Launched(proc.pid, variables.read_text(encoding="utf-8"), log)


def meta(config_file: Path) -> dict[str, Any]:
    """What :func:`launch` recorded about this checkout's background sandbox ({} when nothing readable)."""
    try:
        doc = json.loads((state_dir(config_file) / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def running(config_file: Path) -> int | None:
    """The pid of this checkout's background sandbox, if one is alive."""
    return _pid(state_dir(config_file))


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
    state = state_dir(config_file)
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
