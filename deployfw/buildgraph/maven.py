"""The Maven reactor, read from POMs: modules, sibling dependencies and parents.

From the root POM, ``<modules>`` (also inside ``<profiles>``) are followed
recursively; each POM's coordinates are its own ``groupId``/``artifactId`` with
the group inherited from ``<parent>`` when absent, and ``${...}`` resolved from
the POM's and its parents' ``<properties>`` and the ``project.*`` values. A
dependency on a reactor module (``<dependencies>``, profile dependencies, plugin
dependencies, a plugin that is itself a reactor module, a BOM imported in
``<dependencyManagement>``) and a ``<parent>`` that is a reactor module are
references, each with the POM line. A coordinate that stays ``${...}`` after
that is a note. POMs are parsed with lxml (entities and network access off),
which also gives the line of every element.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deployfw.buildgraph.model import BuildGraph, Note, Project, Reference
from deployfw.errors import InputError, Problem

POM = "pom.xml"
_PROPERTY = re.compile(r"\$\{([^}]+)\}")
_APPLICATION_PLUGINS = {
    "spring-boot-maven-plugin": "plugin spring-boot-maven-plugin",
    "quarkus-maven-plugin": "plugin quarkus-maven-plugin",
    "micronaut-maven-plugin": "plugin micronaut-maven-plugin",
}


@dataclass
class _Pom:
    file: str  # relative to the config root
    dir: str
    root: Any  # lxml element
    group: str | None = None
    artifact: str | None = None
    properties: dict[str, str] = field(default_factory=dict)
    parent: tuple[str, str, str | None, int] | None = None  # group, artifact, relativePath, line
    parent_pom: _Pom | None = None


def _local(tag: Any) -> str:
    return tag.split("}", 1)[1] if isinstance(tag, str) and "}" in tag else str(tag)


def _child(element: Any, *names: str) -> Any:
    """The first descendant along ``names``, ignoring XML namespaces."""
    current = element
    for name in names:
        current = next((c for c in current if _local(c.tag) == name), None)
        if current is None:
            return None
    return current


def _children(element: Any, name: str) -> list[Any]:
    return [c for c in element if _local(c.tag) == name] if element is not None else []


def _text(element: Any) -> str | None:
    if element is None or element.text is None:
        return None
    return element.text.strip() or None


class MavenReader:
    """Reads the reactor whose root POM is in ``root`` (relative to ``config_root``)."""

    def __init__(self, config_root: Path) -> None:
        self.config_root = config_root
        self._poms: dict[str, _Pom] = {}  # by file
        self.graph: BuildGraph | None = None

    def _rel(self, *parts: str) -> str:
        joined = posixpath.normpath(posixpath.join(*[p for p in parts if p] or ["."]))
        return "" if joined == "." else joined

    def read(self, root: str) -> BuildGraph:
        self.graph = BuildGraph("maven", root)
        root_file = self._rel(root, POM)
        self._load_tree(root_file)
        self.graph.shared.append(root_file)
        for pom in self._poms.values():
            self._inherit(pom)
        offered: dict[tuple[str, str], _Pom] = {}
        for pom in self._poms.values():
            coordinates = self._coordinates(pom)
            if coordinates is not None:
                offered.setdefault(coordinates, pom)
        for pom in self._poms.values():
            self.graph.projects[pom.dir] = self._project(pom)
            self._references(pom, offered)
        return self.graph

    # -- loading -----------------------------------------------------------------------------------

    def _parse(self, file: str) -> _Pom | None:
        if file in self._poms:
            return self._poms[file]
        path = self.config_root / file
        if not path.is_file():
            return None
        from lxml import etree  # type: ignore[import-untyped]

        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
        try:
            root = etree.parse(str(path), parser).getroot()
        except etree.XMLSyntaxError as exc:
            line = exc.lineno if getattr(exc, "lineno", None) else None
            raise InputError(Problem(file, line, None, f"not a readable POM: {exc.msg}")) from None
        pom = _Pom(file, posixpath.dirname(file), root)
        pom.group = _text(_child(root, "groupId"))
        pom.artifact = _text(_child(root, "artifactId"))
        props = _child(root, "properties")
        if props is not None:
            for prop in props:
                if isinstance(prop.tag, str):
                    pom.properties[_local(prop.tag)] = (prop.text or "").strip()
        parent = _child(root, "parent")
        if parent is not None:
            relative = _child(parent, "relativePath")
            relative_path = _text(relative) if relative is not None else "../pom.xml"
            pom.parent = (
                _text(_child(parent, "groupId")) or "",
                _text(_child(parent, "artifactId")) or "",
                relative_path,
                parent.sourceline or 0,
            )
        self._poms[file] = pom
        assert self.graph is not None
        self.graph.inputs.append(file)
        return pom

    def _load_tree(self, file: str) -> None:
        pending = [file]
        while pending:
            current = pending.pop()
            if current in self._poms:
                continue
            pom = self._parse(current)
            if pom is None:
                continue
            sections = [pom.root, *(_children(_child(pom.root, "profiles"), "profile"))]
            for section in sections:
                for module in _children(_child(section, "modules"), "module"):
                    name = _text(module)
                    if not name:
                        continue
                    target = self._rel(pom.dir, name)
                    target_file = target if target.endswith(".xml") else self._rel(target, POM)
                    if not (self.config_root / target_file).is_file():
                        self._note(pom.file, module.sourceline, f"module {name!r} has no {POM}")
                        continue
                    pending.append(target_file)

    def _inherit(self, pom: _Pom) -> None:
        """Link the parent POM when it is in the reactor or at ``relativePath``."""
        if pom.parent is None:
            return
        group, artifact, relative, _ = pom.parent
        candidates = []
        if relative:
            target = self._rel(pom.dir, relative)
            candidates.append(target if target.endswith(".xml") else self._rel(target, POM))
        for candidate in candidates:
            parent = self._parse(candidate) if not candidate.startswith("../") else None
            if parent is not None and parent.artifact == artifact:
                pom.parent_pom = parent
                return
        for other in self._poms.values():
            if other is not pom and other.artifact == artifact and self._group(other) == group:
                pom.parent_pom = other
                return

    # -- values ------------------------------------------------------------------------------------

    def _group(self, pom: _Pom) -> str | None:
        if pom.group:
            return self._resolve(pom, pom.group)
        if pom.parent is not None:
            return self._resolve(pom, pom.parent[0]) if pom.parent[0] else None
        return None

    def _coordinates(self, pom: _Pom) -> tuple[str, str] | None:
        group, artifact = self._group(pom), self._resolve(pom, pom.artifact or "")
        if not group or not artifact or "${" in group or "${" in artifact:
            return None
        return group, artifact

    def _property(self, pom: _Pom, name: str, depth: int = 0) -> str | None:
        if depth > 10:
            return None
        if name in ("project.groupId", "pom.groupId", "groupId"):
            return self._group(pom)
        if name in ("project.artifactId", "pom.artifactId", "artifactId"):
            return pom.artifact
        if name == "project.parent.groupId" and pom.parent is not None:
            return pom.parent[0]
        if name == "project.parent.artifactId" and pom.parent is not None:
            return pom.parent[1]
        current: _Pom | None = pom
        while current is not None:
            if name in current.properties:
                return current.properties[name]
            current = current.parent_pom
        return None

    def _resolve(self, pom: _Pom, value: str, depth: int = 0) -> str:
        if "${" not in value or depth > 10:
            return value

        def replace(match: re.Match[str]) -> str:
            found = self._property(pom, match.group(1))
            return self._resolve(pom, found, depth + 1) if found is not None else match.group(0)

        return _PROPERTY.sub(replace, value)

    # -- results -----------------------------------------------------------------------------------

    def _project(self, pom: _Pom) -> Project:
        coordinates = self._coordinates(pom)
        packaging = _text(_child(pom.root, "packaging")) or "jar"
        application = None
        for plugin in _children(_child(pom.root, "build", "plugins"), "plugin"):
            artifact = _text(_child(plugin, "artifactId"))
            if artifact in _APPLICATION_PLUGINS:
                application = f"{_APPLICATION_PLUGINS[artifact]} ({pom.file}:{plugin.sourceline})"
                break
        if application is None and self._property(pom, "start-class"):
            application = f"start-class property ({pom.file})"
        name = f"{coordinates[0]}:{coordinates[1]}" if coordinates else pom.artifact or pom.dir
        return Project(pom.dir, name, pom.file, coordinates, application, aggregator=packaging == "pom")

    def _references(self, pom: _Pom, offered: dict[tuple[str, str], _Pom]) -> None:
        assert self.graph is not None
        for element, label in self._dependency_elements(pom):
            group = self._resolve(
                pom, _text(_child(element, "groupId")) or ("org.apache.maven.plugins" if label == "plugin" else "")
            )
            artifact = self._resolve(pom, _text(_child(element, "artifactId")) or "")
            if "${" in group or "${" in artifact:
                self._note(
                    pom.file, element.sourceline, f"{label} {group}:{artifact} is not resolved statically", pom.dir
                )
                continue
            target = offered.get((group, artifact))
            if target is not None and target is not pom:
                self.graph.references.append(Reference(pom.dir, target.dir, pom.file, element.sourceline or 0))
        if pom.parent is not None and pom.parent_pom is not None:
            parent = pom.parent_pom
            if parent.file in self._poms and parent is not pom:
                self.graph.references.append(Reference(pom.dir, parent.dir, pom.file, pom.parent[3]))

    def _dependency_elements(self, pom: _Pom) -> list[tuple[Any, str]]:
        found: list[tuple[Any, str]] = []
        sections = [pom.root, *(_children(_child(pom.root, "profiles"), "profile"))]
        for section in sections:
            found.extend((d, "dependency") for d in _children(_child(section, "dependencies"), "dependency"))
            for managed in _children(_child(section, "dependencyManagement", "dependencies"), "dependency"):
                if _text(_child(managed, "scope")) == "import":
                    found.append((managed, "imported BOM"))
            for plugin in _children(_child(section, "build", "plugins"), "plugin"):
                found.append((plugin, "plugin"))
                found.extend((d, "plugin dependency") for d in _children(_child(plugin, "dependencies"), "dependency"))
        return found

    def _note(self, file: str, line: int | None, message: str, project: str | None = None) -> None:
        assert self.graph is not None
        self.graph.notes.append(Note(file, line, message, project))
