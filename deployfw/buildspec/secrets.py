"""Where ``env.parameter-store`` and ``env.secrets-manager`` values come from.

The runner only knows the :class:`SecretResolver` protocol, so the sandbox,
tests and the AWS implementation (:mod:`deployfw.buildspec.aws_resolver`)
plug in without the runner importing boto3. The reference syntax is parsed
here, once, so the loader can reject a malformed reference with its line
number before anything runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

# An ARN is arn:partition:secretsmanager:region:account:secret:name - 7 fields,
# so a secret id given as an ARN contains six colons of its own.
_ARN_FIELDS = 7


@runtime_checkable
class SecretResolver(Protocol):
    """Looks up secret values for a buildspec; raises ExternalError when it cannot."""

    def get_parameter(self, name: str) -> str:
        """Return the (decrypted) value of the Parameter Store parameter ``name``."""
        ...

    def get_secret(self, reference: str) -> str:
        """Return the value a ``secret-id:json-key:version-stage:version-id`` reference names."""
        ...


@dataclass(frozen=True)
class SecretReference:
    """A parsed ``env.secrets-manager`` value."""

    secret_id: str
    json_key: str | None = None
    version_stage: str | None = None
    version_id: str | None = None


def parse_secret_reference(reference: str) -> SecretReference:
    """Split ``secret-id:json-key:version-stage:version-id``; raise ValueError if malformed.

    The secret id may be an ARN (which has colons of its own); empty fields
    mean "not given", as in CodeBuild (``my-secret::AWSPREVIOUS``).
    """
    fields = reference.split(":")
    if reference.startswith("arn:"):
        if len(fields) < _ARN_FIELDS:
            raise ValueError(f"{reference!r} is not a complete Secrets Manager ARN")
        secret_id = ":".join(fields[:_ARN_FIELDS])
        rest = fields[_ARN_FIELDS:]
    else:
        secret_id, rest = fields[0], fields[1:]
    if not secret_id:
        raise ValueError("the secret id (before the first ':') is empty")
    if len(rest) > 3:
        raise ValueError(
            "too many ':' fields; expected secret-id:json-key:version-stage:version-id"
        )
    json_key, stage, version_id = ([*rest, "", "", ""])[:3]
    if stage and version_id:
        raise ValueError("give either version-stage or version-id, not both")
    return SecretReference(secret_id, json_key or None, stage or None, version_id or None)


def extract_json_key(secret_string: str, reference: SecretReference) -> str:
    """Return the value under ``reference.json_key`` of a JSON secret; ValueError if absent."""
    try:
        document = json.loads(secret_string)
    except ValueError:
        raise ValueError(
            f"secret {reference.secret_id!r} is not JSON, so it has no key "
            f"{reference.json_key!r}"
        ) from None
    if not isinstance(document, dict) or reference.json_key not in document:
        raise ValueError(f"secret {reference.secret_id!r} has no key {reference.json_key!r}")
    value = document[reference.json_key]
    return value if isinstance(value, str) else json.dumps(value)


def secret_parts(value: str) -> list[str]:
    """The value itself plus, for a JSON object, each of its string values.

    A whole JSON secret placed in a variable is usually taken apart by the
    build (``jq -r .password``), so every piece must be masked, not just the
    document.
    """
    parts = [value]
    try:
        document = json.loads(value)
    except ValueError:
        return parts
    if isinstance(document, dict):
        parts.extend(v for v in document.values() if isinstance(v, str))
    return parts
