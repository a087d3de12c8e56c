"""Collect a buildspec's ``artifacts`` the way CodeBuild's UPLOAD_ARTIFACTS does.

Patterns are matched against paths relative to ``base-directory`` (itself
allowed to be a glob, as in CodeBuild), ``**`` spans any number of
directories, ``discard-paths`` flattens the result. Matching is done here
rather than with :mod:`glob` because CodeBuild's ``**/*`` must match files
at the top level too and must never match directories.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from deployfw.buildspec.model import ArtifactsSpec


def glob_regex(pattern: str) -> re.Pattern[str]:
    """Translate a CodeBuild path glob to a regex over ``/``-separated relative paths."""
    pattern = pattern.removeprefix("./")
    out = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:[^/]+/)*")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = pattern[i + 1 : end].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out) + r"\Z")


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return glob_regex(pattern)


def _matches(path: str, patterns: Iterable[str]) -> bool:
    return any(_compiled(p).match(path) for p in patterns)


def _files_under(root: Path, follow_symlinks: bool) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=follow_symlinks):
        dirnames.sort()
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        for name in sorted(filenames):
            found.append(name if rel_dir == "." else f"{rel_dir}/{name}")
    return found


def _base_directories(workdir: Path, base: str | None) -> list[Path]:
    if not base:
        return [workdir]
    base = base.strip("/")
    if not any(c in base for c in "*?["):
        return [workdir / base]
    regex = _compiled(base)
    return sorted(p for p in workdir.rglob("*") if p.is_dir()
                  and regex.match(p.relative_to(workdir).as_posix()))


def match_artifacts(spec: ArtifactsSpec, workdir: Path) -> list[tuple[Path, str]]:
    """Return ``(source file, destination relative path)`` for every matched file."""
    matched: dict[str, Path] = {}
    for base in _base_directories(workdir, spec.base_directory):
        if not base.is_dir():
            continue
        for rel in _files_under(base, spec.enable_symlinks):
            if not _matches(rel, spec.files) or _matches(rel, spec.exclude_paths):
                continue
            dest = rel.rsplit("/", 1)[-1] if spec.discard_paths else rel
            matched[dest] = base / rel
    return [(source, dest) for dest, source in sorted(matched.items())]


def copy_artifacts(
    pairs: list[tuple[Path, str]], out_dir: Path, log: Callable[[str], None]
) -> list[Path]:
    """Copy matched files into ``out_dir``; returns the destination paths."""
    copied = []
    for source, dest in pairs:
        target = out_dir / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        copied.append(target)
    log(f"Collected {len(copied)} artifact file(s) into {out_dir}")
    return copied
