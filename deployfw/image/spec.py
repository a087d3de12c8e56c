"""What an image should contain besides its files: the container config the user asks for.

Parsing of the user's spellings (``K=V``, ``8080/udp``, ``--cmd 'java -jar a.jar'``)
lives here too, so the CLI and the build backends accept exactly the same input
and report mistakes the same way (:class:`deployfw.errors.InputError`).
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from deployfw.errors import InputError

ManifestFormat = Literal["oci", "docker"]


@dataclass(frozen=True)
class ImageSpec:
    """The config of an image built from a directory.

    ``entrypoint``/``cmd`` of ``None`` inherit from the base image; as with a
    Dockerfile, setting ``entrypoint`` without ``cmd`` clears the inherited cmd.
    ``env`` and ``labels`` are merged over the base image's, ``ports`` added to
    its exposed ports. ``destination`` is where the directory's contents land in
    the image's filesystem. ``epoch`` is the mtime of every file (reproducible
    builds use 0 or ``SOURCE_DATE_EPOCH``). ``manifest_format`` picks an OCI
    image manifest (default; ECR and ECS accept it) or a Docker v2 schema 2 one
    for older consumers.
    """

    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    ports: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    workdir: str | None = None
    user: str | None = None
    base: Path | None = None
    destination: str = "/"
    epoch: int = 0
    manifest_format: ManifestFormat = "oci"

    def __post_init__(self) -> None:
        problems = []
        if not self.destination.startswith("/"):
            problems.append(f"destination {self.destination!r} must be an absolute path")
        if self.workdir is not None and not self.workdir.startswith("/"):
            problems.append(f"workdir {self.workdir!r} must be an absolute path")
        if self.epoch < 0:
            problems.append(f"epoch {self.epoch} must not be negative")
        if self.manifest_format not in ("oci", "docker"):
            problems.append(f"manifest format {self.manifest_format!r} is not 'oci' or 'docker'")
        for port in self.ports:
            problems.extend(_port_problems(port))
        if problems:
            raise InputError("; ".join(problems))


def parse_pairs(values: Iterable[str], what: str) -> dict[str, str]:
    """Turn ``K=V`` strings into a dict (later wins); the value may be empty or hold ``=``."""
    pairs: dict[str, str] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key or key != key.strip():
            raise InputError(f"{what} {value!r}: expected KEY=VALUE")
        pairs[key] = val
    return pairs


def normalize_port(value: str | int) -> str:
    """``8080`` -> ``8080/tcp``; ``53/udp`` stays; anything else is bad input."""
    text = str(value).strip().lower()
    problems = _port_problems(text)
    if problems:
        raise InputError(problems[0])
    return text if "/" in text else f"{text}/tcp"


def _port_problems(text: str) -> list[str]:
    number, _, proto = text.partition("/")
    if not number.isdigit() or not 0 < int(number) < 65536:
        return [f"port {text!r}: expected a number 1-65535, optionally /tcp, /udp or /sctp"]
    if proto and proto not in ("tcp", "udp", "sctp"):
        return [f"port {text!r}: protocol must be tcp, udp or sctp"]
    return []


def parse_command(value: str | None, what: str) -> tuple[str, ...] | None:
    """A command as a JSON array (Dockerfile exec form) or a shell-quoted string."""
    if value is None:
        return None
    text = value.strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{what} {value!r}: not a JSON array ({exc.msg})") from None
        if not isinstance(parsed, list) or not all(isinstance(x, str) for x in parsed):
            raise InputError(f"{what} {value!r}: expected a JSON array of strings")
        return tuple(parsed)
    try:
        return tuple(shlex.split(text))
    except ValueError as exc:
        raise InputError(f"{what} {value!r}: {exc}") from None


def epoch_from_env(environ: Mapping[str, str] | None = None) -> int:
    """``SOURCE_DATE_EPOCH`` if set (the reproducible-builds convention), else 0."""
    env = os.environ if environ is None else environ
    raw = env.get("SOURCE_DATE_EPOCH", "").strip()
    if not raw:
        return 0
    if not raw.isdigit():
        raise InputError(f"SOURCE_DATE_EPOCH {raw!r}: expected a non-negative integer")
    return int(raw)
