"""Options shared by detect, plan and run: which commits, which modules, JSON or text."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from deployfw.cli.app import App

# deployfw.drift.DRIFT_MODES, spelled out: detect shares this module and must not import the drift check.
DRIFT_MODES = ("deploy", "report")


def selection(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--base/--head/--all/-m``: the same selection for every command that picks modules."""
    decorators = [
        click.option("--base", metavar="REV", help="Compare from this commit (default: CI variables)."),
        click.option("--head", metavar="REV", help="Compare up to this commit (default: HEAD)."),
        click.option("--all", "select_all", is_flag=True, help="Select every module, changed or not."),
        click.option(
            "-m",
            "--module",
            "modules",
            multiple=True,
            metavar="NAME",
            help="Select exactly this module, changed or not (repeatable).",
        ),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def build_choices(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--rebuild/--allow-dirty/--drift``: how run (and plan, which shows what run would do) builds and judges."""
    decorators = [
        click.option(
            "--rebuild",
            is_flag=True,
            help="Build every selected module even when an image with its content tag exists (with -m: those).",
        ),
        click.option(
            "--allow-dirty",
            is_flag=True,
            help="Build modules with uncommitted changes from the working tree, under a run-only dirty-* tag "
            "(never reused); default: every build uses a clean checkout of the head commit.",
        ),
        click.option(
            "--drift",
            type=click.Choice(DRIFT_MODES),
            default="deploy",
            show_default=True,
            help="A module whose live task definition is not its recorded deploy: deploy it again, or only report it.",
        ),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def json_flag(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(func)


def global_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Also accept ``-e/--env``, ``--sandbox`` and ``--sandbox-reset`` after the subcommand (``run --sandbox``)."""

    def set_env(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
        if value is not None:
            ctx.ensure_object(App).env = value

    def set_sandbox(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        if value:
            ctx.ensure_object(App).sandbox = True

    def set_reset(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        if value:
            ctx.ensure_object(App).sandbox_reset = True

    func = click.option(
        "-e", "--env", callback=set_env, expose_value=False, help="Environment overlay (same as before the command)."
    )(func)
    func = click.option(
        "--sandbox-reset",
        is_flag=True,
        callback=set_reset,
        expose_value=False,
        help="--sandbox, on a new background sandbox: stop this checkout's and forget its deploy state first.",
    )(func)
    return click.option(
        "--sandbox",
        is_flag=True,
        callback=set_sandbox,
        expose_value=False,
        help="Run against this checkout's background AWS + Jenkins sandbox, started if none serves "
        "(same as before the command).",
    )(func)
