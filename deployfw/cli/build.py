"""``deployfw build MODULE``: one module's buildspec.yml, as a Jenkins job or CodeBuild project runs it."""

from __future__ import annotations

import sys

import click

from deployfw.cli.app import App
from deployfw.cli.options import global_options


@click.command("build")
@click.argument("module_name", metavar="MODULE")
@global_options
@click.pass_obj
def command(app: App, module_name: str) -> None:
    """Run MODULE's buildspec.yml here with CodeBuild's semantics and the build contract's variables."""
    from deployfw.builds.single import build_module

    config = app.load_config()
    app.connect(config)
    code = build_module(config, module_name, emit=lambda line: click.echo(line))
    sys.exit(code)
