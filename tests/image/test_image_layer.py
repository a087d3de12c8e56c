"""The app layer is a reproducible tarball: sorted, owned by root, fixed times and modes."""

from __future__ import annotations

import gzip
import io
import os
import socket
import tarfile
from pathlib import Path
from typing import Any

import pytest

from deployfw.errors import InputError
from deployfw.image.blobs import gzip_reproducibly
from deployfw.image.layer import build_layer


def _members(compressed: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(compressed))) as tar:
        return tar.getmembers()


def test_entries_are_sorted_and_normalized(app_dir: Path) -> None:
    os.symlink("main.py", app_dir / "link.py")
    members = _members(build_layer(app_dir).compressed)
    names = [m.name for m in members]
    assert names == [
        "link.py",
        "main.py",
        "pkg",
        "pkg-data",  # byte order of full names: "-" < "/"; parents still precede children
        "pkg-data/a.txt",
        "pkg/__init__.py",
        "pkg/z.txt",
        "run.sh",
    ]
    for m in members:
        assert (m.uid, m.gid, m.uname, m.gname, m.mtime) == (0, 0, "", "", 0)
        assert not m.pax_headers
    modes = {m.name: m.mode for m in members}
    assert modes["pkg"] == 0o755
    assert modes["main.py"] == 0o644
    assert modes["run.sh"] == 0o755  # any exec bit -> 0755, group/other bits normalized
    link = next(m for m in members if m.name == "link.py")
    assert link.issym() and link.linkname == "main.py" and link.mode == 0o777


def test_destination_prefix_and_epoch(app_dir: Path) -> None:
    members = _members(build_layer(app_dir, destination="/srv/app", epoch=1700000000).compressed)
    assert [m.name for m in members][:3] == ["srv", "srv/app", "srv/app/main.py"]
    assert {m.mtime for m in members} == {1700000000}


def test_disk_mtimes_and_owners_do_not_change_the_digest(app_dir: Path) -> None:
    first = build_layer(app_dir)
    for path in app_dir.rglob("*"):
        os.utime(path, (123456789, 123456789), follow_symlinks=False)
    (app_dir / "main.py").chmod(0o600)  # permission bits other than exec are normalized away
    second = build_layer(app_dir)
    assert first == second


def test_content_change_changes_the_digest(app_dir: Path) -> None:
    before = build_layer(app_dir)
    (app_dir / "pkg" / "z.txt").write_text("zz")
    assert build_layer(app_dir).diff_id != before.diff_id


def test_diff_id_is_sha256_of_the_uncompressed_tar(app_dir: Path) -> None:
    import hashlib

    layer = build_layer(app_dir)
    raw = gzip.decompress(layer.compressed)
    assert layer.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()


def test_gzip_header_is_fixed() -> None:
    data = gzip_reproducibly(b"x" * 1000)
    assert data[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # no name, mtime 0, OS unknown
    assert gzip.decompress(data) == b"x" * 1000


def test_missing_dir_and_special_files_are_input_errors(tmp_path: Path, tree: Any) -> None:
    with pytest.raises(InputError, match="not a directory"):
        build_layer(tmp_path / "nope")
    ctx = tree(tmp_path / "ctx", {"a": "a"})
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(ctx / "s.sock"))
        with pytest.raises(InputError, match=r"s\.sock"):
            build_layer(ctx)
    finally:
        sock.close()
