"""The validated configuration as plain, frozen data: what every command reads.

Kept apart from :mod:`deployfw.config` (which parses and validates modules.yaml)
so that a config read back from the parsed-config cache needs neither PyYAML nor
the validator: ``deployfw detect`` on an unchanged modules.yaml imports only this.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from deployfw.buildgraph import GraphNote
from deployfw.errors import InputError, Problem

KeyPath = tuple[str | int, ...]  # as deployfw.yamlsrc spells it (not imported: it needs PyYAML)

CONFIG_NAME = "modules.yaml"
Kind = Literal["service", "library"]
# stage -> backend id -> JSON Schema of that backend's section
Catalog = Mapping[str, Mapping[str, Mapping[str, Any]]]


@dataclass(frozen=True)
class Section:
    """One stage of a service module: which backend runs it, and that backend's options."""

    backend: str
    options: Mapping[str, Any]

    def get(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)


@dataclass(frozen=True)
class Module:
    """A module after overlay and defaults merge - exactly what the backends will see."""

    name: str
    path: str
    kind: Kind
    depends_on: tuple[str, ...]
    build: Section | None
    registry: Section | None
    deploy: Section | None
    execution_mode: str | None
    files: tuple[str, ...]
    effective: Mapping[str, Any] = field(repr=False, compare=False)
    # ``depends_on`` above is the effective set: what the module declares plus, with
    # ``graph:``, what its build files say. Everything that follows dependencies (change
    # detection, content tags, the runner's order) reads that one field.
    declared: tuple[str, ...] = ()  # depends_on as written in modules.yaml
    graph_sources: Mapping[str, str] = field(default_factory=dict)  # dependency -> "build file:line"
    # "stage.option" -> the key that names a file option (taskdef, appspec, buildspec): the module's
    # own or ``defaults``', so a missing file is reported at the line that names it.
    origins: Mapping[str, KeyPath] = field(default_factory=dict, repr=False, compare=False)

    def origin(self, stage: str, option: str) -> KeyPath:
        """Where ``stage.option`` was written (:meth:`Config.locate` gives its line)."""
        return self.origins.get(f"{stage}.{option}", ("modules", self.name, stage, option))

    def dependency_source(self, dependency: str) -> str | None:
        """Where the build files declare ``dependency`` (``services/a/build.gradle:12``), if they do."""
        return self.graph_sources.get(dependency)

    @property
    def is_service(self) -> bool:
        return self.kind == "service"

    def section(self, stage: str) -> Section | None:
        return getattr(self, stage)


@dataclass(frozen=True)
class Config:
    """The whole validated configuration of one repository for one environment."""

    file: Path
    root: Path
    env: str | None
    version: int
    project: str | None
    region: str | None
    shared_paths: tuple[str, ...]
    execution_mode: str
    modules: Mapping[str, Module]
    environments: tuple[str, ...]
    order: tuple[str, ...]  # dependencies first
    state: Mapping[str, Any] | None = None  # the ``state:`` section: backend id and its options
    graph: str | None = None  # ``graph: gradle|maven``: dependencies also come from the build files
    graph_notes: tuple[GraphNote, ...] = ()  # what the build files' static reading cannot be sure of
    graph_inputs: tuple[str, ...] = ()  # build files read, relative to the root
    # Top-level sections plugins own (``notify:``), the environment's overlay merged in: name -> value.
    sections: Mapping[str, Any] = field(default_factory=dict)
    # Folders (relative to the root) whose contents decided where a module's file option points
    # (a module's own taskdef.json wins over the root's): the parsed-config cache watches them.
    resolution_folders: tuple[str, ...] = ()

    def dependencies(self, name: str) -> tuple[str, ...]:
        """The effective direct dependencies of module ``name`` (declared plus build graph)."""
        return self.modules[name].depends_on

    @property
    def relative_file(self) -> str:
        return self.file.relative_to(self.root).as_posix()

    def locate(self, key: KeyPath) -> int | None:
        """The line of ``key`` (or of its nearest ancestor) in modules.yaml, the overlay's keys winning.

        For problems found after loading (a backend's preflight): the file is parsed again for its
        lines, which only a config with a problem to report pays for.
        """
        try:
            stamp = os.stat(self.file)
        except OSError:
            return None
        lines = _lines(str(self.file), self.env, stamp.st_mtime_ns, stamp.st_size)
        probe = key
        while probe:
            if probe in lines:
                return lines[probe]
            probe = probe[:-1]
        return None

    def problem(self, key: KeyPath, message: str) -> Problem:
        """A problem located in this config: its file, the line of ``key`` and the key."""
        from deployfw.yamlsrc import dotted

        return Problem(self.relative_file, self.locate(key), dotted(key) or None, message)


@functools.lru_cache(maxsize=8)
def _lines(file: str, env: str | None, _mtime_ns: int, _size: int) -> dict[KeyPath, int]:
    from deployfw.yamlsrc import parse

    try:
        doc = parse(Path(file).read_text(encoding="utf-8"), file, strict=False)
    except (OSError, UnicodeDecodeError, InputError):
        return {}
    lines = dict(doc.lines)
    if env is not None:  # an overlay's key stands where the merged value came from
        prefix: KeyPath = ("environments", env)
        lines.update({key[2:]: line for key, line in doc.lines.items() if key[:2] == prefix and len(key) > 2})
    return lines


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Hold off the cyclic garbage collector while a large config is turned into objects.

    Parsing allocates a node, a value and a mark or two per key; every 700 allocations
    the collector runs and now and then walks every object in the process, which at
    thousands of modules took about a third of the load. The objects built here form
    no cycles worth collecting, and the collector runs as before once the load is done.
    Nested use (``deployfw detect`` pauses it for the whole command) is a no-op.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def find_config(start: Path | None = None) -> Path:
    """``modules.yaml`` in ``start`` or the nearest parent holding one."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    raise InputError(f"no {CONFIG_NAME} in {here} or any parent folder (use -c PATH)")
