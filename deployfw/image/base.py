"""Read a base image from disk: an OCI image layout (directory or ``oci-archive`` tarball)
or a ``docker save`` tarball.

Layers stay where they are on disk and are streamed when pushed; only the
small JSON documents are parsed. Uncompressed layers (what ``docker save``
writes) are gzipped reproducibly, because the registry and ECS expect
compressed layers; their ``diff_id`` does not change by that.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from deployfw.errors import InputError

from .blobs import (
    GZIP_LAYER_TYPES,
    INDEX_TYPES,
    MANIFEST_TYPES,
    OCI_LAYER_GZIP,
    OCI_LAYER_TAR,
    TAR_LAYER_TYPES,
    Blob,
    gzip_reproducibly,
)

PLATFORM = ("linux", "amd64")


@dataclass(frozen=True)
class BaseImage:
    """The parts of a base image a new image builds on: its config and its layers, in order."""

    config: dict[str, Any]
    layers: tuple[Blob, ...]


class _Source:
    """Named files of a layout, whether in a directory or inside a tarball."""

    def __init__(self, origin: Path) -> None:
        self.origin = origin
        self._tar: tarfile.TarFile | None = None
        self._members: dict[str, tarfile.TarInfo] = {}
        self._seekable = False
        if origin.is_file():
            try:
                self._tar = tarfile.open(origin)  # noqa: SIM115 - closed by close()
                self._members = {str(PurePosixPath(m.name)): m for m in self._tar.getmembers() if m.isfile()}
                # Members of an uncompressed tarball can be streamed in place later.
                self._seekable = not _compressed(origin)
            except (tarfile.TarError, OSError) as exc:
                raise InputError(f"{origin}: not a readable image tarball ({exc})") from None

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()

    def exists(self, name: str) -> bool:
        if self._tar is not None:
            return name in self._members
        return (self.origin / name).is_file()

    def read(self, name: str) -> bytes:
        try:
            if self._tar is not None:
                fh = self._tar.extractfile(self._members[name])
                assert fh is not None
                return fh.read()
            return (self.origin / name).read_bytes()
        except (KeyError, OSError, tarfile.TarError):
            raise InputError(f"{self.origin}: missing or unreadable {name}") from None

    def json(self, name: str) -> Any:
        try:
            return json.loads(self.read(name))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"{self.origin}: {name} is not valid JSON ({exc})") from None

    def blob(self, name: str, media_type: str, digest: str, size: int | None) -> Blob:
        """A blob for file ``name``, streamed from disk where that is possible."""
        if self._tar is not None:
            member = self._members.get(name)
            if member is None:
                raise InputError(f"{self.origin}: missing {name}")
            actual = member.size
            if self._seekable:
                blob = Blob(media_type, digest, actual, path=self.origin, offset=member.offset_data)
            else:
                blob = Blob(media_type, digest, actual, data=self.read(name))
        else:
            path = self.origin / name
            if not path.is_file():
                raise InputError(f"{self.origin}: missing {name}")
            actual = path.stat().st_size
            blob = Blob(media_type, digest, actual, path=path)
        if size is not None and size != actual:
            raise InputError(f"{self.origin}: {name} is {actual} bytes, its descriptor says {size}")
        return blob


def _compressed(path: Path) -> bool:
    with open(path, "rb") as fh:
        magic = fh.read(6)
    return magic[:2] == b"\x1f\x8b" or magic[:3] == b"BZh" or magic == b"\xfd7zXZ\x00"


def load_base(path: Path, platform: tuple[str, str] = PLATFORM) -> BaseImage:
    """Load the base image at ``path``; any problem with it is bad input (exit 2)."""
    if not path.exists():
        raise InputError(f"{path}: base image not found")
    source = _Source(path)
    try:
        if source.exists("index.json"):
            return _from_layout(source, platform)
        if source.exists("manifest.json"):
            return _from_docker_save(source)
        raise InputError(f"{path}: neither an OCI image layout (index.json) nor a docker-save tarball (manifest.json)")
    finally:
        source.close()


def _blob_name(digest: str) -> str:
    algo, _, hexpart = str(digest).partition(":")
    if not hexpart or "/" in hexpart or algo != "sha256":
        raise InputError(f"unsupported digest {digest!r}")
    return f"blobs/{algo}/{hexpart}"


def _from_layout(source: _Source, platform: tuple[str, str]) -> BaseImage:
    descriptor = _pick(source, source.json("index.json"), platform)
    try:
        manifest = source.json(_blob_name(descriptor["digest"]))
        config = source.json(_blob_name(manifest["config"]["digest"]))
        layers = [
            _compress_if_needed(source.blob(_blob_name(d["digest"]), d["mediaType"], d["digest"], d.get("size")))
            for d in manifest["layers"]
        ]
    except (KeyError, TypeError) as exc:
        raise InputError(f"{source.origin}: malformed manifest or descriptor ({exc})") from None
    return _checked(source, config, layers)


def _pick(source: _Source, index: Any, platform: tuple[str, str]) -> dict[str, Any]:
    """The image manifest descriptor for ``platform``, descending through nested indexes."""
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not manifests:
        raise InputError(f"{source.origin}: index.json lists no manifests")
    if len(manifests) > 1:
        wanted = [
            m
            for m in manifests
            if (m.get("platform") or {}).get("os") == platform[0]
            and (m.get("platform") or {}).get("architecture") == platform[1]
        ]
        if len(wanted) != 1:
            raise InputError(
                f"{source.origin}: {len(manifests)} manifests and not exactly one for {platform[0]}/{platform[1]}"
            )
        manifests = wanted
    chosen: dict[str, Any] = manifests[0]
    media_type = chosen.get("mediaType")
    if media_type in INDEX_TYPES:
        return _pick(source, source.json(_blob_name(chosen["digest"])), platform)
    if media_type not in MANIFEST_TYPES:
        raise InputError(f"{source.origin}: unsupported manifest media type {media_type!r}")
    return chosen


def _from_docker_save(source: _Source) -> BaseImage:
    entries = source.json("manifest.json")
    if not isinstance(entries, list) or len(entries) != 1 or not isinstance(entries[0], dict):
        raise InputError(f"{source.origin}: manifest.json must describe exactly one image")
    entry = entries[0]
    if not isinstance(entry.get("Config"), str):
        raise InputError(f"{source.origin}: manifest.json names no Config")
    config = source.json(entry["Config"])
    layers = []
    for name in entry.get("Layers") or []:
        probe = source.blob(name, OCI_LAYER_TAR, "", None)
        if next(probe.chunks(2), b"") == b"\x1f\x8b":
            layers.append(replace(probe, media_type=OCI_LAYER_GZIP, digest=_digest_of(probe)))
        else:
            layers.append(_compress_if_needed(probe))
    return _checked(source, config, layers)


def _digest_of(blob: Blob) -> str:
    h = hashlib.sha256()
    for piece in blob.chunks():
        h.update(piece)
    return "sha256:" + h.hexdigest()


def _compress_if_needed(blob: Blob) -> Blob:
    if blob.media_type in GZIP_LAYER_TYPES or blob.media_type not in TAR_LAYER_TYPES:
        return blob
    return Blob.from_bytes(OCI_LAYER_GZIP, gzip_reproducibly(blob.read()))


def _checked(source: _Source, config: Any, layers: list[Blob]) -> BaseImage:
    if not isinstance(config, dict):
        raise InputError(f"{source.origin}: image config is not a JSON object")
    diff_ids = (config.get("rootfs") or {}).get("diff_ids")
    if not isinstance(diff_ids, list) or len(diff_ids) != len(layers):
        raise InputError(f"{source.origin}: config rootfs.diff_ids does not match the {len(layers)} layers")
    return BaseImage(config=config, layers=tuple(layers))
