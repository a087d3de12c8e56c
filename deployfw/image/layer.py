"""Pack a directory into one reproducible layer tarball.

Everything that varies between checkouts of the same content is fixed here:
entries are sorted by name, every mtime is the build epoch, owners are 0/0
with empty names, modes are normalized (0755 for directories and executables,
0644 for other files, 0777 for symlinks), and entries never carry pax time
headers. So two CI agents with the same files produce the same ``diff_id``.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from deployfw.errors import InputError

from .blobs import gzip_reproducibly


@dataclass(frozen=True)
class Layer:
    """A built layer: gzip bytes for the registry and the uncompressed digest for the config."""

    compressed: bytes
    diff_id: str
    entries: int


def build_layer(context: Path, *, destination: str = "/", epoch: int = 0) -> Layer:
    """Tar ``context`` under ``destination`` in the image, reproducibly, and gzip it."""
    if not context.is_dir():
        raise InputError(f"{context}: not a directory")
    prefix = PurePosixPath(destination).relative_to("/")
    buf = io.BytesIO()
    count = 0
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        parts = prefix.parts
        for i in range(len(parts)):
            tar.addfile(_dir_info(str(PurePosixPath(*parts[: i + 1])), epoch))
            count += 1
        for rel, path in _walk(context):
            name = str(prefix / rel) if parts else rel
            count += _add(tar, path, name, epoch)
    raw = buf.getvalue()
    return Layer(gzip_reproducibly(raw), "sha256:" + hashlib.sha256(raw).hexdigest(), count)


def _walk(root: Path) -> list[tuple[str, Path]]:
    """Every path under ``root`` (not following symlinks), sorted by its POSIX name."""
    found: list[tuple[str, Path]] = []
    try:
        for dirpath, dirnames, filenames in os.walk(root, onerror=_raise):
            base = Path(dirpath)
            for name in dirnames + filenames:
                path = base / name
                found.append((path.relative_to(root).as_posix(), path))
    except OSError as exc:
        raise InputError(f"{exc.filename}: cannot read ({exc.strerror})") from None
    # Sorting full names keeps every directory before its contents ("a" < "a/b").
    found.sort(key=lambda item: item[0].encode())
    return found


def _raise(exc: OSError) -> None:
    raise exc


def _dir_info(name: str, epoch: int) -> tarfile.TarInfo:
    info = _info(name, epoch)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    return info


def _info(name: str, epoch: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime = epoch  # an int, so tarfile writes no pax mtime record
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _add(tar: tarfile.TarFile, path: Path, name: str, epoch: int) -> int:
    try:
        st = path.lstat()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        tar.addfile(_dir_info(name, epoch))
        return 1
    info = _info(name, epoch)
    if stat.S_ISLNK(st.st_mode):
        info.type = tarfile.SYMTYPE
        info.mode = 0o777
        info.linkname = os.readlink(path)
        tar.addfile(info)
        return 1
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{path}: not a regular file, directory or symlink; cannot go in an image")
    info.mode = 0o755 if st.st_mode & 0o111 else 0o644
    try:
        with open(path, "rb") as fh:
            info.size = os.fstat(fh.fileno()).st_size
            tar.addfile(info, fh)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    return 1
