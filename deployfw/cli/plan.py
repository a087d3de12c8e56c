"""``deployfw plan``: what run would do, with preflight findings; changes nothing."""

from __future__ import annotations

import json

import click

from deployfw.cli.app import App
from deployfw.cli.options import build_choices, global_options, json_flag, selection
from deployfw.depcheck import plan_warnings
from deployfw.drift import DriftMode
from deployfw.errors import InputError
from deployfw.pipeline import prepare
from deployfw.plan import STOP_AFTER


@click.command("plan")
@selection
@build_choices
@click.option("--stop-after", type=click.Choice(STOP_AFTER), default="deploy", show_default=True)
@json_flag
@global_options
@click.pass_obj
def command(
    app: App,
    base: str | None,
    head: str | None,
    select_all: bool,
    modules: tuple[str, ...],
    rebuild: bool,
    allow_dirty: bool,
    drift: DriftMode,
    stop_after: str,
    as_json: bool,
) -> None:
    """Show, for each affected module in dependency order, the backends and steps run would execute."""
    prepared = prepare(
        app,
        base=base,
        head=head,
        select_all=select_all,
        modules=modules,
        stop_after=stop_after,
        rebuild=rebuild,
        allow_dirty=allow_dirty,
        drift=drift,
    )
    plan = prepared.plan
    # Dependency warnings (a buildspec reading an undeclared module, what the build graph computes):
    # shown, never fatal. They belong in the Plan itself once it carries warnings.
    warnings = plan_warnings(prepared.config, [m.name for m in plan.modules])
    if as_json:
        click.echo(json.dumps({**plan.to_json(), "warnings": [str(w) for w in warnings]}, indent=2))
    else:
        click.echo(plan.text())
        for warning in warnings:
            click.echo(f"deployfw: warning: {warning}", err=True)
    if plan.findings:
        raise InputError(plan.findings)
