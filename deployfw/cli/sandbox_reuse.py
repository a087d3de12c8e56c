"""``--sandbox``: this checkout's background sandbox, reused by every command, so runs remember.

A sandbox started inside each command is a new AWS account every time: the second identical
``deployfw run --sandbox`` would find none of the first one's services, images or task
definitions, and redeploy everything. So ``--sandbox`` uses one background sandbox per checkout
(``deployfw sandbox --detach``'s: pid, log, variables and ``meta.json`` in ``.deployfw/sandbox/``),
which keeps the AWS side between commands, and keys the deploy state by that sandbox:

- one serves (its pid is alive, ``/_sandbox/health`` answers) and was set up from the same
  modules.yaml and DEPLOYFW_SANDBOX_* settings: it is reused;
- it serves but modules.yaml changed: it is seeded again in place (``POST /_sandbox/seed``), as
  one AWS account would keep everything: a module the config adds gets its services, jobs and
  fleet; what exists stays as it is (a service ``deployfw migrate`` switched stays switched); a
  module removed from the config keeps its resources, as deleting a line of modules.yaml deletes
  nothing in AWS either;
- none serves (first use, idle exit, reboot, killed), or it was set up with other settings
  (DEPLOYFW_SANDBOX_*, disabled plugins, another deployfw), or seeding again failed, or
  ``--sandbox-reset``: a new one is started on free ports, replacing the old one, whose
  remembered deploys are forgotten;
- the state scope's account carries the sandbox's instance id (``123456789012@127.0.0.1:41234~id``):
  deploys recorded against one sandbox are never read against another, even one that got the
  same port, so a new sandbox can never make a module look up to date. A fresh sandbox runs
  nothing: every module is deployed again (``no successful deploy yet``).

Every wait has a bound; each outcome is one line on stderr.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from deployfw.cli import sandbox_background as background
from deployfw.hookspecs import hookimpl

if TYPE_CHECKING:
    from deployfw.backends import RunContext
    from deployfw.cli.app import App
    from deployfw.config import Config

HEALTH_SECONDS = 10.0  # a sandbox that takes longer to answer its health endpoint is not serving
SEED_SECONDS = 120.0  # seeding a whole config again (every environment) takes seconds; this bounds the wait


@dataclass(frozen=True)
class SandboxScope:
    """The ``deployfw_state_account`` answer for runs against one background sandbox."""

    instance: str

    @hookimpl(tryfirst=True)
    def deployfw_state_account(self, ctx: RunContext) -> str:
        from deployfw.state.open import state_account

        return f"{state_account(ctx)}~{self.instance}"


@dataclass(frozen=True)
class BackgroundSandbox:
    """This checkout's background sandbox, as one command uses it."""

    pid: int
    variables: dict[str, str]
    scope: SandboxScope

    def environment(self) -> dict[str, str]:
        return dict(self.variables)

    def stop(self) -> None:
        """Nothing to do: the sandbox outlives the command (idle exit, ``deployfw sandbox --stop``)."""


def attach(app: App, config: Config, *, reset: bool = False) -> BackgroundSandbox:
    """Reuse this checkout's background sandbox, or start one; say which on stderr.

    Under a lock file: two commands started together in one checkout share one new sandbox.
    """
    config_file = app.config_file()
    idle = background.idle_minutes_from_env()  # bad input before anything is stopped or started
    with _locked(background.state_dir(config_file)):
        previous = background.meta(config_file)
        pid = background.running(config_file)
        if pid is not None:
            reused = _reuse(app, config_file, pid, previous, reset)
            if reused is not None:
                return reused
        elif reset:
            click.echo("sandbox: reset (--sandbox-reset): no background sandbox was running", err=True)
        elif previous.get("pid"):
            click.echo(f"sandbox: the background sandbox (pid {previous['pid']}) has ended (idle, reboot or "
                       "killed); a new one runs nothing yet, so every module deploys again", err=True)  # fmt: skip
        launched = background.launch(app, idle_minutes=idle)
        if previous.get("instance"):
            _forget(app, config, str(previous["instance"]))
    instance = str(background.meta(config_file).get("instance", ""))
    idle_text = "never stops by itself" if not idle else f"stops after {idle:g} min idle"
    click.echo(
        f"sandbox: started in the background for this checkout (pid {launched.pid}, .deployfw/sandbox/; "
        f"{idle_text}; `deployfw sandbox --stop` ends it, `--sandbox-reset` starts over)",
        err=True,
    )
    return BackgroundSandbox(launched.pid, _parse(launched.exports), SandboxScope(instance))


def _reuse(app: App, config_file: Path, pid: int, previous: dict[str, Any], reset: bool) -> BackgroundSandbox | None:
    """The running sandbox when it may serve this command; else stop it, saying why, and None."""
    variables = _variables(config_file)
    if reset:
        why = "--sandbox-reset"
    elif previous.get("pid") != pid or not previous.get("instance"):
        why = f"pid {pid} was not started by this deployfw (no matching .deployfw/sandbox/meta.json)"
    elif variables is None or not _serves(variables):
        why = f"pid {pid} does not answer on /_sandbox/health"
    elif previous.get("settings") != (settings := background.settings_digest(app)):
        if previous.get("setup") != background.settings_digest(app, with_config=False):
            why = "the DEPLOYFW_SANDBOX_* settings, the disabled plugins or deployfw changed since it was started"
        elif (added := _seed_again(variables)) is None:
            why = "modules.yaml changed and seeding it again failed"
        else:
            background.remember_settings(config_file, settings)
            what = f"created what it adds: {', '.join(added)}" if added else "it adds no service"
            click.echo(f"sandbox: reusing this checkout's background sandbox (pid {pid}); modules.yaml changed, "
                       f"so it was seeded again in place ({what}; nothing is removed, as in an AWS account)",
                       err=True)  # fmt: skip
            return BackgroundSandbox(pid, variables, SandboxScope(str(previous["instance"])))
    else:
        click.echo(f"sandbox: reusing this checkout's background sandbox (pid {pid}, .deployfw/sandbox/)", err=True)
        return BackgroundSandbox(pid, variables, SandboxScope(str(previous["instance"])))
    click.echo(f"sandbox: replacing this checkout's background sandbox ({why}); "
               f"{background.stop(config_file)}; every module deploys again", err=True)  # fmt: skip
    return None


@contextlib.contextmanager
def _locked(state: Path) -> Iterator[None]:
    """An exclusive lock on ``.deployfw/sandbox/lock``, waited for at most as long as a start may take."""
    import fcntl

    state.mkdir(parents=True, exist_ok=True)
    with open(state / "lock", "a+b") as handle:
        deadline = time.monotonic() + background.READY_SECONDS + background.STOP_SECONDS
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise background.BackgroundFailed(
                        f"another deployfw command has been starting this checkout's sandbox for too long "
                        f"(lock {state / 'lock'})", 1) from None  # fmt: skip
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _variables(config_file: Path) -> dict[str, str] | None:
    """The serving sandbox's variables from its env file (None when it has none yet or it is unreadable)."""
    try:
        text = (background.state_dir(config_file) / "env").read_text(encoding="utf-8")
    except OSError:
        return None
    return _parse(text) or None


def _parse(exports: str) -> dict[str, str]:
    """``export KEY=value`` lines (values shell-quoted) as a dict."""
    found: dict[str, str] = {}
    for line in exports.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            key, _, value = words[1].partition("=")
            found[key] = value
    return found


def _control(variables: dict[str, str], name: str, *, timeout: float, post: bool = False) -> Any:
    """The JSON answer of the sandbox's ``/_sandbox/NAME`` (127.0.0.1 only, no proxy, bounded wait);
    None when it does not answer with JSON."""
    url = variables.get("AWS_ENDPOINT_URL", "")
    if not url.startswith("http://127.0.0.1:"):
        return None
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(f"{url}/_sandbox/{name}", data=b"{}" if post else None,
                                     method="POST" if post else "GET")  # fmt: skip
    try:
        with opener.open(request, timeout=timeout) as answer:
            return json.loads(answer.read() or b"{}")
    except (OSError, ValueError, urllib.error.URLError):
        return None


def _serves(variables: dict[str, str]) -> bool:
    """Its AWS endpoint answers ``/_sandbox/health``."""
    doc = _control(variables, "health", timeout=HEALTH_SECONDS)
    return isinstance(doc, dict) and doc.get("status") == "ok"


def _seed_again(variables: dict[str, str]) -> list[str] | None:
    """``POST /_sandbox/seed``: the running sandbox seeds what modules.yaml now adds; the services it
    created, or None when it could not (an older sandbox, a config that no longer loads, no answer)."""
    doc = _control(variables, "seed", timeout=SEED_SECONDS, post=True)
    seeded = doc.get("seeded") if isinstance(doc, dict) else None
    return [str(name) for name in seeded] if isinstance(seeded, list) else None


def _forget(app: App, config: Config, instance: str) -> None:
    """Remove the deploys recorded against a replaced sandbox from the state store, when it can forget.

    They could never be read again (the scope carries the instance id); removing them keeps
    ``deployfw state show --sandbox`` and the file small. A store in the sandbox itself (dynamodb)
    went with it.
    """
    from deployfw.context import make_context
    from deployfw.state import open_store
    from deployfw.state.placement import state_section
    from deployfw.state.sqlite import SqliteStore

    section, _source = state_section(config, app.plugins.backends, os.environ)
    if (section or {}).get("backend", "sqlite") != "sqlite":
        return
    store = open_store(app.plugins.backends, make_context(config, backends=app.plugins.backends), section)
    try:
        if isinstance(store, SqliteStore):
            store.forget_accounts_ending(f"~{instance}")
    finally:
        store.close()
