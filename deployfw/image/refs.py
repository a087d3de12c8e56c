"""Parse ``REPO[:TAG]`` the way users and CodeBuild buildspecs write it.

Accepts a bare repository name (``user-api``, ``team/user-api``) or a full ECR
URI (``123456789012.dkr.ecr.ap-northeast-2.amazonaws.com/user-api:1.2``), whose
account becomes the registry id. Another registry's host is bad input: the
pusher speaks only ECR's API.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from deployfw.errors import InputError

_NAME = re.compile(r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_ECR_HOST = re.compile(r"(\d{12})\.dkr\.ecr(?:-fips)?\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?")


@dataclass(frozen=True)
class RepositoryRef:
    """A repository in ECR, with the tag the user named (if any)."""

    name: str
    tag: str | None = None
    registry_id: str | None = None


def parse_repository(ref: str) -> RepositoryRef:
    """``[HOST/]NAME[:TAG]`` -> :class:`RepositoryRef`; anything unparseable is bad input."""
    text = ref.strip()
    registry_id = None
    host, slash, rest = text.partition("/")
    if slash and ("." in host or ":" in host or host == "localhost"):
        match = _ECR_HOST.fullmatch(host)
        if not match:
            raise InputError(f"image repository {ref!r}: {host} is not an ECR registry")
        registry_id, text = match.group(1), rest
    name, tag = text, None
    if ":" in text.rsplit("/", 1)[-1]:
        name, _, tag = text.rpartition(":")
    if not _NAME.fullmatch(name):
        raise InputError(f"image repository {ref!r}: {name!r} is not a valid repository name")
    if tag is not None:
        check_tag(tag)
    return RepositoryRef(name, tag, registry_id)


def check_tag(tag: str) -> str:
    """Return ``tag`` if a registry accepts it, else raise InputError."""
    if not _TAG.fullmatch(tag):
        raise InputError(f"image tag {tag!r}: use letters, digits, '_', '.', '-' (max 128)")
    return tag
