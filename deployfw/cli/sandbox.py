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
@click.option(
    "--enforce-iam",
    is_flag=True,
    help="Authorise every request against the sandbox's IAM as AWS would; print an administrator's keys "
    "(or set DEPLOYFW_SANDBOX_IAM=enforce|least-privilege).",
)
@click.pass_obj
def command(app: App, port: int, jenkins_port: int, faults: str | None, enforce_iam: bool) -> None:
    """Seed the infrastructure modules.yaml describes, print how to reach it, and serve until interrupted."""
    from deployfw.sandbox.aws.server import iam_mode
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
    mode = iam_mode()
    if enforce_iam and mode == "off":
        mode = "enforce"
    session = SandboxSession.start(config, app.plugins, port=port, jenkins_port=jenkins_port, iam=mode)
    try:
        for name, seconds in timings.items():
            setattr(session.aws.timings, name, seconds)
        env = session.environment()
        for key in ("AWS_ENDPOINT_URL", "JENKINS_URL", "JENKINS_USER", "JENKINS_API_TOKEN"):
            click.echo(f"{key}={env[key]}")
        region = env["AWS_DEFAULT_REGION"]
        if mode == "off":
            click.echo(f"# also: AWS_ACCESS_KEY_ID={env['AWS_ACCESS_KEY_ID']} AWS_SECRET_ACCESS_KEY=<any> "
                       f"AWS_DEFAULT_REGION={region}")  # fmt: skip
        else:  # the keys matter now: lines 5-6, so `export $(deployfw sandbox --enforce-iam | head -6)` works
            for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
                click.echo(f"{key}={env[key]}")
            admin = session.aws.admin_keys
            also = f"# also: AWS_DEFAULT_REGION={region}"
            if mode == "least-privilege":  # lines 5-6 are deployfw-ci's; tests need the administrator too
                also += f" ADMIN_ACCESS_KEY_ID={admin['AWS_ACCESS_KEY_ID']} "
                also += f"ADMIN_SECRET_ACCESS_KEY={admin['AWS_SECRET_ACCESS_KEY']}"
            click.echo(also)
            who = "an administrator" if mode == "enforce" else "deployfw-ci (exactly the generated ci policy)"
            click.echo(f"IAM enforced: AWS_ACCESS_KEY_ID belongs to {who} of account 123456789012", err=True)
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
        # Waking up now and then: the kernel may hand SIGTERM to any thread, and CPython runs the handler
        # only when the main thread next executes - never while it is blocked in a wait without a timeout.
        while not stop.wait(0.5):
            pass
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
