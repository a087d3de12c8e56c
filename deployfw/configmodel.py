"""The validated configuration as plain, frozen data: what every command reads.

Kept apart from :mod:`deployfw.config` (which parses and validates modules.yaml)
so that a config read back from the parsed-config cache needs neither PyYAML nor
the validator: ``deployfw detect`` on an unchanged modules.yaml imports only this.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from deployfw.buildgraph import GraphNote
from deployfw.errors import InputError

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

    def dependencies(self, name: str) -> tuple[str, ...]:
        """The effective direct dependencies of module ``name`` (declared plus build graph)."""
        return self.modules[name].depends_on

    @property
    def relative_file(self) -> str:
        return self.file.relative_to(self.root).as_posix()


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
