"""Locate a backend option in modules.yaml: file, line and key for a preflight problem.

Config loading checks each option's type against the backend's schema and names the line;
rules that involve several options or AWS's ranges are checked later, by the backend's
preflight, which only has the merged section. This finds where the value came from - the
environment overlay's module or defaults, else the module's own section, else ``defaults`` -
so those problems name a line too.
"""

from __future__ import annotations

import functools
from pathlib import Path

from deployfw.config import Config
from deployfw.errors import InputError, Problem
from deployfw.yamlsrc import Document, KeyPath, dotted, parse


@functools.lru_cache(maxsize=8)
def _document(path: str, mtime_ns: int) -> Document | None:
    try:
        return parse(Path(path).read_text(encoding="utf-8"), path, strict=False)
    except (OSError, UnicodeDecodeError, InputError):
        return None


def option_problem(config: Config, module: str, stage: str, option: str, message: str) -> Problem:
    """A problem at ``modules.MODULE.STAGE.OPTION`` as the user wrote it (overlay, module or defaults)."""
    candidates: list[KeyPath] = []
    if config.env:
        candidates += [
            ("environments", config.env, "modules", module, stage, option),
            ("environments", config.env, "defaults", stage, option),
        ]
    candidates += [("modules", module, stage, option), ("defaults", stage, option)]
    try:
        doc = _document(str(config.file), config.file.stat().st_mtime_ns)
    except OSError:
        doc = None
    if doc is not None:
        for key in candidates:
            line = doc.lines.get(key)
            if line is not None:
                return Problem(config.relative_file, line, dotted(key), message)
    return Problem(config.relative_file, None, f"modules.{module}.{stage}.{option}", message)
