"""``deployfw run``: build, push and deploy every affected service module."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click

from deployfw import live as live_view
from deployfw.cli.app import App
from deployfw.cli.options import global_options, selection
from deployfw.errors import EXIT_FAILED, InputError
from deployfw.events import EventLog
from deployfw.pipeline import prepare
from deployfw.plan import STOP_AFTER
from deployfw.runner import Runner, RunOptions, install_signal_handlers


@click.command("run")
@selection
@click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")
@click.option(
    "--max-parallel",
    type=click.IntRange(1, 64),
    default=16,
    show_default=True,
    help="Modules in flight at once (local builds are further limited to the CPU count).",
)
@click.option("--stop-after", type=click.Choice(STOP_AFTER), default="deploy", show_default=True)
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the JSON report.")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, path_type=Path), help="Write JUnit XML.")
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the run page: one self-contained HTML file (timeline, failures with log tails, links).",
)
@click.option(
    "--artifacts-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="With --stop-after push: write CodePipeline artifacts per module here.",
)
@click.option(
    "--mode",
    type=click.Choice(["queue", "supersede", "fail"]),
    help="When another run holds a module's lock: wait, take over, or exit 3 (default: modules.yaml, else queue).",
)
@click.option(
    "--lock-timeout",
    type=click.FloatRange(0),
    default=3600,
    show_default=True,
    help="Seconds to wait for a lock in queue mode.",
)
@click.option(
    "--unpin",
    is_flag=True,
    help="With -m: deploy head over a rollback pin of the named modules; the pin is released when that succeeds.",
)
@click.option(
    "-v", "--verbose", is_flag=True, help="On a terminal, print every log line above the live table (CI always does)."
)
@global_options
@click.pass_obj
def command(
    app: App,
    base: str | None,
    head: str | None,
    select_all: bool,
    modules: tuple[str, ...],
    dry_run: bool,
    max_parallel: int,
    stop_after: str,
    report_path: Path | None,
    junit_path: Path | None,
    html_path: Path | None,
    artifacts_dir: Path | None,
    mode: str | None,
    lock_timeout: float,
    unpin: bool,
    verbose: bool,
) -> None:
    """Build, push and deploy every affected service module, in dependency order.

    A module pinned by `deployfw rollback` is skipped, with the reason, until its own inputs
    change (then head is deployed and the pin released) or `deployfw unpin` releases it.
    """
    if artifacts_dir is not None and stop_after == "build":
        raise InputError("--artifacts-dir needs --stop-after push or deploy: artifacts name the pushed image")
    if unpin and not modules:
        raise InputError("--unpin needs -m MODULE: name the pinned modules to deploy head to")
    prepared = prepare(
        app,
        base=base,
        head=head,
        select_all=select_all,
        modules=modules,
        stop_after=stop_after,
        state="read" if dry_run else "write",
        unpin=unpin,
    )
    plan = prepared.plan
    if plan.findings:
        raise InputError(plan.findings)
    if dry_run:
        click.echo(plan.text())
        return
    config = prepared.config
    events = EventLog()
    # Before the locks: a SIGTERM from here on cancels cleanly and releases them (the default action
    # would end the process holding them until their leases expire).
    install_signal_handlers(prepared.ctx.cancel, events)
    # What must be fixed (a state store CI agents lose) is the first line of the log, also when the
    # locks make the run wait; the plan follows once the locks are taken.
    for warning in plan.warnings:
        events.emit("deployfw", "state", warning)
    if prepared.state is not None:
        modes = {m.name: mode or config.modules[m.name].execution_mode or config.execution_mode for m in plan.modules}
        prepared.state.acquire_all(modes, wait_seconds=lock_timeout)  # LockHeldError: exit 3, nothing done
    live = None
    if live_view.wanted(sys.stderr, prepared.ci):
        stages = {m.name: [s.stage for s in m.stages] for m in plan.modules}
        live = live_view.LiveView(stages, verbose=verbose).attach(events)
    events.emit("deployfw", "plan", plan.text(warnings=False))
    runner = Runner(
        plan,
        app.plugins.backends,
        prepared.ctx,
        app.plugins.hook,
        events,
        RunOptions(max_parallel=max_parallel, artifacts_dir=artifacts_dir),
        prepared.state,
    )
    with live or contextlib.nullcontext():
        report = runner.run()
    if report_path:
        report.write_json(report_path)
    if junit_path:
        report.write_junit(junit_path)
    if html_path:
        from deployfw import report_html

        report_html.write(report.masked_json(), html_path)
    click.echo(report.summary())
    if report.failed:
        sys.exit(EXIT_FAILED)
