"""``deployfw unpin MODULE``: release the pin a rollback set, so the next run deploys the module again."""

from __future__ import annotations

import click

from deployfw.cli.app import App
from deployfw.cli.options import global_options


@click.command("unpin")
@click.argument("module")
@global_options
@click.pass_obj
def command(app: App, module: str) -> None:
    """Release MODULE's rollback pin; the next `run` measures it from its last deploy and deploys head."""
    from deployfw.rollback import unpin

    pin = unpin(app, module)
    if pin is None:
        click.echo(f"{module}: not pinned")
    else:
        click.echo(f"{module}: released the pin of rollback {pin.run_id} (commit {pin.commit[:12]}); "
                   "the next run deploys head if it differs")  # fmt: skip
