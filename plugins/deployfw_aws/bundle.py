"""Revision bundles: a folder packed into a zip CodeDeploy deploys to EC2 and on-premises instances.

The zip is *reproducible*: the same files give the same bytes, hence the same S3 ETag, on any
machine and in any checkout. That is what lets the ``s3`` registry reuse a bundle the way
``ecr`` reuses an image (content key -> no rebuild, same ETag), and what makes "which revision
runs on that server" answerable by comparing ETags. So:

- entries are sorted by path and carry no directory entries;
- every entry has the same timestamp (1980-01-01, the earliest a zip can hold) - a checkout's
  file times say when it was checked out, not what is in it;
- modes are the two git records: ``0755`` when the file is executable, else ``0644`` (umask,
  owner and group never enter);
- ``appspec.yml`` is at the root (``--appspec FILE`` puts another file there under that name).

Packing checks the AppSpec against the very entries being packed (:mod:`.server_appspec`),
so a bundle whose hook script is missing or not executable is never uploaded.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

from deployfw.errors import InputError, Problem
from deployfw_aws import server_appspec
from deployfw_aws.server_appspec import APPSPEC_NAME, ServerAppSpec

FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_SKIP = frozenset({".git", "__pycache__"})


@dataclass(frozen=True)
class Entry:
    name: str  # path inside the bundle, "/"-separated
    source: Path
    executable: bool


class FolderView:
    """A bundle seen as the folder it is packed from (``plan`` checks the module's bundle folder)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, path: str) -> Path:
        return self.root / path if path else self.root

    def is_file(self, path: str) -> bool:
        return bool(path) and self._path(path).is_file()

    def is_dir(self, path: str) -> bool:
        return self._path(path).is_dir()

    def is_executable(self, path: str) -> bool:
        return _executable(self._path(path))


class EntriesView:
    """A bundle seen as the entries being zipped."""

    def __init__(self, entries: list[Entry]) -> None:
        self._files = {e.name: e for e in entries}
        self._dirs = {""}
        for name in self._files:
            parts = name.split("/")
            self._dirs.update("/".join(parts[:n]) for n in range(1, len(parts)))

    def is_file(self, path: str) -> bool:
        return path in self._files

    def is_dir(self, path: str) -> bool:
        return path in self._dirs

    def is_executable(self, path: str) -> bool:
        entry = self._files.get(path)
        return entry is not None and entry.executable


@dataclass(frozen=True)
class Bundle:
    data: bytes
    spec: ServerAppSpec
    entries: tuple[str, ...]

    @property
    def md5(self) -> str:
        """What S3 returns as the ETag of a single-part upload of these bytes."""
        return hashlib.md5(self.data, usedforsecurity=False).hexdigest()

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _executable(path: Path) -> bool:
    try:
        return path.is_file() and bool(path.stat().st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH))
    except OSError:
        return False


def collect(folder: Path, appspec: Path | None = None) -> list[Entry]:
    """The entries of a bundle packed from ``folder`` (``appspec`` replaces its ``appspec.yml``)."""
    if not folder.is_dir():
        raise InputError(Problem(str(folder), None, None, "bundle folder not found"))
    entries: dict[str, Entry] = {}
    for directory, subdirs, files in os.walk(folder, followlinks=False):
        subdirs[:] = sorted(d for d in subdirs if d not in _SKIP)
        base = Path(directory)
        for name in files:
            path = base / name
            relative = path.relative_to(folder).as_posix()
            if path.is_symlink() and not path.resolve().is_relative_to(folder.resolve()):
                raise InputError(Problem(str(path), None, None, "a symlink out of the bundle folder cannot be packed"))
            if path.is_file():
                entries[relative] = Entry(relative, path, _executable(path))
    if appspec is not None:
        if not appspec.is_file():
            raise InputError(Problem(str(appspec), None, None, "AppSpec file not found"))
        entries[APPSPEC_NAME] = Entry(APPSPEC_NAME, appspec, False)
    return [entries[name] for name in sorted(entries)]


def appspec_of(entries: list[Entry], label: str) -> ServerAppSpec:
    """The checked AppSpec at the root of ``entries`` (InputError with file/line/key otherwise)."""
    found = next((e for e in entries if e.name == APPSPEC_NAME), None)
    if found is None:
        raise InputError(Problem(label, None, None, f"no {APPSPEC_NAME} at the root of the bundle"))
    try:
        text = found.source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(Problem(str(found.source), None, None, f"cannot read the AppSpec: {exc}")) from None
    return server_appspec.checked(text, _display(found.source), EntriesView(entries))


def pack(folder: Path, appspec: Path | None = None) -> Bundle:
    """Check and zip ``folder`` reproducibly (see the module docstring)."""
    entries = collect(folder, appspec)
    spec = appspec_of(entries, str(folder))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for entry in entries:
            info = zipfile.ZipInfo(entry.name, date_time=FIXED_TIME)
            info.create_system = 3  # unix: the mode bits below are read
            info.external_attr = ((0o100755 if entry.executable else 0o100644) & 0xFFFF) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, entry.source.read_bytes(), compresslevel=9)
    return Bundle(out.getvalue(), spec, tuple(e.name for e in entries))


def _display(path: Path) -> str:
    """A path as the user gave it relative to here, when it is below the working directory."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)
