"""The environment a buildspec's commands see, built with CodeBuild's precedence.

Lowest to highest: the host environment (CodeBuild's "image"), the
buildspec's ``env.variables``, its ``parameter-store`` and ``secrets-manager``
values, then the caller's variables (CodeBuild's start-build overrides win
over the buildspec), and finally the ``CODEBUILD_*`` variables the build
itself owns. Resolved secrets are registered with :mod:`deployfw.redact`
the moment they are known, before any line can be emitted.
"""

from __future__ import annotations

import getpass
import os
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

from deployfw import redact
from deployfw.buildspec.model import EnvSpec
from deployfw.buildspec.secrets import SecretResolver, secret_parts
from deployfw.errors import DeployfwError, ExternalError

# Variables a shell sets for itself; carrying them into the next phase would be wrong.
_SHELL_OWNED = frozenset({"PWD", "OLDPWD", "SHLVL", "_"})


def resolve_secrets(
    spec: EnvSpec, resolver: SecretResolver | None, *, overridden: Mapping[str, str]
) -> dict[str, str]:
    """Fetch every parameter-store and secrets-manager value the buildspec names.

    Names the caller overrides are not fetched (the override wins anyway, so
    the lookup would only cost a call and an IAM permission). Raises
    ExternalError naming the variable and reference, never the value.
    """
    wanted_params = {k: v for k, v in spec.parameter_store.items() if k not in overridden}
    wanted_secrets = {k: v for k, v in spec.secrets_manager.items() if k not in overridden}
    if not wanted_params and not wanted_secrets:
        return {}
    if resolver is None:
        from deployfw.buildspec.aws_resolver import AwsSecretResolver

        resolver = AwsSecretResolver()
    values: dict[str, str] = {}
    lookups: list[tuple[str, str, str, Callable[[str], str]]] = [
        ("parameter-store", k, v, resolver.get_parameter) for k, v in wanted_params.items()
    ]
    lookups += [("secrets-manager", k, v, resolver.get_secret) for k, v in wanted_secrets.items()]
    for section, name, reference, lookup in lookups:
        try:
            value = lookup(reference)
        except DeployfwError as exc:
            raise ExternalError(f"env.{section}.{name} ({reference}): {exc}") from None
        except Exception as exc:  # a third-party resolver's own error type
            raise ExternalError(f"env.{section}.{name} ({reference}): {exc}") from None
        for part in secret_parts(value):
            redact.register(part)
        values[name] = value
    return values


def initial_environment(
    spec: EnvSpec,
    caller_env: Mapping[str, str],
    resolved: Mapping[str, str],
    workdir: Path,
) -> dict[str, str]:
    """The environment the first phase starts with."""
    env = dict(os.environ)
    env.update(spec.variables)
    env.update(resolved)
    env.update(caller_env)
    build_id = caller_env.get("CODEBUILD_BUILD_ID") or f"local:{uuid.uuid4()}"
    defaults = {
        "CODEBUILD_BUILD_ID": build_id,
        "CODEBUILD_BUILD_NUMBER": "1",
        "CODEBUILD_INITIATOR": f"deployfw/{_user()}",
        "CODEBUILD_BUILD_IMAGE": "local",
        "CODEBUILD_CI": "true",
        "CODEBUILD_START_TIME": str(int(time.time() * 1000)),
    }
    for key, value in defaults.items():
        env[key] = caller_env.get(key) or value
    env["CODEBUILD_SRC_DIR"] = str(workdir)
    env["CODEBUILD_BUILD_SUCCEEDING"] = "1"
    return env


def parse_env_dump(data: bytes) -> dict[str, str]:
    """Read ``env -0`` output (NUL-separated ``NAME=value``) back into a dict."""
    env: dict[str, str] = {}
    for entry in data.split(b"\0"):
        name, sep, value = entry.partition(b"=")
        if not sep or not name:
            continue
        key = name.decode("utf-8", "surrogateescape")
        if key not in _SHELL_OWNED:
            env[key] = value.decode("utf-8", "surrogateescape")
    return env


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
