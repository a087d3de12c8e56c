"""Change detection: which modules must be deployed for the change base..head.

Semantics (DESIGN.md, "Change detection"), applied to the paths that differ
between the merge-base and head:

1. a path belongs to the module whose ``path`` is its longest prefix in whole
   path components (nested modules allowed);
2. a path matching a ``shared_paths`` glob affects every service module;
3. a path named by a module's config (taskdef, appspec, buildspec) affects it,
   and so does a change to the module's merged entry in modules.yaml;
4. dependents are affected transitively through ``depends_on`` and, with
   ``graph: gradle|maven``, through the build files' project dependencies (both
   are in each loaded module's ``depends_on``; a reason names the build file line);
5. every other path is ``unowned`` (modules.yaml itself is not counted) and is
   listed, so a user can see what the change touched that no module owns.

Each affected module keeps its reasons so users can see why it was picked.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from deployfw import graph
from deployfw.buildgraph import GraphNote
from deployfw.configmodel import Config, Module
from deployfw.errors import InputError
from deployfw.gitrepo import GitRepo
from deployfw.revisions import Range

MAX_PATHS_PER_REASON = 3


@dataclass(frozen=True)
class Affected:
    name: str
    kind: str
    reasons: tuple[str, ...]

    def to_json(self) -> dict:
        return {"name": self.name, "kind": self.kind, "reasons": list(self.reasons)}


@dataclass(frozen=True)
class Detection:
    """The answer of detect: the compared range and the affected modules, sorted by name."""

    base: str | None
    head: str
    merge_base: str | None
    modules: tuple[Affected, ...]
    unowned: int
    changed: int = 0
    unowned_paths: tuple[str, ...] = ()  # repository-relative, in git's order
    graph: str | None = None  # the build tool whose graph was followed
    notes: tuple[GraphNote, ...] = ()  # what that graph's static reading cannot be sure of

    def names(self) -> list[str]:
        return [m.name for m in self.modules]

    def to_json(self) -> dict:
        out: dict = {
            "base": self.base,
            "head": self.head,
            "modules": [m.to_json() for m in self.modules],
            "unowned": self.unowned,
            "unowned_paths": list(self.unowned_paths),
        }
        if self.graph is not None:
            out["graph"] = {"tool": self.graph, "uncertain": [n.to_json() for n in self.notes]}
        return out


def glob_regex(patterns: Iterable[str]) -> re.Pattern[str] | None:
    """One regex for all globs, matched against the whole path from the repository root.

    ``*`` and ``?`` stay inside one path component; ``**`` crosses components, and
    ``dir/**`` matches everything below ``dir``.
    """
    parts = []
    for pattern in patterns:
        out, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out, i = out + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                out, i = out + ".*", i + 2
            elif pattern[i] == "*":
                out, i = out + "[^/]*", i + 1
            elif pattern[i] == "?":
                out, i = out + "[^/]", i + 1
            else:
                out, i = out + re.escape(pattern[i]), i + 1
        parts.append(out)
    return re.compile("(?:" + "|".join(parts) + r")\Z") if parts else None


class _Reasons:
    """Collects reasons per module, capping the number of paths listed per module."""

    def __init__(self) -> None:
        self.paths: dict[str, list[str]] = defaultdict(list)
        self.counts: dict[str, int] = defaultdict(int)
        self.other: dict[str, list[str]] = defaultdict(list)

    def path(self, module: str, path: str, label: str = "changed") -> None:
        self.counts[module] += 1
        if len(self.paths[module]) < MAX_PATHS_PER_REASON:
            self.paths[module].append(f"{label}: {path}")

    def add(self, module: str, reason: str) -> None:
        if reason not in self.other[module]:
            self.other[module].append(reason)

    def modules(self) -> set[str]:
        return set(self.counts) | set(self.other)

    def of(self, module: str) -> tuple[str, ...]:
        listed = self.paths.get(module, [])
        more = self.counts.get(module, 0) - len(listed)
        tail = [f"+{more} more changed paths"] if more > 0 else []
        return (*listed, *tail, *self.other.get(module, []))


@dataclass
class _Index:
    """Lookup tables built once per config: path owners, file references, shared globs."""

    owners: dict[str, str]
    references: dict[str, list[str]]
    shared: re.Pattern[str] | None
    services: list[str] = field(default_factory=list)
    depth: int = 0  # most path components of any module path: deeper prefixes cannot match

    @classmethod
    def of(cls, config: Config) -> _Index:
        references: dict[str, list[str]] = defaultdict(list)
        for module in config.modules.values():
            for path in module.files:
                references[path].append(module.name)
        return cls(
            owners={m.path: m.name for m in config.modules.values()},
            references=dict(references),
            shared=glob_regex(config.shared_paths),
            services=[m.name for m in config.modules.values() if m.is_service],
            depth=max((m.path.count("/") + 1 for m in config.modules.values()), default=0),
        )

    def owner(self, path: str) -> str | None:
        """Longest module path that is ``path`` itself or a whole-component prefix of it.

        Probing starts at the first ``depth`` components: a changed file is usually far
        deeper than any module folder, and no longer prefix can be a module path.
        """
        cut = -1
        for _ in range(self.depth):
            cut = path.find("/", cut + 1)
            if cut < 0:
                break
        probe = path if cut < 0 else path[:cut]
        while True:
            name = self.owners.get(probe)
            if name is not None:
                return name
            cut = probe.rfind("/")
            if cut < 0:
                return None
            probe = probe[:cut]


def everything(config: Config, reason: str, names: Sequence[str] | None = None) -> list[Affected]:
    selected = names if names is not None else sorted(config.modules)
    return [Affected(n, config.modules[n].kind, (reason,)) for n in sorted(selected)]


def detect_changes(
    config: Config,
    changed: Sequence[str],
    *,
    base_config_text: str | None = None,
    config_changed: bool = False,
) -> tuple[list[Affected], list[str]]:
    """Apply the semantics to ``changed`` (paths relative to the config's root).

    ``base_config_text`` is modules.yaml at the merge-base, consulted only when
    ``config_changed`` says the file is among the changed paths. Returns the affected
    modules and the changed paths that affect nothing (``unowned``).
    """
    index = _Index.of(config)
    reasons = _Reasons()
    unowned: list[str] = []
    config_path = config.relative_file
    for path in changed:
        if path == config_path:
            continue
        hit = False
        owner = index.owner(path)
        if owner is not None:
            reasons.path(owner, path)
            hit = True
        for name in index.references.get(path, ()):
            if name != owner:
                reasons.path(name, path, "config file")
            hit = True
        if index.shared is not None and index.shared.match(path):
            for name in index.services:
                reasons.add(name, f"shared: {path}")
            hit = True
        if not hit:
            unowned.append(path)
    if config_changed:
        for name, reason in _config_changes(config, base_config_text).items():
            reasons.add(name, reason)

    direct = reasons.modules()
    edges = {m.name: m.depends_on for m in config.modules.values()}
    for name, via in graph.dependents_of(direct, graph.reverse_edges(edges)).items():
        if name not in direct:
            source = config.modules[name].dependency_source(via)
            reasons.add(name, f"dependency ({source}): {via}" if source else f"dependency: {via}")
    affected = [Affected(n, config.modules[n].kind, reasons.of(n)) for n in sorted(reasons.modules())]
    return affected, unowned


def _config_changes(config: Config, base_text: str | None) -> dict[str, str]:
    """Modules whose merged entry differs between the merge-base config and head."""
    if base_text is None:
        return {name: "config: new module" for name in config.modules}
    from deployfw.config import load_config  # PyYAML: only when modules.yaml itself changed

    try:
        old = load_config(
            config.file,
            env=config.env,
            root=config.root,
            text=base_text,
            check_paths=False,
            env_optional=True,
            read_graph=False,
        )
    except InputError:
        return {name: "config: modules.yaml at base is invalid" for name in config.modules}
    changes: dict[str, str] = {}
    top_changed = (old.project, old.region) != (config.project, config.region)
    for name, module in config.modules.items():
        before: Module | None = old.modules.get(name)
        if before is None:
            changes[name] = "config: new module"
        elif _comparable(before) != _comparable(module):
            changes[name] = "config: module entry changed"
        elif top_changed and module.is_service:
            changes[name] = "config: project/region changed"
    return changes


def _comparable(module: Module) -> Mapping:
    return {"effective": module.effective, "path": module.path, "kind": module.kind}


def detect(
    config: Config,
    repo: GitRepo,
    rng: Range,
    *,
    select_all: bool = False,
    names: Sequence[str] = (),
) -> Detection:
    """The whole detection for one command: selection flags first, then the git range."""
    unknown = [n for n in names if n not in config.modules]
    if unknown:
        known = ", ".join(sorted(config.modules))
        raise InputError(f"unknown module {', '.join(map(repr, unknown))}; modules: {known}")
    if select_all or names:
        reason = "selected with --all" if select_all else "selected with -m"
        modules = everything(config, reason, None if select_all else names)
        return Detection(
            rng.base, rng.head, rng.merge_base, tuple(modules), 0, graph=config.graph, notes=config.graph_notes
        )
    if rng.merge_base is None:
        modules = everything(config, rng.fallback or "no base")
        return Detection(rng.base, rng.head, None, tuple(modules), 0, graph=config.graph, notes=config.graph_notes)

    prefix = config.root.relative_to(repo.root).as_posix() if config.root != repo.root else ""
    raw = repo.changed_paths(rng.merge_base, rng.head)
    outside: list[str] = []
    if prefix:
        lead = prefix + "/"
        inside = [p[len(lead) :] for p in raw if p.startswith(lead)]
        outside = [p for p in raw if not p.startswith(lead)]
        raw = inside
    config_path = config.relative_file
    config_changed = config_path in raw
    base_text = repo.read(rng.merge_base, f"{lead}{config_path}" if prefix else config_path) if config_changed else None
    affected, unowned = detect_changes(config, raw, base_config_text=base_text, config_changed=config_changed)
    unowned_paths = (*outside, *(f"{prefix}/{p}" if prefix else p for p in unowned))
    return Detection(
        rng.base,
        rng.head,
        rng.merge_base,
        tuple(affected),
        len(unowned_paths),
        len(raw),
        unowned_paths,
        config.graph,
        config.graph_notes,
    )
