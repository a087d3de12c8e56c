"""``deployfw status``: what is deployed where (state store and live AWS)."""

from __future__ import annotations

import json

import click

from deployfw.cli.app import App
from deployfw.cli.options import global_options, json_flag


@click.command("status")
@json_flag
@click.option("--no-live", is_flag=True, help="Only the state store: do not ask AWS what runs.")
@global_options
@click.pass_obj
def command(app: App, as_json: bool, no_live: bool) -> None:
    """Per service module: last successful deploy, last attempt, in-flight deploy, lock, live state, drift."""
    from deployfw.status import open_command, status, status_text

    config = app.load_config()
    data = status(open_command(app, config), live=not no_live)
    click.echo(json.dumps(data, indent=2, sort_keys=True) if as_json else status_text(data))
