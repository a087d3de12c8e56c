"""From an image in the sandbox's registry to a folder and a command line.

A task's containers are started from the images their task definition names, the way
the ECS agent does it: pull (here: read the manifest and blobs the registry stored),
unpack the layers in order into the task's own folder, then start the image config's
``Entrypoint`` + ``Cmd`` with its ``Env`` and ``WorkingDir``, each overridden by the
container definition (``entryPoint``, ``command``, ``environment``, ``workingDirectory``).

There is no chroot: the sandbox runs images that carry only their application (the
example images hold ``/srv/app/server.py`` and say ``python3 server.py``), so a
container sees the host's programs and libraries, and the image's own paths are
*mapped* onto its folder:

- the working directory ``/srv/app`` becomes ``<task>/rootfs/srv/app``;
- an absolute argument (``/srv/app/server.py``) that exists in the image becomes the
  same path under the folder; any other argument is passed as written;
- the program is looked up in the image first (absolute path, or the image's ``PATH``
  mapped onto the folder), then on the host's ``PATH`` (``python3`` is the host's);
- ``PATH`` in the environment lists the image's mapped ``PATH`` entries, then the host's.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from deployfw.sandbox.runtime.blobs import BlobStore

_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"


class PullError(Exception):
    """The image cannot be had (ECS: ``CannotPullContainerError``)."""


@dataclass(frozen=True)
class ImageConfig:
    """The parts of an OCI/Docker image config that decide how a container starts."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    workdir: str = "/"
    exposed_ports: tuple[int, ...] = ()

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ImageConfig:
        container = doc.get("config") or {}
        env = dict(entry.partition("=")[::2] for entry in container.get("Env") or [])
        ports = []
        for spec in container.get("ExposedPorts") or {}:
            number = str(spec).split("/")[0]
            if number.isdigit():
                ports.append(int(number))
        return cls(
            entrypoint=tuple(container.get("Entrypoint") or ()),
            cmd=tuple(container.get("Cmd") or ()),
            env=env,
            workdir=container.get("WorkingDir") or "/",
            exposed_ports=tuple(ports),
        )


@dataclass(frozen=True)
class PulledImage:
    """An image's manifest read from the registry: its config and its layer digests."""

    reference: str
    config: ImageConfig
    layers: tuple[str, ...]


def read_image(reference: str, manifest: str | bytes, store: BlobStore) -> PulledImage:
    """Check every blob the manifest names is in ``store``; PullError otherwise."""
    try:
        doc = json.loads(manifest)
        config_digest = doc["config"]["digest"]
        layers = tuple(str(layer["digest"]) for layer in doc.get("layers") or [])
    except (ValueError, KeyError, TypeError) as exc:
        raise PullError(f"{reference}: the manifest cannot be read ({exc})") from None
    for digest in (config_digest, *layers):
        if not store.has(digest):
            raise PullError(f"{reference}: blob {digest} was never uploaded to the registry")
    config = ImageConfig.from_json(json.loads(store.read(config_digest)))
    return PulledImage(reference, config, layers)


def unpack(image: PulledImage, store: BlobStore, rootfs: Path) -> None:
    """Extract the layers in order (OCI whiteouts honoured) into ``rootfs``."""
    rootfs.mkdir(parents=True, exist_ok=True)
    for digest in image.layers:
        with store.path(digest).open("rb") as raw:
            head = raw.read(2)
            raw.seek(0)
            data = raw.read()
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz" if head == b"\x1f\x8b" else "r:") as tar:
            members = []
            for member in tar.getmembers():
                name = PurePosixPath(member.name)
                if name.name == _OPAQUE:
                    _clear(rootfs / name.parent)
                elif name.name.startswith(_WHITEOUT):
                    _remove(rootfs / name.parent / name.name[len(_WHITEOUT) :])
                else:
                    members.append(member)
            tar.extractall(rootfs, members=members, filter="data")


def _clear(folder: Path) -> None:
    if folder.is_dir():
        for child in folder.iterdir():
            _remove(child)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@dataclass(frozen=True)
class Launch:
    """What to execute on the host for one container."""

    argv: tuple[str, ...]
    cwd: Path
    env: dict[str, str]


def launch_for(
    config: ImageConfig,
    rootfs: Path,
    *,
    entry_point: Sequence[str] | None = None,
    command: Sequence[str] | None = None,
    environment: Mapping[str, str] | None = None,
    working_directory: str | None = None,
    host_path: str | None = None,
) -> Launch:
    """Resolve the command line the way Docker does, with the image's paths mapped onto ``rootfs``.

    As with ``docker run --entrypoint``, a container definition's ``entryPoint``
    drops the image's ``Cmd`` unless ``command`` is given too.
    """
    entry = tuple(entry_point) if entry_point else config.entrypoint
    if command:
        args = tuple(command)
    elif entry_point:
        args = ()
    else:
        args = config.cmd
    argv = [*entry, *args]
    if not argv:
        raise PullError("the image defines no Entrypoint or Cmd and the container definition no command")
    env = {**config.env, **(environment or {})}
    host = host_path if host_path is not None else os.environ.get("PATH", os.defpath)
    image_path = [str(_mapped(rootfs, p)) for p in env.get("PATH", "").split(":") if p.startswith("/")]
    search = ":".join([p for p in image_path if Path(p).is_dir()] + [host])
    env["PATH"] = search
    program = _program(argv[0], rootfs, search)
    rest = [str(_mapped(rootfs, a)) if _in_image(rootfs, a) else a for a in argv[1:]]
    workdir = working_directory or config.workdir or "/"
    cwd = _mapped(rootfs, workdir)
    cwd.mkdir(parents=True, exist_ok=True)
    return Launch((program, *rest), cwd, env)


def _mapped(rootfs: Path, image_path: str) -> Path:
    return rootfs / image_path.lstrip("/")


def _in_image(rootfs: Path, arg: str) -> bool:
    return arg.startswith("/") and _mapped(rootfs, arg).exists()


def _program(name: str, rootfs: Path, search: str) -> str:
    if name.startswith("/"):
        inside = _mapped(rootfs, name)
        if inside.is_file():
            return str(inside)
        if Path(name).is_file():
            return name
        raise PullError(f"executable file not found: {name}")
    found = shutil.which(name, path=search)
    if found is None:
        raise PullError(f'executable file not found in $PATH: "{name}"')
    return found
