"""``deployfw plan``: what run would do, with preflight findings; changes nothing."""

from __future__ import annotations

import json

import click

from deployfw.cli.app import App
from deployfw.cli.options import build_choices, global_options, json_flag, selection
from deployfw.depcheck import plan_warnings
from deployfw.drift import DriftMode
from deployfw.errors import DeployfwError, InputError
from deployfw.livecheck import LiveChecks, live_checks
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
    """Show, for each affected module in dependency order, the backends and steps run would execute.

    Static preflight findings exit 2 (nothing was called); the live checks of the planned deploy
    backends (read-only, as ``deployfw doctor`` makes them: cluster, service, its deployment
    controller, and for ecs-native the alternate target group and listener rules) follow the plan
    and exit 1 when one fails.
    """
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
    # Live checks (read-only) only for a plan without static findings: those stop before any AWS call.
    live = LiveChecks() if plan.findings else live_checks(plan, prepared.config, app.plugins.backends, prepared.ctx)
    if as_json:
        shown = [*plan.warnings, *(str(w) for w in warnings)]  # the plan's own (state store) and dependency ones
        click.echo(json.dumps({**plan.to_json(), "warnings": shown, "live": live.to_json()}, indent=2))
    else:
        click.echo(plan.text())
        if live.text():
            click.echo(live.text())
        for warning in warnings:
            click.echo(f"deployfw: warning: {warning}", err=True)
    if plan.findings:
        raise InputError(plan.findings)
    if live.failed:
        modules_failed = ", ".join(dict.fromkeys(r.module for r in live.failed))
        raise DeployfwError(f"{len(live.failed)} live check(s) failed: the run would fail for {modules_failed}")
