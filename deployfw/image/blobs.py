"""Content-addressed blobs, media types and the canonical JSON the digests are taken over.

A blob is either bytes in memory (what deployfw builds itself: the app layer,
the config, the manifest) or a byte range of a file on disk (a base image's
layers, which can be hundreds of megabytes and are only ever streamed).
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
GZIP_LAYER_TYPES = frozenset({OCI_LAYER_GZIP, DOCKER_LAYER_GZIP})
TAR_LAYER_TYPES = frozenset({OCI_LAYER_TAR, DOCKER_LAYER_TAR})

_CHUNK = 1024 * 1024


def sha256_digest(data: bytes) -> str:
    """The ``sha256:<hex>`` digest registries and the OCI spec address content by."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(value: Any) -> bytes:
    """Serialize with sorted keys and no whitespace, so equal documents hash equally."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def gzip_reproducibly(data: bytes, level: int = 6) -> bytes:
    """Gzip with a fixed header (no name, mtime 0, OS "unknown").

    ``gzip.compress`` lets zlib write the header, whose OS byte depends on the
    platform; writing it here keeps the layer digest the same on every host
    that has the same zlib.
    """
    xfl = 2 if level == 9 else 4 if level == 1 else 0
    header = b"\x1f\x8b\x08\x00" + struct.pack("<L", 0) + bytes([xfl, 255])
    body = zlib.compress(data, level=level, wbits=-15)
    trailer = struct.pack("<LL", zlib.crc32(data), len(data) & 0xFFFFFFFF)
    return header + body + trailer


@dataclass(frozen=True)
class Blob:
    """One content-addressed blob: a layer, a config, or a manifest.

    Exactly one of ``data`` and ``path`` holds the bytes; with ``path`` they are
    ``size`` bytes starting at ``offset`` (a member inside an uncompressed tarball
    is addressed this way, so it is never copied).
    """

    media_type: str
    digest: str
    size: int
    data: bytes | None = None
    path: Path | None = None
    offset: int = 0

    @classmethod
    def from_bytes(cls, media_type: str, data: bytes) -> Blob:
        """A blob held in memory, its digest computed from the bytes."""
        return cls(media_type, sha256_digest(data), len(data), data=data)

    @property
    def descriptor(self) -> dict[str, Any]:
        """The OCI descriptor that references this blob from a manifest or index."""
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}

    @property
    def hex(self) -> str:
        """The digest without its algorithm prefix (the file name in an OCI layout)."""
        return self.digest.split(":", 1)[1]

    def chunks(self, size: int = _CHUNK) -> Iterator[bytes]:
        """Yield the blob's bytes in pieces of at most ``size`` (the last may be shorter)."""
        if self.data is not None:
            for start in range(0, len(self.data), size):
                yield self.data[start : start + size]
            return
        assert self.path is not None
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            remaining = self.size
            while remaining > 0:
                piece = fh.read(min(size, remaining))
                if not piece:
                    raise OSError(f"{self.path}: truncated blob {self.digest}")
                remaining -= len(piece)
                yield piece

    def read(self) -> bytes:
        """All bytes at once; meant for small blobs (configs, manifests)."""
        if self.data is not None:
            return self.data
        return b"".join(self.chunks())
