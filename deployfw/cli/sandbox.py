"""``deployfw sandbox``: serve the embedded AWS endpoint and Jenkins double in the foreground.

The first four stdout lines are ``AWS_ENDPOINT_URL=...``, ``JENKINS_URL=...``,
``JENKINS_USER=...`` and ``JENKINS_API_TOKEN=...`` (DESIGN.md "Sandbox
contract"), so ``export $(deployfw sandbox | head -4)`` works; everything else
goes to stderr.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

import click

from deployfw.cli.app import App
from deployfw.errors import InputError

TIMINGS_ENV = "DEPLOYFW_SANDBOX_TIMINGS"


@click.command("sandbox")
@click.option("--port", type=click.IntRange(0, 65535), default=4566, show_default=True, help="AWS endpoint port.")
@click.option(
    "--jenkins-port", type=click.IntRange(0, 65535), default=8090, show_default=True, help="Jenkins double port."
)
@click.option("--faults", help="Injected faults, e.g. deploy:user-api,throttle:20 (or DEPLOYFW_SANDBOX_FAULTS).")
@click.pass_obj
def command(app: App, port: int, jenkins_port: int, faults: str | None) -> None:
    """Seed the infrastructure modules.yaml describes, print how to reach it, and serve until interrupted."""
    from deployfw.sandbox.session import SandboxSession, describe

    if faults is not None:
        os.environ["DEPLOYFW_SANDBOX_FAULTS"] = faults
    timings = parse_timings(os.environ.get(TIMINGS_ENV, ""))
    from deployfw.sandbox.clock import SandboxClock

    clock = SandboxClock.from_env()  # a bad DEPLOYFW_SANDBOX_TIME_SCALE is bad input, before anything starts
    config = app.load_config()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    session = SandboxSession.start(config, app.plugins, port=port, jenkins_port=jenkins_port)
    try:
        for name, seconds in timings.items():
            setattr(session.aws.timings, name, seconds)
        env = session.environment()
        for key in ("AWS_ENDPOINT_URL", "JENKINS_URL", "JENKINS_USER", "JENKINS_API_TOKEN"):
            click.echo(f"{key}={env[key]}")
        click.echo(
            f"# also: AWS_ACCESS_KEY_ID={env['AWS_ACCESS_KEY_ID']} AWS_SECRET_ACCESS_KEY=<any> "
            f"AWS_DEFAULT_REGION={env['AWS_DEFAULT_REGION']}",
        )
        for line in describe(session):
            click.echo(f"seeded {line}", err=True)
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
        sys.stdout.flush()
        stop.wait()
    finally:
        session.stop()


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
