"""The Gradle project graph, read statically from settings and build scripts.

What Gradle itself would evaluate, as far as it can be known without running it:

* ``settings.gradle(.kts)``: ``include`` (nested paths create their parents),
  ``includeFlat`` (siblings of the root folder), ``project(':x').projectDir = ...``
  and ``buildFileName`` overrides, ``includeBuild`` (composite builds, read
  recursively) and ``pluginManagement { includeBuild }`` (plugin builds);
* each project's build script, Groovy or Kotlin DSL: every ``project(':x')``
  (positional or ``path:``), in any configuration and anywhere in the script,
  ``projects.x.y`` type-safe accessors, and ``group:name`` coordinates that an
  included build substitutes with one of its projects;
* the root script's ``allprojects``, ``subprojects`` and ``project(':x') { }``
  blocks, whose references apply to the projects they configure.

A project path computed in code, an ``include`` with computed arguments or a
convention plugin from the build's own build logic is recorded as a
:class:`~deployfw.buildgraph.model.Note` instead of being guessed at.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from deployfw.buildgraph import syntax
from deployfw.buildgraph.model import BuildGraph, Note, Project, Reference
from deployfw.buildgraph.syntax import Assign, Call, Node, Ref, Str

SETTINGS_FILES = ("settings.gradle", "settings.gradle.kts")
BUILD_FILES = ("build.gradle", "build.gradle.kts")
APPLICATION_PLUGINS = ("org.springframework.boot", "application")
_MAIN_CLASS_KEYS = ("mainClass", "mainClassName")
# Plugins that ship with Gradle: never a convention plugin of the build's own.
_CORE_PLUGINS = frozenset(
    [
        "java",
        "java-library",
        "java-platform",
        "java-test-fixtures",
        "application",
        "groovy",
        "scala",
        "war",
        "ear",
        "base",
        "distribution",
        "maven-publish",
        "ivy-publish",
        "signing",
        "idea",
        "eclipse",
        "jacoco",
        "checkstyle",
        "pmd",
        "codenarc",
        "antlr",
        "kotlin-dsl",
        "java-gradle-plugin",
        "jvm-test-suite",
        "version-catalog",
        "test-report-aggregation",
        "jacoco-report-aggregation",
        "project-report",
        "build-dashboard",
        "help-tasks",
    ]
)
_ACCESSOR_MEMBERS = frozenset({"dependencyProject", "path", "name", "group", "version"})
_COORDINATE = re.compile(r"^([^:\s$]+):([^:\s$]+)(?::[^:\s]*)*$")


def parse_script(path: Path) -> tuple[Node, ...]:
    """The statements of a Groovy or Kotlin script (by its extension)."""
    source = path.read_bytes()
    if path.name.endswith(".kts"):
        from deployfw.buildgraph import kotlin

        return kotlin.parse(source)
    from deployfw.buildgraph import groovy

    return groovy.parse(source)


def find_settings(folder: Path) -> Path | None:
    for name in SETTINGS_FILES:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None


def accessor(project_path: str) -> str:
    """The type-safe accessor of a project path: ``:libs:shared-utils`` -> ``projects.libs.sharedUtils``."""
    parts = [p for p in project_path.split(":") if p]
    return ".".join(["projects", *(_camel(p) for p in parts)])


def _camel(name: str) -> str:
    words = [w for w in re.split(r"[-_]", name) if w]
    if not words:
        return name
    return words[0] + "".join(w[:1].upper() + w[1:] for w in words[1:])


@dataclass(frozen=True)
class _Scope:
    """Which projects what is being read applies to: the script's own, or a root block's."""

    path: str  # the project whose script is read
    targets: tuple[str, ...]
    group_key: str  # where a ``group = ...`` found here is recorded ('*': every subproject)

    @classmethod
    def own(cls, path: str) -> _Scope:
        return cls(path, (path,), path)


@dataclass
class _Build:
    """One Gradle build: its settings, its projects (path -> folder) and what was found in them."""

    root: str  # folder relative to the config root
    settings: str | None
    name: str
    dirs: dict[str, str] = field(default_factory=dict)  # ':a:b' -> folder
    build_files: dict[str, str | None] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)  # project path -> group
    coordinates_used: list[tuple[str, str, str, str, int]] = field(default_factory=list)  # src, g, n, file, line
    plugins: dict[str, list[tuple[str, str, int]]] = field(default_factory=dict)  # path -> (id, file, line)
    applications: dict[str, str] = field(default_factory=dict)


class GradleReader:
    """Reads the build rooted at ``root`` (relative to ``config_root``) and every build it includes."""

    def __init__(self, config_root: Path) -> None:
        self.config_root = config_root
        self.graph: BuildGraph | None = None
        self._builds: dict[str, _Build] = {}
        self._plugin_ids: dict[str, str] = {}  # convention plugin id -> where it is defined
        self._versioned_plugins: set[str] = set()

    def read(self, root: str) -> BuildGraph:
        self.graph = BuildGraph("gradle", root)
        self._read_build(root, plugin_build=False)
        self._resolve_coordinates()
        self._convention_notes()
        return self.graph

    # -- files --------------------------------------------------------------------------------------

    def _abs(self, rel: str) -> Path:
        return self.config_root / rel if rel else self.config_root

    def _rel(self, *parts: str) -> str:
        joined = posixpath.normpath(posixpath.join(*[p for p in parts if p] or ["."]))
        return "" if joined == "." else joined

    def _parse(self, rel: str) -> tuple[Node, ...]:
        assert self.graph is not None
        self.graph.inputs.append(rel)
        return parse_script(self._abs(rel))

    def _note(self, file: str, line: int | None, message: str, project: str | None = None) -> None:
        assert self.graph is not None
        self.graph.notes.append(Note(file, line, message, project))

    # -- settings -----------------------------------------------------------------------------------

    def _read_build(self, root: str, *, plugin_build: bool) -> None:
        if root in self._builds:
            return
        settings_path = find_settings(self._abs(root))
        settings = self._rel(root, settings_path.name) if settings_path else None
        build = _Build(root, settings, posixpath.basename(root) or self.config_root.name)
        self._builds[root] = build
        build.dirs[":"] = root
        overrides: dict[str, str] = {}
        file_names: dict[str, str] = {}
        included: list[tuple[str, bool]] = []
        if settings is not None:
            assert self.graph is not None
            if plugin_build:
                self.graph.shared.append(settings)
            for node, parents in _walk(self._parse(settings)):
                self._settings_node(build, node, parents, overrides, file_names, included)
        self._place_projects(build, overrides)
        for path, folder in sorted(build.dirs.items()):
            name = file_names.get(path)
            candidates = (name,) if name else BUILD_FILES
            build.build_files[path] = next(
                (self._rel(folder, c) for c in candidates if (self._abs(folder) / c).is_file()), None
            )
        if plugin_build:
            self._collect_plugin_ids(build)
        else:
            self._read_projects(build)
        for folder, is_plugin in included:
            if (self._abs(folder)).is_dir():
                self._read_build(folder, plugin_build=is_plugin)
            elif settings:
                self._note(settings, None, f"included build {folder!r} does not exist")
        if not plugin_build:
            buildsrc = self._rel(root, "buildSrc")
            if self._abs(buildsrc).is_dir():
                self._read_build(buildsrc, plugin_build=True)

    def _settings_node(
        self,
        build: _Build,
        node: Node,
        parents: tuple[str, ...],
        overrides: dict[str, str],
        file_names: dict[str, str],
        included: list[tuple[str, bool]],
    ) -> None:
        settings = build.settings or ""
        if isinstance(node, Call) and node.receiver is None and node.name in ("include", "includeFlat"):
            values = [syntax.strings(a) for a in node.args]
            if not node.args or any(v is None for v in values):
                self._note(
                    settings,
                    node.line,
                    f"{node.name} with an argument computed in code: the projects it adds are not known",
                )
                return
            for found in values:
                for item in found or ():
                    self._include(build, item.text, flat=node.name == "includeFlat")
        elif isinstance(node, Call) and node.name == "includeBuild" and node.receiver is None:
            target = syntax.strings(node.arg("path"))
            if not target or len(target) != 1:
                self._note(settings, node.line, "includeBuild with a path computed in code: that build is not read")
                return
            included.append((self._rel(build.root, target[0].text), "pluginManagement" in parents))
        elif (
            isinstance(node, Assign)
            and isinstance(node.target, Ref)
            and node.target.name in ("projectDir", "buildFileName")
        ):
            owner = node.target.receiver
            path = _project_arg(owner) if isinstance(owner, Call) and owner.name == "project" else None
            if path is None:
                if isinstance(owner, Call | Ref):
                    self._note(settings, node.line, f"{node.target.name} set for a project chosen in code: not applied")
                return
            if node.target.name == "buildFileName":
                value = node.value
                if isinstance(value, Str):
                    file_names[_normal_path(path)] = value.text
                else:
                    self._note(settings, node.line, "buildFileName computed in code: not applied")
                return
            folder = self._folder_value(build, node.value)
            if folder is None:
                self._note(settings, node.line, f"projectDir of {path} computed in code: its folder is not known")
            else:
                overrides[_normal_path(path)] = folder
        elif _assigns(node, "name") and isinstance(node, Assign) and isinstance(node.value, Str):
            build.name = node.value.text if _dotted(node.target) == "rootProject.name" else build.name

    def _include(self, build: _Build, text: str, *, flat: bool) -> None:
        path = _normal_path(text)
        if flat:
            build.dirs[path] = self._rel(build.root, "..", path.split(":")[-1])
            return
        parts = path.split(":")[1:]
        for depth in range(1, len(parts) + 1):
            build.dirs.setdefault(":" + ":".join(parts[:depth]), "")

    def _place_projects(self, build: _Build, overrides: dict[str, str]) -> None:
        """Folders: an override, else the parent's folder plus the project's name (Gradle's default)."""
        for path in sorted(build.dirs, key=lambda p: p.count(":")):
            if path == ":":
                continue
            if path in overrides:
                build.dirs[path] = overrides[path]
            elif not build.dirs[path]:
                parent = path.rsplit(":", 1)[0] or ":"
                build.dirs[path] = self._rel(build.dirs.get(parent, build.root), path.rsplit(":", 1)[1])

    def _folder_value(self, build: _Build, value: Node) -> str | None:
        """``file('x')``, ``new File(settingsDir, 'x')``, ``File(rootDir, "x")``, ``'x'`` -> folder."""
        if isinstance(value, Str):
            return self._rel(build.root, value.text)
        if isinstance(value, Call) and value.name in ("file", "new File", "File") and value.args:
            if len(value.args) == 1 and isinstance(value.args[0], Str):
                return self._rel(build.root, value.args[0].text)
            if len(value.args) == 2 and isinstance(value.args[1], Str):
                base = value.args[0]
                anchor = base.dotted() if isinstance(base, Ref) else None
                if anchor in ("settingsDir", "rootDir", "rootProject.projectDir", "settings.rootDir"):
                    return self._rel(build.root, value.args[1].text)
        return None

    # -- build scripts -------------------------------------------------------------------------------

    def _read_projects(self, build: _Build) -> None:
        assert self.graph is not None
        by_accessor = {accessor(path): path for path in build.dirs if path != ":"}
        for path, folder in sorted(build.dirs.items()):
            file = build.build_files.get(path)
            display = path if build.root == self.graph.root else f"{build.root}{path}"
            self.graph.projects[folder] = Project(folder, display, file)
            if path == ":":
                self.graph.shared.extend(f for f in (file, build.settings) if f)
            if file is not None:
                self._scan(build, file, self._parse(file), by_accessor, _Scope.own(path))
        for path in build.dirs:
            self._finish_project(build, path)

    def _finish_project(self, build: _Build, path: str) -> None:
        assert self.graph is not None
        project = self.graph.projects[build.dirs[path]]
        group = build.groups.get(path) or build.groups.get("*", "")
        name = build.name if path == ":" else path.rsplit(":", 1)[1]
        self.graph.projects[project.dir] = Project(
            project.dir,
            project.name,
            project.build_file,
            (group, name) if group else None,
            build.applications.get(path),
        )

    def _scan(
        self, build: _Build, file: str, nodes: tuple[Node, ...], by_accessor: dict[str, str], scope: _Scope
    ) -> None:
        """References, plugins, groups and application markers in one script, block by block.

        In the root script, ``allprojects``, ``subprojects`` and ``project(':x') { }`` change
        which projects what they contain applies to.
        """
        for node in nodes:
            if scope.path == ":" and isinstance(node, Call) and node.receiver is None and node.body is not None:
                inner = self._scoped(build, node, file)
                if inner is not None:
                    self._scan(build, file, node.body, by_accessor, inner)
                    continue
            self._scan_node(build, file, node, by_accessor, scope)
            if not (isinstance(node, Ref) and node.dotted()):  # ``projects.a.b`` is one reference, not three
                self._scan(build, file, tuple(syntax.children(node)), by_accessor, scope)

    def _scoped(self, build: _Build, node: Call, file: str) -> _Scope | None:
        """The projects an ``allprojects``/``subprojects``/``project(':x')``/``configure`` block applies to."""
        if node.name == "allprojects":
            return _Scope(":", tuple(sorted(build.dirs)), "*")
        if node.name == "subprojects":
            return _Scope(":", tuple(sorted(p for p in build.dirs if p != ":")), "*")
        if node.name == "project" and node.args:
            target = _project_arg(node)
            if target is not None:
                return _Scope(":", (_normal_path(target),), _normal_path(target))
        if node.name == "configure":
            self._note(
                file, node.line, "configure(...) chooses its projects in code: dependencies inside it are not mapped"
            )
            return _Scope(":", (), "")
        return None

    def _scan_node(self, build: _Build, file: str, node: Node, by_accessor: dict[str, str], scope: _Scope) -> None:
        here = build.dirs.get(scope.path)
        if isinstance(node, Call) and node.name == "project" and _is_project_receiver(node.receiver):
            target = _project_arg(node)
            if target is None:
                self._note(file, node.line, "project(...) with a path computed in code: its target is not known", here)
            else:
                self._reference(build, scope.targets, _normal_path(target), file, node.line)
        elif (
            isinstance(node, Call)
            and node.name == "evaluationDependsOn"
            and node.args
            and isinstance(node.args[0], Str)
        ):
            self._reference(build, scope.targets, _normal_path(node.args[0].text), file, node.line)
        elif isinstance(node, Ref) and (dotted := node.dotted()) and dotted.startswith("projects."):
            target = _longest_accessor(dotted, by_accessor)
            if target is None:
                self._note(file, node.line, f"{dotted}: no project of this build has that accessor", here)
            else:
                self._reference(build, scope.targets, target, file, node.line)
        elif isinstance(node, Assign) and isinstance(node.target, Ref):
            key = node.target.dotted()
            if key in ("group", "project.group") and isinstance(node.value, Str) and scope.group_key:
                build.groups.setdefault(scope.group_key, node.value.text)
            elif node.target.name in _MAIN_CLASS_KEYS:
                for target in scope.targets:
                    build.applications.setdefault(target, f"{node.target.name} set ({file}:{node.line})")
        elif isinstance(node, Call) and node.name == "set" and _is_main_class(node.receiver):
            for target in scope.targets:
                build.applications.setdefault(target, f"main class set ({file}:{node.line})")
        for plugin_id, line in _plugin_ids(node):
            for target in scope.targets:
                build.plugins.setdefault(target, []).append((plugin_id, file, line))
                if plugin_id in APPLICATION_PLUGINS:
                    build.applications.setdefault(target, f"plugin {plugin_id} ({file}:{line})")
        if isinstance(node, Call) and node.name == "version" and isinstance(node.receiver, Call):
            ids = syntax.strings(node.receiver.arg("id")) if node.receiver.name == "id" else None
            if ids:
                self._versioned_plugins.add(ids[0].text)
        coordinate = _coordinate(node)
        if coordinate is not None:
            for target in scope.targets:
                build.coordinates_used.append((target, coordinate[0], coordinate[1], file, node.line))

    def _reference(self, build: _Build, sources: Sequence[str], target: str, file: str, line: int) -> None:
        assert self.graph is not None
        target_dir = build.dirs.get(target)
        if target_dir is None:
            self._note(file, line, f"project {target!r} is not included in {build.settings or 'the settings'}")
            return
        for source in sources:
            if source != target and source in build.dirs:
                self.graph.references.append(Reference(build.dirs[source], target_dir, file, line))

    # -- composite builds and convention plugins -----------------------------------------------------

    def _resolve_coordinates(self) -> None:
        """``group:name`` dependencies an included build substitutes with one of its projects."""
        assert self.graph is not None
        offered: dict[tuple[str, str], str] = {}
        for project in self.graph.projects.values():
            if project.coordinates:
                offered.setdefault(project.coordinates, project.dir)
        for build in self._builds.values():
            for source, group, name, file, line in build.coordinates_used:
                target = offered.get((group, name))
                source_dir = build.dirs.get(source)
                if target is not None and source_dir is not None and target != source_dir:
                    self.graph.references.append(Reference(source_dir, target, file, line))

    def _collect_plugin_ids(self, build: _Build) -> None:
        """Ids of the plugins a plugin build (buildSrc, build-logic) defines: precompiled scripts and gradlePlugin."""
        for folder in build.dirs.values():
            base = self._abs(folder) / "src" / "main"
            for language in ("groovy", "kotlin", "java"):
                source = base / language
                if not source.is_dir():
                    continue
                for script in source.rglob("*.gradle*"):
                    name = script.name
                    for suffix in (".gradle.kts", ".gradle"):
                        if name.endswith(suffix) and not name.startswith(("settings.", "build.")):
                            rel = script.relative_to(self.config_root).as_posix()
                            self._plugin_ids.setdefault(name[: -len(suffix)], rel)
            file = build.build_files.get(next((p for p, d in build.dirs.items() if d == folder), ":"))
            if file:
                assert self.graph is not None
                self.graph.shared.append(file)
                for node, _ in _walk(self._parse(file)):
                    if _assigns(node, "id") and isinstance(node, Assign) and isinstance(node.value, Str):
                        self._plugin_ids.setdefault(node.value.text, f"{file}:{node.line}")
        assert self.graph is not None
        self.graph.shared.append(build.root + "/**" if build.root else "**")

    def _convention_notes(self) -> None:
        assert self.graph is not None
        for build in self._builds.values():
            for path, applied in build.plugins.items():
                for plugin_id, file, line in applied:
                    defined = self._plugin_ids.get(plugin_id)
                    if defined is None or plugin_id in _CORE_PLUGINS or plugin_id in self._versioned_plugins:
                        continue
                    self._note(
                        file,
                        line,
                        f"convention plugin {plugin_id!r} ({defined}): the dependencies it adds are not read",
                        build.dirs.get(path),
                    )


def _walk(nodes: tuple[Node, ...], parents: tuple[str, ...] = ()) -> Iterator[tuple[Node, tuple[str, ...]]]:
    """Every node (pre-order) with the names of the calls around it (``("pluginManagement",)``)."""
    for node in nodes:
        yield node, parents
        if isinstance(node, Ref) and node.dotted():
            continue  # a property chain is one reference (``projects.a.b``), not three
        inner = (*parents, node.name) if isinstance(node, Call) else parents
        yield from _walk(tuple(syntax.children(node)), inner)


def _is_main_class(node: Node | None) -> bool:
    return isinstance(node, Ref) and node.name in _MAIN_CLASS_KEYS


def _dotted(node: Node) -> str | None:
    return node.dotted() if isinstance(node, Ref) else None


def _assigns(node: Node, name: str) -> bool:
    return isinstance(node, Assign) and isinstance(node.target, Ref) and node.target.name == name


def _is_project_receiver(receiver: Node | None) -> bool:
    return receiver is None or (isinstance(receiver, Ref) and receiver.dotted() in ("rootProject", "project"))


def _project_arg(call: Call) -> str | None:
    value = call.arg("path")
    return value.text if isinstance(value, Str) else None


def _normal_path(text: str) -> str:
    text = text.strip()
    return text if text.startswith(":") else ":" + text


def _longest_accessor(dotted: str, by_accessor: dict[str, str]) -> str | None:
    """The project of an accessor chain; a trailing member of the project dependency itself is allowed."""
    found = by_accessor.get(dotted)
    if found is None:
        head, _, member = dotted.rpartition(".")
        if member in _ACCESSOR_MEMBERS:
            found = by_accessor.get(head)
    return found


def _plugin_ids(node: Node) -> Iterator[tuple[str, int]]:
    """Plugin ids applied by this node: ``id 'x'``/``id("x")`` in plugins {}, ``apply plugin: 'x'``."""
    if isinstance(node, Call) and node.name == "plugins" and node.body is not None:
        for item in node.body:
            yield from _plugin_entry(item)
    elif isinstance(node, Call) and node.name == "apply" and node.receiver is None:
        value = dict(node.named).get("plugin")
        if isinstance(value, Str):
            yield value.text, node.line


def _plugin_entry(item: Node) -> Iterator[tuple[str, int]]:
    if isinstance(item, Call) and item.name in ("version", "apply") and isinstance(item.receiver, Call):
        yield from _plugin_entry(item.receiver)
    elif isinstance(item, Call) and item.name == "id":
        ids = syntax.strings(item.arg("id"))
        if ids:
            yield ids[0].text, item.line
    elif isinstance(item, Call) and item.name == "kotlin":
        ids = syntax.strings(item.arg("module"))
        if ids:
            yield f"org.jetbrains.kotlin.{ids[0].text}", item.line
    elif isinstance(item, Ref) and item.receiver is None:
        yield item.name, item.line


def _coordinate(node: Node) -> tuple[str, str] | None:
    """``'g:n:v'`` or ``group: 'g', name: 'n'`` as the argument of a dependency declaration."""
    if not isinstance(node, Call) or node.receiver is not None or node.name in ("project", "id", "include", "plugins"):
        return None
    named = dict(node.named)
    group, name = named.get("group"), named.get("name")
    if isinstance(group, Str) and isinstance(name, Str):
        return group.text, name.text
    if len(node.args) == 1 and isinstance(node.args[0], Str):
        match = _COORDINATE.match(node.args[0].text)
        if match and "/" not in node.args[0].text:
            return match.group(1), match.group(2)
    return None
