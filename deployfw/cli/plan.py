"""``deployfw plan``: what run would do, with preflight findings; changes nothing."""

from __future__ import annotations

import json

import click

from deployfw.cli.app import App
from deployfw.cli.options import global_options, json_flag, selection
from deployfw.errors import DeployfwError, InputError
from deployfw.livecheck import live_findings
from deployfw.pipeline import prepare
from deployfw.plan import STOP_AFTER


@click.command("plan")
@selection
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
    stop_after: str,
    as_json: bool,
) -> None:
    """Show, for each affected module in dependency order, the backends and steps run would execute.

    Static preflight findings exit 2 (nothing was called); live checks that deploy backends make
    read-only against the account (e.g. ecs-native: controller, target groups, listener rules)
    are listed after the plan and exit 1 when one fails.
    """
    prepared = prepare(app, base=base, head=head, select_all=select_all, modules=modules, stop_after=stop_after)
    plan = prepared.plan
    # Live checks (read-only) only for a plan without static findings: those stop before any AWS call.
    live = [] if plan.findings else live_findings(plan, prepared.config, app.plugins.backends, prepared.ctx)
    if as_json:
        click.echo(json.dumps({**plan.to_json(), "live": [f.to_json() for f in live]}, indent=2))
    else:
        click.echo(plan.text())
        if live:
            click.echo("live checks:\n" + "\n".join(f.text() for f in live))
    if plan.findings:
        raise InputError(plan.findings)
    failed = [f for f in live if f.finding.blocking]
    if failed:
        raise DeployfwError(
            f"{len(failed)} live check(s) failed: the run would fail for "
            f"{', '.join(dict.fromkeys(f.module for f in failed))}"
        )
