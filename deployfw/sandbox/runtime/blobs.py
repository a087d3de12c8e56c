"""Content-addressed blob storage for the sandbox's registry: what tasks are started from.

ECR keeps every layer and config blob a client uploads; moto records only their sizes.
The sandbox's ECR writes the bytes here as each upload completes, so a task can later
unpack the image its task definition names. Blobs live in a temporary folder that
goes away with the process (they are as ephemeral as moto's own state).
"""

from __future__ import annotations

import atexit
import hashlib
import shutil
import tempfile
import threading
from pathlib import Path


class BlobStore:
    """``sha256:<hex>`` -> bytes on disk; safe to use from several threads."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def _path(self, digest: str) -> Path:
        algorithm, _, hexpart = digest.partition(":")
        if algorithm != "sha256" or len(hexpart) != 64 or not all(c in "0123456789abcdef" for c in hexpart):
            raise ValueError(f"not a sha256 digest: {digest!r}")
        return self.root / hexpart

    def put(self, data: bytes) -> str:
        """Store ``data``; returns its digest."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        path = self._path(digest)
        with self._lock:
            if not path.exists():
                partial = path.with_suffix(".part")
                partial.write_bytes(data)
                partial.replace(path)
        return digest

    def has(self, digest: str) -> bool:
        try:
            return self._path(digest).is_file()
        except ValueError:
            return False

    def path(self, digest: str) -> Path:
        """Where the blob is; KeyError when the registry never received it."""
        path = self._path(digest)
        if not path.is_file():
            raise KeyError(digest)
        return path

    def read(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()


_store: BlobStore | None = None
_store_lock = threading.Lock()


def blob_store() -> BlobStore:
    """The process's blob store (moto's registry state is process-wide too)."""
    global _store
    with _store_lock:
        if _store is None:
            root = Path(tempfile.mkdtemp(prefix="deployfw-sandbox-blobs-"))
            atexit.register(shutil.rmtree, root, True)
            _store = BlobStore(root)
        return _store
