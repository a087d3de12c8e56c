"""``deployfw rollback MODULE [--to RUN|COMMIT]``: redeploy a recorded earlier task definition, no rebuild."""

from __future__ import annotations

import sys

import click

from deployfw.cli.app import App
from deployfw.cli.options import global_options
from deployfw.errors import EXIT_FAILED


@click.command("rollback")
@click.argument("module")
@click.option("--to", "to", metavar="RUN|COMMIT", help="Run id or commit prefix of a recorded successful deploy.")
@click.option(
    "--mode",
    type=click.Choice(["queue", "supersede", "fail"]),
    help="When another run holds the module's lock: wait, take over, or exit 3 (default: modules.yaml, else queue).",
)
@click.option("--lock-timeout", type=click.FloatRange(0), default=3600, show_default=True, help="Seconds to wait.")
@global_options
@click.pass_obj
def command(app: App, module: str, to: str | None, mode: str | None, lock_timeout: float) -> None:
    """Redeploy MODULE's previous successful deploy (or --to RUN|COMMIT) through its deploy backend."""
    from deployfw.events import EventLog
    from deployfw.rollback import rollback
    from deployfw.runner import install_signal_handlers

    events = EventLog()
    done = rollback(
        app,
        module,
        to=to,
        mode=mode,
        lock_timeout=lock_timeout,
        log=lambda stage, line: events.emit(module, stage, line),
        cancel_handlers=lambda cancel: install_signal_handlers(cancel, events),
    )
    click.echo(done.summary())
    if not done.ok:
        sys.exit(EXIT_FAILED)
