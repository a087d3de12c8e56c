"""``deployfw state``: create the state store (``init``) and read one module's history (``show``)."""

from __future__ import annotations

import json

import click

from deployfw.cli.app import App
from deployfw.cli.options import global_options, json_flag


@click.group("state")
def command() -> None:
    """Manage the deploy state store named in modules.yaml's `state:` section."""


@command.command("init")
@global_options
@click.pass_obj
def init(app: App) -> None:
    """Create the store (DynamoDB table, sqlite file); safe to run again."""
    from deployfw.status import init_store

    click.echo(init_store(app))


@command.command("show")
@click.argument("module")
@click.option("-n", "--limit", type=click.IntRange(1, 1000), default=20, show_default=True, help="Records to show.")
@json_flag
@global_options
@click.pass_obj
def show(app: App, module: str, limit: int, as_json: bool) -> None:
    """MODULE's deploy records in this scope, newest first."""
    from deployfw.rollback import check_module
    from deployfw.status import history_text, open_command

    config = app.load_config()
    check_module(config, module)
    opened = open_command(app, config)
    records = opened.state.store.history(opened.state.scope, module, limit=limit)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in records], indent=2, sort_keys=True))
    else:
        click.echo(history_text(records))
