"""Build an image from a directory: one reproducible layer on top of an optional base.

Pipeline: load the base (``base.py``) -> tar and gzip the directory (``layer.py``)
-> write the config JSON (container config merged over the base's, ``rootfs.diff_ids``,
history without timestamps) -> write the manifest referencing config and layers.
Every document is canonical JSON, so the same inputs always give the same
config digest and manifest digest.

Manifest format: an OCI image manifest by default. ECR stores OCI manifests
natively, and ECS (EC2 agent and Fargate platform 1.4+) and CodeDeploy pull
them. ``ImageSpec(manifest_format="docker")`` writes a Docker v2 schema 2
manifest (docker media types, same bytes in the layers) for older tooling that
only understands that.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deployfw.errors import InputError

from .base import BaseImage, load_base
from .blobs import (
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    Blob,
    canonical_json,
    sha256_digest,
)
from .layer import build_layer
from .spec import ImageSpec

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BUILDER = "deployfw image build"

_TYPES = {
    "oci": (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER_GZIP),
    "docker": (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER_GZIP),
}
_GZIP_EQUIV = {OCI_LAYER_GZIP: DOCKER_LAYER_GZIP, DOCKER_LAYER_GZIP: OCI_LAYER_GZIP}


@dataclass(frozen=True)
class Image:
    """A built image: the manifest bytes and every blob they reference.

    The digest is computed from the manifest bytes here, never taken from a
    registry, so deploys can reference ``repo@digest`` before or without a push.
    """

    manifest: bytes
    media_type: str
    config: Blob
    layers: tuple[Blob, ...]

    @property
    def digest(self) -> str:
        """``sha256:`` of the manifest bytes: the image's identity in every registry."""
        return sha256_digest(self.manifest)

    @property
    def blobs(self) -> tuple[Blob, ...]:
        """Layers then config: everything a registry needs before it accepts the manifest."""
        return (*self.layers, self.config)

    @property
    def config_json(self) -> dict[str, Any]:
        """The parsed image config (for inspection and tests)."""
        parsed: dict[str, Any] = json.loads(self.config.read())
        return parsed


def build_image(context: Path, spec: ImageSpec) -> Image:
    """Pack ``context`` into an image described by ``spec``; bad input raises InputError."""
    context = Path(context)
    if not context.is_dir():
        raise InputError(f"{context}: context directory not found")
    base = load_base(Path(spec.base)) if spec.base is not None else None
    manifest_type, config_type, layer_type = _TYPES[spec.manifest_format]
    layer = build_layer(context, destination=spec.destination, epoch=spec.epoch)
    own = Blob.from_bytes(layer_type, layer.compressed)
    layers = [_as_format(b, spec) for b in base.layers] if base else []
    layers.append(own)
    config = Blob.from_bytes(config_type, canonical_json(_config(base, spec, layer.diff_id)))
    manifest = {
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": config.descriptor,
        "layers": [b.descriptor for b in layers],
    }
    return Image(canonical_json(manifest), manifest_type, config, tuple(layers))


def _as_format(blob: Blob, spec: ImageSpec) -> Blob:
    """Re-label a base layer for the manifest format; the bytes (and digest) stay the same."""
    wanted = _TYPES[spec.manifest_format][2]
    if blob.media_type in _GZIP_EQUIV and blob.media_type != wanted:
        return replace(blob, media_type=wanted)
    if spec.manifest_format == "docker" and blob.media_type.startswith("application/vnd.oci."):
        raise InputError(
            f"base layer {blob.digest} is {blob.media_type}, which a Docker v2 manifest"
            " cannot reference; build an OCI manifest instead"
        )
    return blob


def _config(base: BaseImage | None, spec: ImageSpec, diff_id: str) -> dict[str, Any]:
    """The image config: the base's, with the spec's settings and the new layer on top."""
    old = copy.deepcopy(base.config) if base else {}
    container: dict[str, Any] = dict(old.get("config") or {})

    env = list(container.get("Env") or ([] if base else [DEFAULT_PATH]))
    for key, value in spec.env.items():
        entry = f"{key}={value}"
        at = next((i for i, e in enumerate(env) if e.partition("=")[0] == key), None)
        if at is None:
            env.append(entry)
        else:
            env[at] = entry
    if env:
        container["Env"] = env

    if spec.entrypoint is not None:
        container["Entrypoint"] = list(spec.entrypoint)
        if spec.cmd is None:
            container.pop("Cmd", None)  # as in a Dockerfile: a new entrypoint drops the old cmd
    if spec.cmd is not None:
        container["Cmd"] = list(spec.cmd)
    if spec.ports:
        ports = dict(container.get("ExposedPorts") or {})
        ports.update({_port(p): {} for p in spec.ports})
        container["ExposedPorts"] = ports
    if spec.labels:
        container["Labels"] = {**(container.get("Labels") or {}), **spec.labels}
    if spec.workdir is not None:
        container["WorkingDir"] = spec.workdir
    if spec.user is not None:
        container["User"] = spec.user

    config: dict[str, Any] = {
        "architecture": old.get("architecture", "amd64"),
        "os": old.get("os", "linux"),
        "config": container,
        "rootfs": {
            "type": "layers",
            "diff_ids": [*((old.get("rootfs") or {}).get("diff_ids") or []), diff_id],
        },
        "history": [
            *(old.get("history") or []),
            {"created_by": BUILDER, "comment": f"{spec.destination} from the build context"},
        ],
    }
    for key in ("variant", "os.version", "os.features"):
        if key in old:
            config[key] = old[key]
    if spec.epoch:
        config["created"] = datetime.fromtimestamp(spec.epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return config


def _port(port: str) -> str:
    return port if "/" in port else f"{port}/tcp"


def write_oci_layout(image: Image, directory: Path, ref_name: str | None = None) -> Path:
    """Write ``image`` as an OCI image layout in ``directory`` (created if needed).

    The layout is what ``skopeo``, ``crane``, ``oras`` and ``podman`` read, so
    a build can be inspected, or used as the base of another build, without
    a registry. ``index.json`` lists just this image, named ``ref_name`` if given.
    """
    directory = Path(directory)
    blobs_dir = directory / "blobs" / "sha256"
    try:
        blobs_dir.mkdir(parents=True, exist_ok=True)
        manifest_blob = Blob.from_bytes(image.media_type, image.manifest)
        for blob in (*image.blobs, manifest_blob):
            target = blobs_dir / blob.hex
            if target.is_file() and target.stat().st_size == blob.size:
                continue
            with open(target, "wb") as fh:
                for piece in blob.chunks():
                    fh.write(piece)
        descriptor = manifest_blob.descriptor
        if ref_name:
            descriptor["annotations"] = {"org.opencontainers.image.ref.name": ref_name}
        index = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [descriptor],
        }
        (directory / "index.json").write_bytes(canonical_json(index))
        (directory / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": "1.0.0"}))
    except OSError as exc:
        raise InputError(f"{directory}: cannot write the OCI layout ({exc.strerror})") from None
    return directory
