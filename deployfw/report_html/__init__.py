"""The run page: one self-contained HTML file from a JSON run report.

``deployfw run --html FILE`` and ``deployfw report html REPORT.json`` both end here.
The page must open wherever a CI system puts it - a local ``file://``, Jenkins'
HTML Publisher, a CodeBuild artifact - so it fetches nothing: the stylesheet is
inlined, the drawing is inline SVG, and there is no script at all. Jenkins serves
published files with a Content-Security-Policy that blocks inline styles and
scripts; the page is written to be complete without them (see
:mod:`deployfw.report_html.timeline` for how the lanes keep their colours).

Every string is masked (:func:`deployfw.report.masked`) before it is laid out,
and the template escapes everything it prints.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from deployfw import __version__
from deployfw.report import masked
from deployfw.report_html import timeline, view


def render(report: Mapping[str, Any]) -> str:
    """The HTML page of ``report`` (the JSON report's shape, as ``RunReport.to_json`` writes it)."""
    import jinja2  # only the commands that write a page pay for it

    files = resources.files("deployfw.report_html")
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = environment.from_string(files.joinpath("page.html.j2").read_text(encoding="utf-8"))
    css = files.joinpath("style.css").read_text(encoding="utf-8")
    return template.render(
        page=view.page(masked(dict(report))),
        css=jinja2.utils.markupsafe.Markup(css),
        colours=timeline.COLOURS,
        grid=timeline.grid(),
        symbols=view.STAGE_SYMBOLS,
        version=__version__,
    )


def write(report: Mapping[str, Any], path: Path) -> None:
    """Write the page of ``report`` to ``path`` (parents created), UTF-8."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(report), encoding="utf-8")
