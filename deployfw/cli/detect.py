"""``deployfw detect``: which modules the change affects, and why.

The cyclic garbage collector is paused for the command (see
:func:`deployfw.config.gc_paused`): importing gitpython and building thousands of
modules otherwise trigger collections that walk every object for nothing.

Config, then git, in sequence: running git on a background thread while the config
loads was measured slower (gitpython's import and the parse both need the GIL, and
the switching cost more than the overlapped git processes saved).
"""

from __future__ import annotations

import json
import os

import click

from deployfw.ci import detect_ci
from deployfw.cli.app import App
from deployfw.cli.options import global_options, json_flag, selection
from deployfw.configmodel import gc_paused
from deployfw.detect import detect
from deployfw.gitrepo import GitRepo
from deployfw.revisions import resolve_range


@click.command("detect")
@selection
@json_flag
@global_options
@click.pass_obj
def command(
    app: App, base: str | None, head: str | None, select_all: bool, modules: tuple[str, ...], as_json: bool
) -> None:
    """List the modules affected by the change base..head (one name per line)."""
    with gc_paused():
        config = app.load_config(hooks=False)
        repo = GitRepo(config.root)
        rng = resolve_range(repo, detect_ci(os.environ), base, head)
        detection = detect(config, repo, rng, select_all=select_all, names=modules)
    if as_json:
        click.echo(json.dumps(detection.to_json(), indent=2))
        return
    for name in detection.names():
        click.echo(name)
    if detection.unowned:
        noun = "path" if detection.unowned == 1 else "paths"
        click.echo(f"{detection.unowned} changed {noun} owned by no module (listed by --json)", err=True)
    if detection.notes:
        click.echo(
            f"{len(detection.notes)} build-graph notes: dependencies the build files compute (see --json)", err=True
        )
