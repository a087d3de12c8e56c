"""``deployfw doctor``: read-only checks of the live account against modules.yaml."""

from __future__ import annotations

import json
import sys

import click

from deployfw.cli.app import App
from deployfw.cli.options import global_options, json_flag
from deployfw.errors import EXIT_FAILED


@click.command("doctor")
@json_flag
@click.option("--principal", metavar="ARN",
              help="Check this user's or role's IAM policies (default: the caller's).")  # fmt: skip
@click.option("--all-envs", is_flag=True, help="Check every environment of modules.yaml, not only the selected one.")
@global_options
@click.pass_obj
def command(app: App, as_json: bool, principal: str | None, all_envs: bool) -> None:
    """Check every module (of -e ENV, or of --all-envs) against the live account; changes nothing.

    Exit 0 when every check passes, 1 when one fails (each with its fix), 2 for bad input.
    """
    from deployfw.doctor import examine, text

    findings = examine(app, principal=principal, every_env=all_envs)
    click.echo(json.dumps(findings.to_json(), indent=2) if as_json else text(findings))
    if not findings.ok:
        sys.exit(EXIT_FAILED)
