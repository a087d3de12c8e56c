"""What reading a build tool's files yields: projects, references between them, and notes.

Every location is a path relative to the folder of modules.yaml (the config root)
plus a line, so a reason or a note can point at the exact build file line.
Projects are keyed by their folder: deployfw maps them to modules by path.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Project:
    """One Gradle project or Maven module."""

    dir: str  # folder, relative to the config root ('' is the root itself; may start with '../')
    name: str  # ':services:user-api' for Gradle, 'groupId:artifactId' for Maven
    build_file: str | None  # the file that declares its dependencies, when there is one
    coordinates: tuple[str, str] | None = None  # (group, name) other builds can depend on
    application: str | None = None  # why it is a runnable application, when it is one
    aggregator: bool = False  # a Maven parent/aggregator POM (packaging pom): builds nothing itself


@dataclass(frozen=True)
class Reference:
    """``source`` depends on ``target`` because of ``file`` line ``line``."""

    source: str  # project dir
    target: str  # project dir
    file: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Note:
    """Something the static reading cannot be sure of; said, never guessed."""

    file: str
    line: int | None
    message: str
    project: str | None = None  # project dir it concerns, when one

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass
class BuildGraph:
    """The project graph of one build (with its included builds)."""

    tool: str
    root: str  # folder of the settings file / root POM, relative to the config root
    projects: dict[str, Project] = field(default_factory=dict)
    references: list[Reference] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)  # every file read, relative to the config root
    shared: list[str] = field(default_factory=list)  # build logic every project uses (root build files, buildSrc)
