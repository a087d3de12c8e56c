"""``deployfw build MODULE``: one module's buildspec.yml, as a Jenkins job or CodeBuild project runs it."""

from __future__ import annotations

import sys

import click

from deployfw.cli.app import App
from deployfw.cli.options import global_options


@click.command("build")
@click.argument("module_name", metavar="MODULE")
@click.option(
    "--allow-dirty",
    is_flag=True,
    help="Build the working tree with its uncommitted changes, under a run-only dirty-* tag "
    "(default: a clean checkout of the head commit).",
)
@global_options
@click.pass_obj
def command(app: App, module_name: str, allow_dirty: bool) -> None:
    """Run MODULE's buildspec.yml in a clean checkout of the head commit, as CodeBuild would."""
    from deployfw.builds.single import build_module

    config = app.load_config()
    app.connect(config)
    code = build_module(config, module_name, emit=lambda line: click.echo(line), allow_dirty=allow_dirty)
    sys.exit(code)
