"""``deployfw schema``: the JSON Schema of modules.yaml, including every installed backend's options."""

from __future__ import annotations

import json

import click

from deployfw.cli.app import App
from deployfw.schema import modules_schema


@click.command("schema")
@click.pass_obj
def command(app: App) -> None:
    """Print the JSON Schema of modules.yaml (for `# yaml-language-server: $schema=`)."""
    click.echo(json.dumps(modules_schema(app.plugins.backends.catalog()), indent=2))
