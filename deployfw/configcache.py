"""The parsed-config cache: a validated modules.yaml read back instead of parsed again.

Composing a large modules.yaml with PyYAML, validating it (backend sections
included, which needs the plugin manager) and reading a build graph cost most of
``deployfw detect``'s time, and the answer only changes when one of its inputs
does. An entry in ``.deployfw/cache/`` holds the loaded :class:`Config` and what
it was derived from; it is used only when all of that is unchanged:

* the file's content, by its git blob id, plus the environment, the root and the
  disabled plugins (the entry's name is derived from them);
* deployfw's version and the source files of the code that validated it (the
  config loader and every plugin module that contributed a backend schema), by
  size and modification time, and the modification times of ``sys.path``
  folders, which change when a distribution (a plugin) is installed or removed;
* the module folders: the folders holding them are unchanged (same inode, same
  modification time: nothing was added, removed or renamed in them, so every module
  folder is still there and still a folder), and a module folder that is a symlink
  still leads where it led; every build file a ``graph:`` read, by inode, size and
  modification time. A file modified within
  the two seconds before an entry is written is never trusted (its time stamp
  could hide a second change in the same tick), so such an entry is not written.

Safety: entries are written to a temporary file and renamed into place, so a
reader never sees half an entry and concurrent writers cannot mix theirs; each
entry carries a BLAKE2 digest of its payload and anything that does not match is
ignored (and rewritten); payloads are pickles read with an unpickler that only
builds the config's own classes, so a planted file cannot run code. An edited
third-party plugin installed in editable mode is not noticed until reinstalled;
``DEPLOYFW_NO_CACHE=1`` (or deleting the folder) bypasses the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pickle
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from deployfw import __version__
from deployfw.configmodel import Catalog, Config

CACHE_FOLDER = Path(".deployfw") / "cache"
NO_CACHE_ENV = "DEPLOYFW_NO_CACHE"
KEEP = 16  # newest entries kept; older ones are removed when a new one is written
_MAGIC = b"deployfw-config-cache-1\n"
_RACY_NS = 2_000_000_000
_ALLOWED = {
    ("deployfw.configmodel", "Config"),
    ("deployfw.configmodel", "Module"),
    ("deployfw.configmodel", "Section"),
    ("deployfw.buildgraph", "GraphNote"),
    ("pathlib", "PosixPath"),
    ("pathlib", "PurePosixPath"),
    ("pathlib", "WindowsPath"),
    ("pathlib", "PureWindowsPath"),
    ("datetime", "date"),  # YAML timestamps in option values
    ("datetime", "datetime"),
    ("datetime", "timedelta"),
    ("datetime", "timezone"),
}
# The code whose behaviour decides a load's verdict (besides the plugins, recorded per entry).
_LOADER_MODULES = (
    "deployfw.config",
    "deployfw.configmodel",
    "deployfw.schema",
    "deployfw.yamlsrc",
    "deployfw.graph",
    "deployfw.buildgraph",
    "deployfw.buildgraph.model",
    "deployfw.buildgraph.gradle",
    "deployfw.buildgraph.groovy",
    "deployfw.buildgraph.kotlin",
    "deployfw.buildgraph.maven",
    "deployfw.buildgraph.syntax",
)

Stamp = tuple[str, int, int, int]  # path, inode, size, mtime_ns
CatalogSource = Callable[[], tuple[Catalog, Iterable[str]]]  # the catalog and the files it came from


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not part of a cached config")
        return super().find_class(module, name)


def blob_id(data: bytes) -> str:
    """git's object id of a blob with this content (what ``git hash-object`` prints)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def _stamp(path: str) -> Stamp | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (path, st.st_ino, st.st_size, st.st_mtime_ns)


def _module_files(names: Iterable[str]) -> list[str]:
    files = []
    for name in names:
        module = sys.modules.get(name)
        origin = getattr(module, "__file__", None)
        if origin:
            files.append(origin)
    return sorted(set(files))


def _path_folders(root: Path) -> list[tuple[str, int]]:
    """``sys.path`` folders and their modification times, except the script's and the repository's.

    ``sys.path[0]`` is the folder of the script that started Python (a console script's
    ``bin``, or the current folder for ``python -c``/``-m``): it differs between ways of
    starting deployfw and holds no installed distribution. Writing the cache into the
    repository changes the repository folder's time; what is installed lives elsewhere.
    """
    folders = []
    inside = str(root).rstrip("/") + "/"
    for entry in sys.path[1:]:
        absolute = os.path.abspath(entry or ".")
        if absolute == str(root) or absolute.startswith(inside):
            continue
        with contextlib.suppress(OSError):
            st = os.stat(absolute)
            if stat.S_ISDIR(st.st_mode):
                folders.append((absolute, st.st_mtime_ns))
    return folders


def _folder_facts(root: Path, paths: Iterable[str]) -> list[tuple[str, int, int, str | None]] | None:
    """``(folder, inode, mtime_ns, symlink target)`` of every module folder's parent, and of symlinked modules.

    A parent's time stamp changes whenever an entry in it is added, removed or renamed,
    so unchanged parents mean unchanged module folders, at one ``stat`` per parent rather
    than one per module. None when a folder is missing (the full load reports it).
    """
    base = str(root)
    facts: dict[str, tuple[str, int, int, str | None]] = {}
    for rel in paths:
        parent = rel.rpartition("/")[0]
        for folder in (parent, rel):
            if folder in facts:
                continue
            full = f"{base}/{folder}" if folder else base
            try:
                st = os.lstat(full)
            except OSError:
                return None
            if folder == rel:  # the module folder itself matters only when it is a symlink
                if stat.S_ISLNK(st.st_mode):
                    facts[folder] = (folder, st.st_ino, st.st_mtime_ns, os.path.realpath(full))
                continue
            facts[folder] = (folder, st.st_ino, st.st_mtime_ns, None)
    return sorted(facts.values())


class ConfigCache:
    """Entries for the configs of one repository, in ``ROOT/.deployfw/cache``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.folder = root / CACHE_FOLDER

    @staticmethod
    def enabled() -> bool:
        return os.environ.get(NO_CACHE_ENV, "") in ("", "0")

    def key(self, text: bytes, path: Path, env: str | None, disabled: Iterable[str]) -> str:
        parts = [__version__, blob_id(text), str(path), str(self.root), env or "", ",".join(sorted(disabled))]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:40]

    # -- reading ---------------------------------------------------------------------------------

    def get(self, key: str) -> Config | None:
        try:
            raw = (self.folder / f"{key}.bin").read_bytes()
        except OSError:
            return None
        entry = self._decode(raw)
        if entry is None or not self._still_valid(entry):
            return None
        config = entry.get("config")
        return config if isinstance(config, Config) else None

    @staticmethod
    def _decode(raw: bytes) -> dict | None:
        if not raw.startswith(_MAGIC) or len(raw) < len(_MAGIC) + 32:
            return None
        digest, payload = raw[len(_MAGIC) : len(_MAGIC) + 32], raw[len(_MAGIC) + 32 :]
        if hashlib.blake2b(payload, digest_size=32).digest() != digest:
            return None
        try:
            entry = _Unpickler(io.BytesIO(payload)).load()
        except Exception:  # a damaged or foreign entry is a miss, never an error
            return None
        return entry if isinstance(entry, dict) else None

    def _still_valid(self, entry: dict) -> bool:
        if entry.get("version") != __version__ or entry.get("python") != sys.version:
            return False
        if entry.get("path_folders") != _path_folders(self.root):
            return False
        for recorded in entry.get("sources", ()):
            if _stamp(recorded[0]) != tuple(recorded):
                return False
        for recorded in entry.get("inputs", ()):
            if _stamp(str(self.root / recorded[0])) != (str(self.root / recorded[0]), *recorded[1:]):
                return False
        folders = entry.get("folders")
        return folders is not None and _folder_facts(self.root, entry.get("module_paths", ())) == folders

    # -- writing ---------------------------------------------------------------------------------

    def put(self, key: str, config: Config, plugin_files: Iterable[str]) -> None:
        """Store ``config``; silently skipped when anything it depends on is too fresh to trust."""
        now = time.time_ns()
        inputs = []
        for rel in config.graph_inputs:
            found = _stamp(str(self.root / rel))
            if found is None or found[3] > now - _RACY_NS:
                return
            inputs.append((rel, *found[1:]))
        paths = sorted(m.path for m in config.modules.values())
        folders = _folder_facts(self.root, paths)
        if folders is None or any(f[2] > now - _RACY_NS for f in folders):
            return
        sources = [s for s in (_stamp(f) for f in sorted({*_module_files(_LOADER_MODULES), *plugin_files})) if s]
        entry = {
            "version": __version__,
            "python": sys.version,
            "path_folders": _path_folders(self.root),
            "sources": sources,
            "inputs": inputs,
            "module_paths": paths,
            "folders": folders,
            "config": config,
        }
        payload = pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL)
        data = _MAGIC + hashlib.blake2b(payload, digest_size=32).digest() + payload
        with contextlib.suppress(OSError):  # a read-only checkout still works, just without the cache
            self._write(key, data)

    def _write(self, key: str, data: bytes) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        ignore = self.folder.parent / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# created by deployfw: local state and caches, never committed\n*\n")
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, self.folder / f"{key}.bin")
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self._prune()

    def _prune(self) -> None:
        entries = []
        for item in self.folder.glob("*.bin"):
            with contextlib.suppress(OSError):
                entries.append((item.stat().st_mtime_ns, item))
        for _, item in sorted(entries, reverse=True)[KEEP:]:
            with contextlib.suppress(OSError):
                item.unlink()


def load(
    path: Path,
    *,
    root: Path,
    env: str | None,
    catalog: CatalogSource,
    disabled: Iterable[str] = (),
) -> Config:
    """The validated config of ``path`` (backends included), from the cache when nothing changed."""
    from deployfw.errors import InputError, Problem

    disabled = tuple(disabled)
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise InputError(Problem(_display(path, root), None, None, "file not found")) from None
    except OSError as exc:
        raise InputError(Problem(_display(path, root), None, None, f"cannot read: {exc}")) from None
    cache = ConfigCache(root) if ConfigCache.enabled() else None
    key = cache.key(text, path.resolve(), env, disabled) if cache else ""
    if cache is not None:
        found = cache.get(key)
        if found is not None:
            return found
    from deployfw.config import load_config

    schemas, plugin_files = catalog()
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(Problem(_display(path, root), None, None, f"cannot read: {exc}")) from None
    config = load_config(path, env=env, catalog=schemas, root=root, text=decoded)
    if cache is not None:
        cache.put(key, config, plugin_files)
    return config


def _display(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return str(path)
