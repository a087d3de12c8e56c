"""Options shared by detect, plan and run: which commits, which modules, JSON or text."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click


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


def json_flag(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(func)
