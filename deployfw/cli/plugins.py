"""``deployfw plugins``: what is installed - backends and hooks with their providing plugin."""

from __future__ import annotations

import json
from typing import Any

import click

from deployfw.cli.app import App
from deployfw.cli.options import json_flag


@click.command("plugins")
@json_flag
@click.pass_obj
def command(app: App, as_json: bool) -> None:
    """List backends and hooks with the plugin (and version) providing each."""
    manager = app.plugins
    backends: list[dict[str, str]] = [
        {"stage": s.stage, "id": s.id, "plugin": s.plugin, "version": s.version, "description": s.description}
        for s in manager.backends.specs()
    ]
    plugins: list[dict[str, Any]] = [
        {"name": p.name, "version": p.version, "source": p.source, "hooks": list(p.hooks)} for p in manager.plugins()
    ]
    if as_json:
        click.echo(json.dumps({"backends": backends, "plugins": plugins}, indent=2))
        return
    click.echo("Backends:")
    for row in backends:
        click.echo(f"  {row['stage']:<9} {row['id']:<15} {row['plugin']} {row['version']}  {row['description']}")
    click.echo("Plugins:")
    width = max((len(row["source"]) for row in plugins), default=8)
    for row in plugins:
        hooks = ", ".join(row["hooks"])
        click.echo(f"  {row['name']:<15} {row['version']:<8} {row['source']:<{width}}  hooks: {hooks}")
