"""``deployfw report html``: the run page of a JSON report written by ``run --report``."""

from __future__ import annotations

from pathlib import Path

import click

from deployfw.report import read_json


@click.group("report")
def command() -> None:
    """Turn a run's JSON report into other forms."""


@command.command("html")
@click.argument("report_file", metavar="REPORT.json", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the page here instead of stdout."
)
def html(report_file: Path, output: Path | None) -> None:
    """Print one self-contained HTML page of the run (no network fetches; Jenkins' HTML Publisher shows it)."""
    from deployfw import report_html

    report = read_json(report_file)
    if output is not None:
        report_html.write(report, output)
    else:
        click.echo(report_html.render(report), nl=False)
