"""modules.yaml: load, overlay, merge defaults, validate, and expose a typed model.

Order of operations follows DESIGN.md: the ``--env`` overlay is deep-merged over
the whole document first, then ``defaults`` are merged under every service
module (the module's own values win). Validation collects every problem before
raising, each with file, line and key path, so one run shows the user all of
them. Nothing here imports a backend: backends are checked through the
``catalog`` of section schemas the plugin manager hands in.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import posixpath
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deployfw import graph
from deployfw.backends import SECTIONS
from deployfw.buildgraph import GraphNote
from deployfw.configmodel import CONFIG_NAME, Catalog, Config, Kind, Module, Section, find_config, gc_paused
from deployfw.errors import InputError, Problem
from deployfw.schema import modules_checker, modules_schema, validate
from deployfw.yamlsrc import Document, KeyPath, dotted, parse

__all__ = [
    "CONFIG_NAME",
    "FILE_KEYS",
    "STAGES",
    "Catalog",
    "Config",
    "Kind",
    "Module",
    "Section",
    "deep_merge",
    "find_config",
    "gc_paused",
    "load_config",
]

STAGES = ("build", "registry", "deploy")
# Keys whose values name repository files; a change to such a file affects the module.
FILE_KEYS = ("taskdef", "appspec", "buildspec")

_BACKEND_SUFFIX = re.compile(r" \((?:build|registry|deploy|state) backend '[^']*'\)$")


def _gist(message: str) -> str:
    """A problem's message without the per-backend detail (the valid keys, the backend named)."""
    return _BACKEND_SUFFIX.sub("", message).split(";", 1)[0]


# stage -> backend id -> JSON Schema of that backend's section


def load_config(
    path: Path,
    *,
    env: str | None = None,
    catalog: Catalog | None = None,
    root: Path | None = None,
    text: str | None = None,
    check_paths: bool = True,
    env_optional: bool = False,
    read_graph: bool = True,
) -> Config:
    """Load and validate ``path``; ``text`` overrides the file content (a config read from git).

    ``catalog`` enables backend checks (unknown ids, each backend's own keys); ``detect``
    skips it to stay fast, ``plan`` and ``run`` always pass it. ``env_optional`` reads
    an older config that predates the environment as if no overlay was asked for.
    """
    path = Path(path)
    root = (root or path.parent).resolve()
    display = _display_name(path, root)
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError(Problem(display, None, None, "file not found")) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(Problem(display, None, None, f"cannot read: {exc}")) from None
    with gc_paused():
        doc = parse(text, display, strict=False)
        return _Loader(doc, path, root, env, catalog, check_paths, env_optional, read_graph).load()


def _display_name(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return str(path)


def deep_merge(base: Any, over: Any) -> Any:
    """Mappings merge key by key, anything else in ``over`` replaces ``base``.

    Whatever comes from ``over`` is copied (see :func:`_copy`), so a merged result never
    shares a mutable container with ``over``; like before, values kept from ``base``
    are shared with it.
    """
    if isinstance(base, dict) and isinstance(over, dict):
        merged = dict(base)
        for key, value in over.items():
            merged[key] = deep_merge(base[key], value) if key in base else _copy(value)
        return merged
    return _copy(over)


def _copy(value: Any) -> Any:
    """Deep copy of a parsed YAML value: only dicts and lists are mutable there.

    ``copy.deepcopy`` walks its memo and reduce protocol for every scalar, which made
    merging defaults into thousands of modules cost more than parsing them.
    """
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


def _prune(data: Any, key: KeyPath) -> None:
    """Remove the value at ``key`` unless it is a mapping (whose own keys are checked separately).

    A list item takes its whole list with it: half a ``depends_on`` would only produce
    consequential errors.
    """
    if not key:
        return
    if isinstance(key[-1], int):
        key = key[:-1]
        while key and isinstance(key[-1], int):
            key = key[:-1]
    parent = data
    for part in key[:-1]:
        parent = parent.get(part) if isinstance(parent, dict) else None
        if parent is None:
            return
    if isinstance(parent, dict) and key and key[-1] in parent and not isinstance(parent[key[-1]], dict):
        del parent[key[-1]]


class _Loader:
    """One load of one document: accumulates problems and builds the model."""

    def __init__(
        self,
        doc: Document,
        path: Path,
        root: Path,
        env: str | None,
        catalog: Catalog | None,
        check_paths: bool,
        env_optional: bool = False,
        read_graph: bool = True,
    ) -> None:
        self.doc = doc
        self.path = path
        self.root = root
        self.env = env
        self.catalog = catalog
        self.check_paths = check_paths
        self.env_optional = env_optional
        self.read_graph = read_graph
        self.problems: list[Problem] = []
        self._lines: dict[KeyPath, int] | None = None  # built when the first problem needs a line
        self._overlay: KeyPath | None = None  # key prefix of the applied environment overlay
        self._raw_modules: Mapping[str, dict] = {}
        self._real_dirs: dict[str, str | None] = {}
        self._sections: dict[KeyPath, Any] = {}  # plugin-owned sections, taken out of the document by place

    def fail(self, key: KeyPath, message: str) -> None:
        """Record a problem once per place: a bad key in ``defaults`` is one mistake, however
        many modules inherit it."""
        problem = self._at(key, message)
        gist = _gist(problem.message)
        if not any((p.line, p.key, _gist(p.message)) == (problem.line, problem.key, gist) for p in self.problems):
            self.problems.append(problem)

    @property
    def lines(self) -> dict[KeyPath, int]:
        """Line of every key as the document reads after the overlay applied so far.

        Built on first use: asking the document for lines re-parses it with the line-tracking
        walker, which only a config with a problem to report should pay for.
        """
        if self._lines is None:
            lines = dict(self.doc.lines)
            if self._overlay is not None:
                prefix = self._overlay
                for key, line in self.doc.lines.items():
                    if key[: len(prefix)] == prefix and len(key) > len(prefix):
                        lines[key[len(prefix) :]] = line
            self._lines = lines
        return self._lines

    def _at(self, key: KeyPath, message: str) -> Problem:
        probe = key
        line = None
        while line is None and probe:
            line = self.lines.get(probe)
            probe = probe[:-1]
        return Problem(self.doc.file, line, dotted(key) or None, message)

    def raise_if_problems(self) -> None:
        if self.problems:
            raise InputError(self.problems)

    def load(self) -> Config:
        data = self.doc.data
        if not isinstance(data, dict):
            raise InputError(Problem(self.doc.file, 1, None, "must be a mapping with version and modules"))
        self._take_sections(data)
        # The boolean checker is exact and several times cheaper; the generic validator
        # runs only to describe what is wrong.
        ok = modules_checker()(data)
        full = modules_schema({SECTIONS: self.catalog.get(SECTIONS, {})} if self.catalog else None)
        shape = [] if ok else [self._at(key, message) for key, message in validate(data, full)]
        self.problems.extend(self.doc.problems)  # duplicate keys: listed with whatever else is found
        if shape:
            # Report every mistake at once: drop the badly typed values and still run the
            # semantic checks (dependencies, paths, backends) on what remains.
            self.problems.extend(shape)
            for key, _ in list(validate(data, full)):
                _prune(data, key)
            # What remains may still be too broken to check further; then report what we have.
            with contextlib.suppress(TypeError, AttributeError, KeyError, ValueError):
                self._semantic(data)
            self.raise_if_problems()
        return self._semantic(data)

    def _semantic(self, data: dict) -> Config:

        environments = tuple(sorted(data.get("environments") or {}))
        if self.env is not None and self.env_optional and self.env not in environments:
            self.env = None
        if self.env is not None:
            if self.env not in environments:
                known = ", ".join(environments) or "none defined"
                self.fail(("environments",), f"unknown environment {self.env!r}; known: {known}")
                self.raise_if_problems()
            data = self._apply_overlay(data)

        modules = self._modules(data)
        state = self._state(data.get("state"))
        tool = data.get("graph")
        notes: tuple[GraphNote, ...] = ()
        inputs: tuple[str, ...] = ()
        if tool and self.read_graph and not self.problems:
            modules, notes, inputs = self._build_graph(tool, modules)
        sections = self._merged_sections()
        self.raise_if_problems()
        order = tuple(graph.topological_order({m.name: m.depends_on for m in modules.values()}))
        return Config(
            file=self.path.resolve(),
            root=self.root,
            env=self.env,
            version=data["version"],
            project=data.get("project"),
            region=data.get("region"),
            shared_paths=tuple(data.get("shared_paths") or ()),
            execution_mode=data.get("execution_mode", "queue"),
            modules=modules,
            environments=environments,
            order=order,
            state=state,
            graph=tool,
            graph_notes=notes,
            graph_inputs=inputs,
            sections=sections,
        )

    def _build_graph(
        self, tool: str, modules: dict[str, Module]
    ) -> tuple[dict[str, Module], tuple[GraphNote, ...], tuple[str, ...]]:
        """Add the build files' project dependencies to each module's ``depends_on``."""
        from deployfw.buildgraph import NoBuildFound, module_graph

        try:
            found = module_graph(tool, self.root, {m.name: m.path for m in modules.values()})
        except NoBuildFound as exc:
            self.fail(("graph",), f"graph: {tool}, but no {exc} in the config's folder or above any module")
            return modules, (), ()
        except InputError as exc:
            self.problems.extend(exc.problems)
            return modules, (), ()
        merged: dict[str, Module] = {}
        for name, module in modules.items():
            sources = {d: w for d, w in found.edges.get(name, {}).items() if d in modules and d != name}
            effective = tuple(dict.fromkeys([*module.depends_on, *sorted(sources)]))
            merged[name] = dataclasses.replace(module, depends_on=effective, graph_sources=sources)
        cycle = graph.find_cycle({m.name: m.depends_on for m in merged.values()})
        if cycle:
            steps = " -> ".join(
                f"{a} ({merged[a].graph_sources[b]})" if b in merged[a].graph_sources else a
                for a, b in itertools.pairwise(cycle)
            )
            self.fail(("graph",), f"dependency cycle through the {tool} build: {steps} -> {cycle[-1]}")
        return merged, found.notes, found.inputs

    def _take_sections(self, data: dict) -> None:
        """Move the top-level sections plugins own out of the document, checking each against its schema.

        With plugins known (plan, run) a section is owned when a plugin registered its
        name. Without them (a config read back from an older commit) any top-level mapping no
        core key names may be one: it is left for the commands that load plugins to
        check, while a scalar there is still reported as the unknown key it must be.
        """
        owned = self.catalog.get(SECTIONS, {}) if self.catalog is not None else None
        core = modules_schema()["properties"]

        def taken(key: Any, value: Any) -> bool:
            if owned is not None:
                return key in owned
            return isinstance(key, str) and key not in core and isinstance(value, dict)

        places: list[tuple[KeyPath, dict]] = [((), data)]
        overlays = data.get("environments")
        if isinstance(overlays, dict):
            places += [(("environments", env), o) for env, o in overlays.items() if isinstance(o, dict)]
        for prefix, mapping in places:
            for key in [k for k, v in mapping.items() if taken(k, v)]:
                value = self._sections[(*prefix, key)] = mapping.pop(key)
                if owned is not None:
                    for where, message in validate(value, owned[key]):
                        self.fail((*prefix, key, *where), message)

    def _merged_sections(self) -> dict[str, Any]:
        """Each plugin section as the selected environment sees it: its overlay deep-merged over the top level."""
        merged = {str(key[0]): value for key, value in self._sections.items() if len(key) == 1}
        if self.env is not None:
            for key, value in self._sections.items():
                name = str(key[-1])
                if key[:2] == ("environments", self.env):
                    merged[name] = deep_merge(merged[name], value) if name in merged else value
        return merged

    def _state(self, section: dict | None) -> dict | None:
        """Check the ``state:`` section against the state-store backends, like a stage section."""
        if not section or self.catalog is None:
            return section
        choices = self.catalog.get("state", {})
        backend = section.get("backend", "sqlite")
        if backend not in choices:
            valid = ", ".join(sorted(choices)) or "none installed"
            self.fail(("state", "backend"), f"unknown state backend {backend!r}; valid: {valid}")
            return None
        options = {k: v for k, v in section.items() if k != "backend"}
        for key, message in validate(options, {"type": "object", **choices[backend]}):
            self.fail(("state", *key), f"{message} (state backend {backend!r})")
        return section

    def _apply_overlay(self, data: dict) -> dict:
        overlay = data["environments"][self.env] or {}
        self._overlay = ("environments", self.env or "")
        self._lines = None  # lines from now on: the overlay's keys win
        merged = deep_merge({k: v for k, v in data.items() if k != "environments"}, overlay)
        merged["environments"] = data["environments"]
        return merged

    def _modules(self, data: dict) -> dict[str, Module]:
        raw_modules: dict[str, dict] = {k: v or {} for k, v in (data.get("modules") or {}).items()}
        self._raw_modules = raw_modules
        defaults = data.get("defaults") or {}
        modules: dict[str, Module] = {}
        for name, raw in raw_modules.items():
            module = self._module(name, raw, defaults)
            if module is not None:
                modules[name] = module
        self._check_dependencies(raw_modules)
        self._check_paths(modules)
        return modules

    def _module(self, name: str, raw: dict, defaults: dict) -> Module | None:
        key = ("modules", name)
        kind: Kind = raw.get("kind", "service")
        path = self._normal_path(raw.get("path"), (*key, "path"))
        sections: dict[str, Section | None] = dict.fromkeys(STAGES)
        effective = dict(raw)
        if kind == "library":
            for stage in STAGES:
                if stage in raw:
                    self.fail((*key, stage), "a library is never built or deployed; remove this section")
        else:
            for stage in STAGES:
                own = raw.get(stage) or {}
                merged = deep_merge(defaults.get(stage) or {}, own)
                effective[stage] = merged
                sections[stage] = self._section(name, stage, merged, own)
        found: set[str] = set()
        for stage in STAGES:
            section = effective.get(stage)
            if not isinstance(section, dict) or section.keys().isdisjoint(FILE_KEYS):
                continue  # the common case: no file named, nothing to normalise
            for file_key in FILE_KEYS:
                value = section.get(file_key)
                if isinstance(value, str) and (normal := self._normal_path(value, self._origin(name, stage, file_key))):
                    found.add(normal)
        files = tuple(sorted(found))
        if path is None:
            return None
        return Module(
            name=name,
            path=path,
            kind=kind,
            depends_on=tuple(raw.get("depends_on") or ()),
            declared=tuple(raw.get("depends_on") or ()),
            build=sections["build"],
            registry=sections["registry"],
            deploy=sections["deploy"],
            execution_mode=raw.get("execution_mode"),
            files=files,
            effective=effective,
        )

    def _origin(self, name: str, stage: str, option: str) -> KeyPath:
        """Where a merged option came from: the module's own section, else defaults.

        Asked of the (overlaid) data rather than of the line map, which holds exactly the
        keys present there but is only built when a problem needs a line.
        """
        section = self._raw_modules.get(name, {}).get(stage)
        own = isinstance(section, dict) and option in section
        return ("modules", name, stage, option) if own else ("defaults", stage, option)

    def _section(self, name: str, stage: str, merged: dict, own: dict) -> Section | None:
        backend = merged.get("backend")
        if self.catalog is None:
            return Section(backend, {k: v for k, v in merged.items() if k != "backend"}) if backend else None
        choices = self.catalog.get(stage, {})
        if not backend:
            self.fail(("modules", name, stage), f"no {stage} backend; set `backend` here or in defaults.{stage}")
            return None
        if backend not in choices:
            valid = ", ".join(sorted(choices)) or "none installed"
            self.fail(self._origin(name, stage, "backend"), f"unknown {stage} backend {backend!r}; valid: {valid}")
            return None
        accepted = choices[backend].get("properties", {})
        known_to_stage = {key for schema in choices.values() for key in schema.get("properties", {})}
        # Defaults are shared by modules on different backends: each backend takes the
        # default keys it understands. A key no backend of the stage knows is still a typo.
        options = {
            k: v for k, v in merged.items() if k != "backend" and (k in own or k in accepted or k not in known_to_stage)
        }
        # A backend that does not say otherwise accepts only the keys it declares (DESIGN.md:
        # "each backend validates its own section and reports unknown keys").
        section_schema = {"type": "object", "additionalProperties": False, **choices[backend]}
        for key, message in validate(options, section_schema):
            origin = self._origin(name, stage, str(key[0])) if key else ("modules", name, stage)
            self.fail((*origin, *key[1:]), f"{message} ({stage} backend {backend!r})")
        return Section(backend, options)

    def _normal_path(self, value: Any, key: KeyPath) -> str | None:
        """Repository-relative POSIX path; refuse absolute paths and escapes from the repository."""
        if not isinstance(value, str) or not value.strip():
            return None
        if value.startswith("/") or "\\" in value:  # what PurePosixPath.is_absolute() tests
            self.fail(key, f"{value!r} must be a path relative to the repository root")
            return None
        normal = posixpath.normpath(value)
        if normal == ".." or normal.startswith("../"):
            self.fail(key, f"{value!r} escapes the repository")
            return None
        return "" if normal == "." else normal

    def _check_dependencies(self, raw_modules: Mapping[str, dict]) -> None:
        edges: dict[str, list[str]] = {}
        for name, raw in raw_modules.items():
            deps = raw.get("depends_on") or []
            edges[name] = [d for d in deps if d in raw_modules]
            for index, dep in enumerate(deps):
                key = ("modules", name, "depends_on", index)
                if dep == name:
                    self.fail(key, "a module cannot depend on itself")
                elif dep not in raw_modules:
                    self.fail(key, f"unknown module {dep!r}; modules: {', '.join(sorted(raw_modules))}")
        cycle = graph.find_cycle(edges)
        if cycle and len(cycle) > 2:
            self.fail(("modules", cycle[0], "depends_on"), f"dependency cycle: {' -> '.join(cycle)}")

    def _real_dir(self, rel: str) -> str | None:
        """Real path of folder ``rel`` below the root, or None when it is not a directory.

        One ``lstat`` per module with the parents' answers cached: ``Path.resolve`` per
        module costs a syscall per path component, which shows at thousands of modules.
        """
        if not rel:
            return str(self.root)
        if rel in self._real_dirs:
            return self._real_dirs[rel]
        parent, _, leaf = rel.rpartition("/")
        base = self._real_dir(parent)
        result = None
        if base is not None:
            candidate = os.path.join(base, leaf)
            try:
                mode = os.lstat(candidate).st_mode
            except OSError:
                mode = 0
            if stat.S_ISLNK(mode):
                candidate = os.path.realpath(candidate)
                result = candidate if os.path.isdir(candidate) else None
            elif stat.S_ISDIR(mode):
                result = candidate
        self._real_dirs[rel] = result
        return result

    def _check_paths(self, modules: Mapping[str, Module]) -> None:
        owners: dict[str, str] = {}
        for module in modules.values():
            key = ("modules", module.name, "path")
            if module.path in owners:
                self.fail(key, f"same path {module.path!r} as module {owners[module.path]!r}")
                continue
            owners[module.path] = module.name
            if self.check_paths:
                real = self._real_dir(module.path)
                root = str(self.root)
                if real is None:
                    self.fail(key, f"folder {module.path!r} does not exist")
                elif real != root and not real.startswith(root.rstrip("/") + "/"):
                    self.fail(key, f"{module.path!r} leaves the repository through a symlink")
            if module.path == "":
                self.fail(key, "a module cannot own the whole repository root")
