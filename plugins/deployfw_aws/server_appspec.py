"""The AppSpec of an EC2/on-premises revision, checked the way the CodeDeploy agent reads it - and stricter.

A bad server AppSpec costs a whole deployment when CodeDeploy finds it: the bundle is
built, uploaded, a deployment created, and only then does the agent on the first
instance refuse it (or, worse, run nothing because a hook name was misspelt). This
module reads the AppSpec with line tracking and reports, before any AWS call, every
problem with file, line and key:

- what the agent refuses: ``version`` other than the number ``0.0``, ``os`` other than
  ``linux``/``windows``, a ``files`` entry without ``source`` or ``destination``, a script
  without ``location``, a timeout that is not a positive number of seconds, an unknown
  ``file_exists_behavior``, ``permissions`` on Windows;
- what fails on the instance: a ``files`` source or a hook script that is not in the
  bundle, a script that is not executable, scripts of one lifecycle event whose timeouts add
  up to more than CodeDeploy's 3600 seconds per event, a relative ``destination``;
- what silently does nothing: a hook name that is not an EC2/on-premises lifecycle event
  (an ECS name, a typo), one reserved for the agent (``DownloadBundle``, ``Install``,
  ``BlockTraffic``, ``AllowTraffic``), an unknown top-level key, hooks listed in an order
  other than the one they run in (they always run in lifecycle order), a ``runas`` that
  names no user.

The bundle is seen through :class:`BundleView` (a folder when ``plan`` checks the source,
the entries being zipped when ``deployfw bundle build`` packs it), so both check the same.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from deployfw.errors import InputError, Problem
from deployfw.serverspec import (
    APPSPEC_NAME,
    FILE_EXISTS_BEHAVIORS,
    LIFECYCLE_ORDER,
    MAX_EVENT_SECONDS,
    RESERVED,
    SCRIPTABLE,
)
from deployfw.yamlsrc import Document, KeyPath, parse

ECS_OR_LAMBDA_ONLY = frozenset({"AfterAllowTestTraffic"})
FILE_EXISTS = FILE_EXISTS_BEHAVIORS
TOP_LEVEL = ("version", "os", "files", "permissions", "hooks", "file_exists_behavior")
_USER = re.compile(r"^[a-z_][a-z0-9_.-]*\$?$", re.IGNORECASE)


class BundleView(Protocol):
    """What the checks need to know about the bundle's content (paths relative to its root)."""

    def is_file(self, path: str) -> bool: ...

    def is_dir(self, path: str) -> bool: ...

    def is_executable(self, path: str) -> bool: ...


@dataclass(frozen=True)
class Script:
    event: str
    location: str
    timeout: int = MAX_EVENT_SECONDS
    runas: str | None = None


@dataclass(frozen=True)
class FileMapping:
    source: str
    destination: str


@dataclass(frozen=True)
class ServerAppSpec:
    """The parts of an AppSpec the deploy and the sandbox's agent act on."""

    os: str
    files: tuple[FileMapping, ...] = ()
    hooks: Mapping[str, tuple[Script, ...]] = field(default_factory=dict)
    file_exists_behavior: str | None = None

    def scripts(self) -> list[Script]:
        return [s for event in LIFECYCLE_ORDER for s in self.hooks.get(event, ())]


def bundle_path(location: str) -> str:
    """A ``source`` or script ``location`` as a path inside the bundle (CodeDeploy joins it to the root)."""
    return location.strip().lstrip("/").rstrip("/")


def load(text: str, file: str) -> Document:
    """Parse the AppSpec text; a YAML syntax error is bad input naming the file and line."""
    return parse(text, file, strict=False)


def check(doc: Document, bundle: BundleView) -> tuple[ServerAppSpec | None, list[Problem]]:
    """Every problem with ``doc`` against the content of ``bundle``; the spec when there is none."""
    problems: list[Problem] = list(doc.problems)
    data = doc.data

    def fail(path: KeyPath, message: str) -> None:
        problems.append(doc.problem(path, message))

    if data is None:
        fail((), "the AppSpec is empty; it needs at least `version: 0.0` and `os: linux`")
        return None, problems
    if not isinstance(data, dict):
        fail((), "the AppSpec must be a mapping of keys (version, os, files, hooks)")
        return None, problems
    if "Resources" in data or "Hooks" in data:
        fail(("Resources",) if "Resources" in data else ("Hooks",),
             "this is an ECS or Lambda AppSpec (Resources/Hooks); an EC2/on-premises revision needs "
             "version, os, files and hooks")  # fmt: skip
    for key in data:
        if key not in TOP_LEVEL and key not in ("Resources", "Hooks"):
            fail((key,), f"unknown key; valid keys: {', '.join(TOP_LEVEL)}")
    version = data.get("version")
    if "version" not in data:
        fail((), "missing `version: 0.0`")
    elif isinstance(version, bool) or not isinstance(version, (int, float)) or version != 0.0:
        fail(("version",), f"must be the number 0.0 (the only AppSpec version CodeDeploy knows), not {version!r}")
    os_name = data.get("os")
    if "os" not in data:
        fail((), "missing `os` (linux or windows)")
    elif os_name not in ("linux", "windows"):
        fail(("os",), f"must be linux or windows, not {os_name!r}")
    behavior = data.get("file_exists_behavior")
    if behavior is not None and behavior not in FILE_EXISTS:
        fail(("file_exists_behavior",), f"must be one of {', '.join(FILE_EXISTS)}, not {behavior!r}")
    if data.get("permissions") and os_name == "windows":
        fail(("permissions",), "permissions apply to Linux instances only; CodeDeploy refuses them on Windows")
    files = _files(data.get("files"), bundle, fail)
    hooks = _hooks(data.get("hooks"), bundle, fail)
    if problems:
        return None, sorted(set(problems), key=lambda p: (p.line or 0, p.key or "", p.message))
    return ServerAppSpec(str(os_name), files, hooks, behavior), []


def _files(value: Any, bundle: BundleView, fail: Any) -> tuple[FileMapping, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        fail(("files",), "must be a list of {source, destination}")
        return ()
    found = []
    for index, entry in enumerate(value):
        path: KeyPath = ("files", index)
        if not isinstance(entry, dict):
            fail(path, "must be a mapping with source and destination")
            continue
        source, destination = entry.get("source"), entry.get("destination")
        if source is None or not str(source).strip():
            fail(path, "has no source (a path in the bundle; / for all of it)")
        elif not (bundle.is_file(bundle_path(str(source))) or bundle.is_dir(bundle_path(str(source)))):
            fail((*path, "source"), f"{source!r} is not in the bundle")
        if destination is None or not str(destination).strip():
            fail(path, "has no destination (an absolute path on the instance)")
        elif not str(destination).startswith("/"):
            fail((*path, "destination"), f"must be an absolute path on the instance, not {destination!r}")
        unknown = [k for k in entry if k not in ("source", "destination")]
        for key in unknown:
            fail((*path, key), "unknown key; valid keys: destination, source")
        if source is not None and destination is not None:
            found.append(FileMapping(bundle_path(str(source)), str(destination)))
    return tuple(found)


def _hooks(value: Any, bundle: BundleView, fail: Any) -> dict[str, tuple[Script, ...]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        fail(("hooks",), "must map lifecycle events to lists of scripts")
        return {}
    hooks: dict[str, tuple[Script, ...]] = {}
    last = -1
    for event, scripts in value.items():
        path: KeyPath = ("hooks", event)
        if event in RESERVED:
            fail(path, f"{event} is performed by the CodeDeploy agent itself; no script can run in it")
            continue
        if event not in SCRIPTABLE:
            hint = " (an ECS/Lambda lifecycle event)" if event in ECS_OR_LAMBDA_ONLY else ""
            fail(path, f"not an EC2/on-premises lifecycle event{hint}; valid: {', '.join(SCRIPTABLE)}")
            continue
        position = LIFECYCLE_ORDER.index(event)
        if position < last:
            fail(path, f"listed after {LIFECYCLE_ORDER[last]} but runs before it; hooks always run in lifecycle "
                       f"order ({' -> '.join(e for e in SCRIPTABLE if e in value)}), list them so")  # fmt: skip
        last = max(last, position)
        if scripts is None:
            continue  # the agent ignores an empty hook
        if not isinstance(scripts, list):
            fail(path, "must be a list of scripts ({location, timeout, runas})")
            continue
        hooks[str(event)] = tuple(_scripts(str(event), scripts, path, bundle, fail))
    return hooks


def _scripts(event: str, scripts: list[Any], path: KeyPath, bundle: BundleView, fail: Any) -> Iterable[Script]:
    total = 0
    for index, entry in enumerate(scripts):
        where: KeyPath = (*path, index)
        if not isinstance(entry, dict) or not str(entry.get("location") or "").strip():
            fail(where, "a script needs a location (its path in the bundle)")
            continue
        location = str(entry["location"]).strip()
        inside = bundle_path(location)
        if not bundle.is_file(inside):
            fail((*where, "location"), f"{location!r} is not in the bundle")
        elif not bundle.is_executable(inside):
            fail((*where, "location"), f"{location!r} is not executable (git update-index --chmod=+x {inside})")
        timeout = entry.get("timeout", MAX_EVENT_SECONDS)
        if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0:
            fail((*where, "timeout"), f"must be a whole number of seconds above 0, not {timeout!r}")
            timeout = 0
        elif timeout > MAX_EVENT_SECONDS:
            fail((*where, "timeout"), f"{timeout} s is more than CodeDeploy allows ({MAX_EVENT_SECONDS} s per event)")
        total += timeout
        runas = entry.get("runas")
        if runas is not None and not (isinstance(runas, str) and _USER.match(runas.strip())):
            fail((*where, "runas"), f"must name a user (e.g. ec2-user), not {runas!r}")
        for key in entry:
            if key not in ("location", "timeout", "runas", "sudo"):
                fail((*where, key), "unknown key; valid keys: location, runas, timeout")
        yield Script(event, inside, int(timeout) or MAX_EVENT_SECONDS, str(runas).strip() if runas else None)
    if total > MAX_EVENT_SECONDS and len(scripts) > 1:
        fail(path, f"the timeouts of its scripts add up to {total} s; CodeDeploy allows {MAX_EVENT_SECONDS} s "
                   "for all scripts of one lifecycle event")  # fmt: skip


def checked(text: str, file: str, bundle: BundleView) -> ServerAppSpec:
    """The AppSpec, or :class:`InputError` with every problem (file, line, key)."""
    spec, problems = check(load(text, file), bundle)
    if problems or spec is None:
        raise InputError(problems or [Problem(file, None, None, "invalid AppSpec")])
    return spec


__all__ = [
    "APPSPEC_NAME",
    "LIFECYCLE_ORDER",
    "MAX_EVENT_SECONDS",
    "BundleView",
    "FileMapping",
    "Script",
    "ServerAppSpec",
    "bundle_path",
    "check",
    "checked",
    "load",
]
