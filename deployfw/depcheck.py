"""Dependency warnings for the plan: what a module's build reads that its dependencies do not cover.

A buildspec that copies another module's folder (``cp -R libs/common/src ...``)
makes that module an input of the image, but only ``depends_on`` and the build
graph make a change there rebuild and redeploy it, and make the content tag
cover it. :func:`undeclared_reads` finds such reads: each command of the
module's buildspec is split into words the way a shell would (:mod:`shlex`),
and a word naming a path inside another module's folder, when that module is
neither the module itself nor one of its transitive dependencies, is a finding
with the buildspec's line. :func:`graph_warnings` turns what the build graph
could not read statically into findings of the modules a plan touches.

These are warnings, not errors: a plan shows them and still runs. Paths built
at run time (``$DEPLOYFW_MODULE_PATH/../x``, variables) are not followed.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Iterable

from deployfw.configmodel import Config, Module
from deployfw.errors import Problem

BUILDSPEC_NAME = "buildspec.yml"
PHASES = ("install", "pre_build", "build", "post_build")


def buildspec_of(module: Module) -> str:
    """The module's buildspec, relative to the repository root (build option ``buildspec``)."""
    configured = module.build.get("buildspec") if module.build is not None else None
    return str(configured) if configured else f"{module.path}/{BUILDSPEC_NAME}"


def transitive_dependencies(config: Config, name: str) -> set[str]:
    """Every module ``name`` depends on, through declared and build-graph edges."""
    seen: set[str] = set()
    pending = list(config.dependencies(name))
    while pending:
        current = pending.pop()
        if current not in seen and current in config.modules:
            seen.add(current)
            pending.extend(config.dependencies(current))
    return seen


def undeclared_reads(config: Config, names: Iterable[str] | None = None) -> list[Problem]:
    """Buildspec commands of service modules that name another module's folder they do not depend on."""
    from deployfw.errors import InputError
    from deployfw.yamlsrc import parse

    owners = {m.path: m.name for m in config.modules.values()}
    findings: list[Problem] = []
    for name in sorted(names if names is not None else config.modules):
        module = config.modules[name]
        if not module.is_service:
            continue
        rel = buildspec_of(module)
        try:
            text = (config.root / rel).read_text(encoding="utf-8")
            doc = parse(text, rel, strict=False)
        except (OSError, UnicodeDecodeError, InputError):
            continue  # an unreadable buildspec is the build backend's preflight finding
        allowed = {name, *transitive_dependencies(config, name)}
        phases = doc.data.get("phases") if isinstance(doc.data, dict) else None
        for phase in PHASES:
            commands = (phases or {}).get(phase, {}) if isinstance(phases, dict) else {}
            commands = commands.get("commands") if isinstance(commands, dict) else None
            for index, command in enumerate(commands if isinstance(commands, list) else []):
                if not isinstance(command, str):
                    continue
                for other, word in _modules_named(command, owners, module.path):
                    if other in allowed:
                        continue
                    path = config.modules[other].path
                    where = (
                        f"neither in its depends_on nor in the {config.graph} build"
                        if config.graph
                        else ("not in its depends_on")
                    )
                    message = (
                        f"reads {word} in module {other!r} ({path}), which {name!r} does not depend on ({where}):"
                        f" a change there would not rebuild {name!r}; add {other!r} to its depends_on"
                    )
                    key = f"phases.{phase}.commands[{index}]"
                    findings.append(Problem(rel, doc.line(("phases", phase, "commands", index)), key, message))
    return findings


def graph_warnings(config: Config, names: Iterable[str] | None = None) -> list[Problem]:
    """What the build graph's static reading could not be sure of, for ``names`` (default: every module)."""
    wanted = set(names) if names is not None else None
    return [
        Problem(note.file, note.line, f"modules.{note.module}" if note.module else "graph", note.message)
        for note in config.graph_notes
        if wanted is None or note.module is None or note.module in wanted
    ]


def plan_warnings(config: Config, names: Iterable[str]) -> list[Problem]:
    """Every dependency warning a plan of ``names`` should show."""
    names = list(names)
    return [*undeclared_reads(config, names), *graph_warnings(config, names)]


def _modules_named(command: str, owners: dict[str, str], own_path: str) -> Iterable[tuple[str, str]]:
    """``(module, word)`` for each word of ``command`` that is a path inside a module's folder."""
    try:
        words = shlex.split(command, comments=True)
    except ValueError:
        words = command.split()
    seen: set[str] = set()
    for word in words:
        for candidate in _paths_in(word):
            if candidate.startswith(("/", "$", "~")) or candidate in seen:
                continue
            normal = posixpath.normpath(candidate)
            if normal.startswith(".."):
                continue
            owner = _owner(normal, owners)
            if owner is not None and owners.get(own_path) != owner:
                seen.add(candidate)
                yield owner, candidate


def _paths_in(word: str) -> list[str]:
    """A word, or the value of ``--opt=path`` / ``VAR=path``."""
    out = [word]
    if "=" in word:
        out.append(word.split("=", 1)[1])
    return [w for w in out if "/" in w]


def _owner(path: str, owners: dict[str, str]) -> str | None:
    probe = path
    while probe and probe != ".":
        found = owners.get(probe)
        if found is not None:
            return found
        probe = posixpath.dirname(probe)
    return None
