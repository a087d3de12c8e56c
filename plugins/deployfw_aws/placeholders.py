"""Fill the placeholders of a task definition or AppSpec template, line by line.

Two families are understood. CodePipeline's own ``<IMAGE1_NAME>`` (the image URI,
in the task definition) and ``<TASK_DEFINITION>`` (the registered task definition,
in the AppSpec) keep templates written for CodePipeline's ECS blue/green action
working unchanged. deployfw's ``${NAME}`` placeholders cover everything else
(:data:`NAMES`). ``$${`` writes a literal ``${`` - a health-check command may need
a shell variable.

Substitution is textual and never crosses a line, so every line number in the
filled text is the template's own: a JSON or YAML error found after filling still
points at the right line of the file the user edits. An unknown placeholder is a
mistake (a typo would otherwise be deployed verbatim), reported with its line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from deployfw.errors import Problem

NAMES = (
    "IMAGE",
    "ACCOUNT_ID",
    "REGION",
    "ENV",
    "MODULE",
    "SERVICE",
    "CLUSTER",
    "CONTAINER",
    "CONTAINER_PORT",
    "FAMILY",
)
IMAGE_PLACEHOLDER = "<IMAGE1_NAME>"
TASK_DEFINITION_PLACEHOLDER = "<TASK_DEFINITION>"

_TOKEN = re.compile(r"\$\$\{|\$\{([^}\n]*)\}|<(IMAGE\d+_NAME|TASK_DEFINITION)>")


@dataclass(frozen=True)
class Filled:
    """A filled template and what went wrong while filling it."""

    text: str
    problems: tuple[Problem, ...]


def used(text: str) -> set[str]:
    """The ``${NAME}`` placeholders a template mentions (to skip work nobody needs)."""
    return {m.group(1).strip() for m in _TOKEN.finditer(text) if m.group(1) is not None}


def fill(
    text: str,
    file: str,
    values: Mapping[str, str | None],
    *,
    keep: frozenset[str] = frozenset(),
    json_strings: bool = False,
    missing: Callable[[str], str] | None = None,
) -> Filled:
    """Replace placeholders in ``text``.

    ``values`` maps placeholder names (``IMAGE``, ``IMAGE1_NAME``...) to their value;
    a value of ``None`` means "known but not available here" and ``missing`` says why.
    CodePipeline placeholders named in ``keep`` stay in the text (``<TASK_DEFINITION>``
    is filled only once the task definition is registered). ``json_strings`` escapes
    values for a JSON string literal, so a quote in a value cannot break the document.
    """
    problems: list[Problem] = []
    out_lines: list[str] = []
    for number, line in enumerate(text.splitlines(keepends=True), start=1):

        def substitute(match: re.Match[str], number: int = number) -> str:
            token = match.group(0)
            if token == "$${":
                return "${"
            name = match.group(1)
            if name is not None:
                name = name.strip()
                if name not in NAMES:
                    problems.append(
                        Problem(file, number, None, f"unknown placeholder ${{{name}}}; known: {_known()}")
                    )
                    return token
            else:
                name = match.group(2)
                if token in keep:
                    return token
                if name not in values:
                    problems.append(Problem(file, number, None, _cp_message(token)))
                    return token
            value = values.get(name)
            if value is None:
                why = missing(name) if missing else "has no value here"
                problems.append(Problem(file, number, None, f"placeholder {token} {why}"))
                return token
            return json.dumps(value)[1:-1] if json_strings else value

        out_lines.append(_TOKEN.sub(substitute, line))
    return Filled("".join(out_lines), tuple(problems))


def _known() -> str:
    return ", ".join(f"${{{n}}}" for n in NAMES) + f", {IMAGE_PLACEHOLDER} (task definition), " + (
        f"{TASK_DEFINITION_PLACEHOLDER} (appspec)"
    )


def _cp_message(token: str) -> str:
    if token == TASK_DEFINITION_PLACEHOLDER:
        return f"{token} belongs in the appspec (TaskDefinition), not here"
    if token == IMAGE_PLACEHOLDER:
        return f"{token} belongs in the task definition, not here"
    return f"{token}: deployfw deploys one image per module; use {IMAGE_PLACEHOLDER} or ${{IMAGE}}"
