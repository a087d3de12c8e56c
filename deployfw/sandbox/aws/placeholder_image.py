"""The image seeded services start with: a real, runnable image in each ECR repository.

A service needs a task definition before its first deploy, and on AWS it would name
some image that exists. The sandbox seeds ``REPO:initial`` with a tiny image of its own
(see ``placeholder/server.py``): the seeded tasks really run and pass their health
checks, and the listener answers ``placeholder <service>`` until the first deploy.
The layer is built once per process; only the small config differs per port.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from deployfw.sandbox.runtime.blobs import blob_store

PLACEHOLDER_TAG = "initial"
_SOURCE = Path(__file__).with_name("placeholder")


@functools.lru_cache(maxsize=32)
def _image(port: int, name: str) -> Any:
    from deployfw.image.oci import build_image
    from deployfw.image.spec import ImageSpec

    spec = ImageSpec(
        entrypoint=("python3", "/srv/placeholder/server.py"),
        cmd=(str(port), name),
        destination="/srv/placeholder",
        workdir="/srv/placeholder",
        ports=(str(port),),
    )
    return build_image(_SOURCE, spec)


def push_placeholder(ecr: Any, repository: str, *, port: int, name: str, tag: str = PLACEHOLDER_TAG) -> str:
    """Put the placeholder image into ``repository`` (moto backend, in-process); returns its digest."""
    image = _image(port, name)
    store = blob_store()
    repo = ecr.repositories[repository]
    for blob in image.blobs:
        data = blob.read()
        store.put(data)
        repo.layers[blob.digest] = len(data)
    existing = ecr.manifest_of(repository, tag)
    if existing != image.manifest.decode():
        ecr.put_image(repository, image.manifest.decode(), tag, image.media_type)
    return str(image.digest)
