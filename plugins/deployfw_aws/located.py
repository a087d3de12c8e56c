"""Parse a JSON or YAML template and remember the line of every key.

Every template problem must name file, line and key. JSON is (practically) YAML,
so after :mod:`json` has accepted a document - and produced the precise syntax
error when it does not - the same text goes through deployfw's line-tracking YAML
loader to learn where each key is. Should that loader disagree with some exotic
JSON, lines fall back to a scan for the key's quoted name: a good-enough line is
better than none, and the data always comes from :mod:`json`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from deployfw.errors import InputError, Problem
from deployfw.yamlsrc import Document, KeyPath, dotted, parse


def load_json(text: str, file: str) -> Document:
    """A JSON document with key lines; syntax errors become one located problem."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(Problem(file, exc.lineno, None, f"invalid JSON: {exc.msg} (column {exc.colno})")) from None
    try:
        lines = parse(text, file).lines
    except InputError as exc:
        if any("duplicate key" in p.message for p in exc.problems):
            raise
        lines = {}
    doc = Document(file, data, dict(lines))
    if not lines:
        doc.lines.update(_scan_lines(text, data))
    return doc


def load_yaml(text: str, file: str) -> Document:
    """A YAML (or JSON) document with key lines."""
    return parse(text, file)


def _scan_lines(text: str, data: Any) -> dict[KeyPath, int]:
    """Fallback: the first line at or after the parent's line that quotes the key."""
    source = text.splitlines()
    found: dict[KeyPath, int] = {}

    def walk(value: Any, path: KeyPath, start: int) -> None:
        if isinstance(value, dict):
            for key, child in value.items():
                pattern = re.compile(r'"' + re.escape(json.dumps(key)[1:-1]) + r'"\s*:')
                line = next((n + 1 for n in range(start - 1, len(source)) if pattern.search(source[n])), start)
                found[(*path, key)] = line
                walk(child, (*path, key), line)
        elif isinstance(value, list):
            for index, child in enumerate(value):
                found[(*path, index)] = start
                walk(child, (*path, index), start)

    walk(data, (), 1)
    return found


def problem(doc: Document, path: KeyPath, message: str) -> Problem:
    """A problem at ``path`` of ``doc`` (the nearest ancestor's line when the key is absent)."""
    return Problem(doc.file, doc.line(path), dotted(path) or None, message)
