"""The build tool's own project graph (Gradle or Maven), mapped onto modules.yaml's modules.

``graph: gradle`` or ``graph: maven`` in modules.yaml makes config loading call
:func:`module_graph`: the build's projects are mapped to modules by folder (the
module whose path is the longest whole-component prefix of the project's folder,
as for changed files), and every project-to-project reference between two
modules becomes a dependency edge with the build file line it came from. A
project that belongs to no module passes its references through (``a -> :platform
-> common`` makes ``a`` depend on ``common``). What the static reading cannot be
sure of comes back as notes, each with the module it concerns.

Builds are found the way Gradle and Maven find them, from the modules upwards:
the shallowest folder above (or at) a module, at or below the config root, that
holds ``settings.gradle(.kts)`` or ``pom.xml``. Parsers are imported only here,
on first use: a config without ``graph:`` never loads them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from deployfw.buildgraph.model import BuildGraph, Note, Project, Reference

TOOLS = ("gradle", "maven")
__all__ = [
    "TOOLS",
    "BuildGraph",
    "GraphNote",
    "ModuleGraph",
    "Note",
    "Project",
    "Reference",
    "build_roots",
    "module_graph",
    "read_build",
]


@dataclass(frozen=True)
class GraphNote:
    """A note of the reading, attached to the module it concerns (None: the whole build)."""

    module: str | None
    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"

    def to_json(self) -> dict:
        return {"module": self.module, "file": self.file, "line": self.line, "message": self.message}


@dataclass(frozen=True)
class ModuleGraph:
    """Module-to-module edges from the build files, with where each was declared."""

    tool: str
    edges: Mapping[str, Mapping[str, str]]  # module -> dependency module -> "file:line"
    notes: tuple[GraphNote, ...] = ()
    inputs: tuple[str, ...] = ()  # files read, relative to the config root
    builds: tuple[BuildGraph, ...] = field(default=(), compare=False)


class NoBuildFound(Exception):
    """No settings file / root POM above any module."""


def _marker(tool: str) -> tuple[str, ...]:
    return ("settings.gradle", "settings.gradle.kts") if tool == "gradle" else ("pom.xml",)


def build_roots(tool: str, config_root: Path, module_paths: Iterable[str]) -> list[str]:
    """The shallowest folder at or above each module (within the config root) that starts a build."""
    markers = _marker(tool)
    known: dict[str, bool] = {}

    def starts_build(folder: str) -> bool:
        if folder not in known:
            base = config_root / folder if folder else config_root
            known[folder] = any((base / m).is_file() for m in markers)
        return known[folder]

    roots: set[str] = set()
    for path in module_paths:
        parts = path.split("/") if path else []
        for depth in range(len(parts) + 1):
            folder = "/".join(parts[:depth])
            if folder in roots or starts_build(folder):
                roots.add(folder)
                break
    return sorted(roots)


def read_build(tool: str, config_root: Path, root: str) -> BuildGraph:
    """The project graph of the build rooted at ``root``."""
    if tool == "gradle":
        from deployfw.buildgraph.gradle import GradleReader

        return GradleReader(config_root).read(root)
    from deployfw.buildgraph.maven import MavenReader

    return MavenReader(config_root).read(root)


class _Owners:
    def __init__(self, modules: Mapping[str, str]) -> None:
        self.by_path = {path: name for name, path in modules.items()}

    def of(self, folder: str | None) -> str | None:
        probe = folder
        while probe:
            name = self.by_path.get(probe)
            if name is not None:
                return name
            probe = probe.rpartition("/")[0]
        return None


def module_graph(tool: str, config_root: Path, modules: Mapping[str, str]) -> ModuleGraph:
    """Read every build the modules live in and map its references onto modules."""
    roots = build_roots(tool, config_root, modules.values())
    if not roots:
        raise NoBuildFound(" or ".join(_marker(tool)))
    builds = [read_build(tool, config_root, root) for root in roots]
    owners = _Owners(modules)
    projects: dict[str, Project] = {}
    outgoing: dict[str, list[Reference]] = {}
    notes: list[GraphNote] = []
    inputs: list[str] = []
    for build in builds:
        projects.update(build.projects)
        for ref in build.references:
            outgoing.setdefault(ref.source, []).append(ref)
        for note in build.notes:
            folder = note.project if note.project is not None else note.file.rpartition("/")[0]
            notes.append(GraphNote(owners.of(folder), note.file, note.line, note.message))
        inputs.extend(build.inputs)
    edges: dict[str, dict[str, str]] = {}
    for source_dir, refs in sorted(outgoing.items()):
        source = owners.of(source_dir)
        if source is None:
            continue
        for ref in refs:
            for target in _owned_targets(ref.target, outgoing, owners, source):
                edges.setdefault(source, {}).setdefault(target, ref.where)
    covered = {owners.of(d) for d in projects}
    for name, path in sorted(modules.items()):
        if name not in covered:
            notes.append(
                GraphNote(name, path, None, f"no {tool} project in this module's folder: no build-graph dependencies")
            )
    return ModuleGraph(tool, edges, tuple(notes), tuple(dict.fromkeys(inputs)), tuple(builds))


def _owned_targets(start: str, outgoing: Mapping[str, list[Reference]], owners: _Owners, source: str) -> list[str]:
    """Modules reached from project ``start``: its owner, or through projects no module owns."""
    found: list[str] = []
    seen = {start}
    pending = [start]
    while pending:
        folder = pending.pop()
        owner = owners.of(folder)
        if owner is not None:
            if owner != source:
                found.append(owner)
            continue
        for ref in outgoing.get(folder, ()):
            if ref.target not in seen:
                seen.add(ref.target)
                pending.append(ref.target)
    return found
