"""``deployfw sandbox``: serve the embedded AWS endpoint and Jenkins double, in the foreground or the background.

Foreground (the default): seed, print what a client needs as ``KEY=value`` lines on stdout - first
``AWS_ENDPOINT_URL``, ``JENKINS_URL``, ``JENKINS_USER``, ``JENKINS_API_TOKEN`` (DESIGN.md "Sandbox
contract"), then the credentials and region (:data:`PRINTED`; with IAM enforced in
least-privilege mode also the administrator's ``ADMIN_ACCESS_KEY_ID``/``ADMIN_SECRET_ACCESS_KEY``)
- and serve until Ctrl-C/SIGTERM. Everything else goes to stderr.

Background: ``eval "$(deployfw sandbox --detach)"`` starts the same foreground sandbox as a process of
its own, waits until it serves, and prints ``export`` lines for the current shell; ``deployfw sandbox
--stop`` ends it. ``--env-file FILE`` writes the same ``export`` lines to a file (mode 0600: it holds
the Jenkins token) once the sandbox serves, and removes it when the sandbox stops.

Start-up never hangs: both ports are checked before anything heavy is imported, and a busy one is
one line naming the port and the flag that changes it, exit 2.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import click

from deployfw.cli.app import App
from deployfw.errors import InputError
from deployfw.sandbox import CLIENT_VARIABLES

if TYPE_CHECKING:
    from deployfw.config import Config

TIMINGS_ENV = "DEPLOYFW_SANDBOX_TIMINGS"
PRINTED = CLIENT_VARIABLES  # what the sandbox prints, in order
FLAGS = {"AWS endpoint": "--port", "Jenkins double": "--jenkins-port"}


@click.command("sandbox")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=4566, show_default=True, help="AWS endpoint port (0: a free one)."
)
@click.option(
    "--jenkins-port",
    type=click.IntRange(0, 65535),
    default=8090,
    show_default=True,
    help="Jenkins double port (0: a free one).",
)
@click.option("--faults", help="Injected faults, e.g. deploy:user-api,throttle:20 (or DEPLOYFW_SANDBOX_FAULTS).")
@click.option(
    "--enforce-iam",
    is_flag=True,
    help="Authorise every request against the sandbox's IAM as AWS would; print an administrator's keys "
    "(or set DEPLOYFW_SANDBOX_IAM=enforce|least-privilege).",
)
@click.option(
    "--env-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the variables as `export` lines to this file (mode 0600) once serving; removed on stop.",
)
@click.option(
    "--detach",
    is_flag=True,
    help='Run in the background and print `export` lines: eval "$(deployfw sandbox --detach)".',
)
@click.option(
    "--idle-minutes",
    type=click.FloatRange(min=0),
    help="Stop after this many minutes without an AWS or Jenkins request (0: never). Default: never in the "
    "foreground; in the background DEPLOYFW_SANDBOX_IDLE_MINUTES, else 30.",
)
@click.option(
    "--stop",
    is_flag=True,
    help="Stop the background sandbox of this checkout (started with --detach or by `run --sandbox`).",
)
@click.pass_obj
def command(
    app: App,
    port: int,
    jenkins_port: int,
    faults: str | None,
    enforce_iam: bool,
    env_file: Path | None,
    detach: bool,
    idle_minutes: float | None,
    stop: bool,
) -> None:
    """Seed the infrastructure modules.yaml describes, print how to reach it, and serve until interrupted."""
    from deployfw.cli import sandbox_background as background

    if stop:
        click.echo(background.stop(app.config_file()), err=True)
        return
    check_ports(port, jenkins_port)
    if detach:
        exports = background.start(
            app, port=port, jenkins_port=jenkins_port, faults=faults, env_file=env_file, enforce_iam=enforce_iam,
            idle_minutes=idle_minutes,
        )  # fmt: skip
        click.echo(exports, nl=False)
        return
    serve(app, port=port, jenkins_port=jenkins_port, faults=faults, env_file=env_file, enforce_iam=enforce_iam,
          idle_minutes=idle_minutes or 0.0)  # fmt: skip


def check_ports(port: int, jenkins_port: int) -> None:
    """Both ports must be free before anything is imported or seeded: a busy one is exit 2 at once."""
    from deployfw.sandbox.ports import PortUnavailable, check_free

    if port and port == jenkins_port:
        raise InputError(f"--port and --jenkins-port are both {port}; give them different ports (or 0 for free ones)")
    try:
        check_free(port, "AWS endpoint")
        check_free(jenkins_port, "Jenkins double")
    except PortUnavailable as exc:
        raise port_error(exc) from None


def port_error(exc: OSError) -> InputError:
    """One line naming the port and the flag that changes it."""
    from deployfw.sandbox.ports import PortUnavailable

    if not isinstance(exc, PortUnavailable):
        return InputError(f"the sandbox cannot listen: {exc}")
    flag = FLAGS.get(exc.endpoint, "--port")
    return InputError(
        f"port {exc.port} ({exc.endpoint}) {exc.reason}: choose another with {flag} N, or {flag} 0 for a free one"
    )


def serve(
    app: App,
    *,
    port: int,
    jenkins_port: int,
    faults: str | None,
    env_file: Path | None,
    enforce_iam: bool = False,
    idle_minutes: float = 0.0,
) -> None:
    """The foreground sandbox: seed, print, serve until SIGINT/SIGTERM (or ``idle_minutes`` without a request)."""
    from deployfw.cli import sandbox_background as background
    from deployfw.sandbox.aws.server import iam_mode
    from deployfw.sandbox.ports import PortUnavailable
    from deployfw.sandbox.session import SandboxSession, describe, export_lines

    if faults is not None:
        os.environ["DEPLOYFW_SANDBOX_FAULTS"] = faults
    timings = parse_timings(os.environ.get(TIMINGS_ENV, ""))
    from deployfw.sandbox.clock import SandboxClock

    clock = SandboxClock.from_env()  # a bad DEPLOYFW_SANDBOX_TIME_SCALE is bad input, before anything starts
    mode = iam_mode()
    if enforce_iam and mode == "off":
        mode = "enforce"
    config = app.load_config()
    try:
        session = SandboxSession.start(config, app.plugins, port=port, jenkins_port=jenkins_port, iam=mode)
    except PortUnavailable as exc:  # taken between the check and the bind
        raise port_error(exc) from None
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    written: str | None = None
    try:
        for name, seconds in timings.items():
            setattr(session.aws.timings, name, seconds)
        session.aws.ctx.reseed = lambda: session.reseed(_load_again(config, app), app.plugins)
        env = session.environment()
        printed = {key: env[key] for key in PRINTED}
        if mode == "least-privilege":  # lines 5-6 are deployfw-ci's keys; tests need the administrator's too
            admin = session.aws.admin_keys
            printed |= {"ADMIN_ACCESS_KEY_ID": admin["AWS_ACCESS_KEY_ID"],
                        "ADMIN_SECRET_ACCESS_KEY": admin["AWS_SECRET_ACCESS_KEY"]}  # fmt: skip
        for key, value in printed.items():
            click.echo(f"{key}={value}")
        sys.stdout.flush()
        if mode != "off":
            who = "an administrator" if mode == "enforce" else "deployfw-ci (exactly the generated ci policy)"
            click.echo(f"IAM enforced: AWS_ACCESS_KEY_ID belongs to {who} of account 123456789012", err=True)
        for line in describe(session):
            click.echo(f"seeded {line}", err=True)
        if env_file is not None:
            written = "".join(f"export {line}\n" for line in export_lines(printed))
            background.write_private(env_file, written)
        click.echo(
            f"clock: {clock.scale:g} sandbox seconds per real second (DEPLOYFW_SANDBOX_TIME_SCALE); "
            f"tasks: GET {env['AWS_ENDPOINT_URL']}/_sandbox/tasks; "
            f"listeners: GET {env['AWS_ENDPOINT_URL']}/_sandbox/listeners",
            err=True,
        )
        click.echo(
            f"faults: POST {env['AWS_ENDPOINT_URL']}/_sandbox/faults; "
            f"request log: GET {env['AWS_ENDPOINT_URL']}/_sandbox/requests; Ctrl-C to stop",
            err=True,
        )
        # Waking up now and then: the kernel may hand SIGTERM to any thread, and CPython runs the handler
        # only when the main thread next executes - never while it is blocked in a wait without a timeout.
        while not stop.wait(0.5):
            if idle_minutes and session.idle_seconds() >= idle_minutes * 60:
                click.echo(f"no AWS or Jenkins request for {idle_minutes:g} min: stopping", err=True)
                break
    finally:
        session.stop()
        if env_file is not None and written is not None:
            background.remove_if_unchanged(env_file, written)


def _load_again(config: Config, app: App) -> Config:
    """The config file as it is now, for the environment the sandbox was started with (no cache)."""
    from deployfw.config import load_config

    return load_config(config.file, env=config.env, catalog=app.plugins.backends.catalog(), root=config.root)


def parse_timings(text: str) -> dict[str, float]:
    """``deploy_step=0.05,rolling_step=0.05`` (fields of ``Timings``): tests speed simulated work up.

    Checked before the sandbox starts, so a typo is bad input (exit 2) rather than silently slow tests.
    """
    from dataclasses import fields

    from deployfw.sandbox.aws.context import Timings

    known = {f.name for f in fields(Timings)}
    parsed: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = (p.strip() for p in item.partition("="))
        try:
            seconds = float(value)
        except ValueError:
            seconds = -1.0
        if name not in known or seconds < 0:
            raise InputError(
                f"{TIMINGS_ENV}: bad item {item!r}; expected <name>=<seconds>, name one of {', '.join(sorted(known))}"
            )
        parsed[name] = seconds
    return parsed
