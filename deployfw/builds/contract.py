"""The build contract every build backend honours, so one buildspec.yml runs anywhere.

A module's ``buildspec.yml`` runs in CodeBuild (``codebuild`` backend), on a
Jenkins agent (``deployfw build MODULE``) and here (``local`` backend). It can
only be the same file if it sees the same things everywhere: the working
directory is the repository root (CodeBuild's ``CODEBUILD_SRC_DIR``) and these
variables are set:

``IMAGE_REPO_NAME``, ``REPOSITORY_URI``, ``IMAGE_TAG`` (commit tag),
``IMAGE_CONTENT_TAG``, ``AWS_ACCOUNT_ID``, ``AWS_DEFAULT_REGION``,
``DEPLOYFW_MODULE``, ``DEPLOYFW_MODULE_PATH``, ``DEPLOYFW_RUN_ID``,
plus the module's ``build.environment`` option.

The contract variables win over ``build.environment``: a config that set
``IMAGE_TAG`` would push the image under a tag the registry never looks for.
This module is backend-neutral (no boto3, no jenkins) so every build backend,
including third-party ones, builds the environment the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from deployfw.backends import ImageRef
from deployfw.buildspec import Buildspec, load_buildspec
from deployfw.config import Config, Module
from deployfw.errors import InputError, Problem

BUILDSPEC_NAME = "buildspec.yml"
_ECR_ACCOUNT = re.compile(r"^(\d{12})\.dkr\.ecr")
DEFAULT_TIMEOUT_MINUTES = 60
CONTRACT_VARIABLES = (
    "IMAGE_REPO_NAME",
    "REPOSITORY_URI",
    "IMAGE_TAG",
    "IMAGE_CONTENT_TAG",
    "AWS_ACCOUNT_ID",
    "AWS_DEFAULT_REGION",
    "DEPLOYFW_MODULE",
    "DEPLOYFW_MODULE_PATH",
    "DEPLOYFW_RUN_ID",
)


def account_from_uri(repository_uri: str) -> str:
    """The AWS account of an ECR repository URI ('' for another registry)."""
    match = _ECR_ACCOUNT.match(repository_uri)
    return match.group(1) if match else ""


@dataclass(frozen=True)
class BuildInputs:
    """What a build needs besides the buildspec: where the image goes and who runs it."""

    image: ImageRef
    account_id: str
    region: str
    run_id: str


def build_option(module: Module, key: str, default: object = None) -> object:
    """An option of the module's build section (None-safe for modules without one)."""
    return module.build.get(key, default) if module.build is not None else default


def buildspec_path(module: Module) -> str:
    """The module's buildspec, relative to the repository root (option ``buildspec``)."""
    configured = build_option(module, "buildspec")
    return str(configured) if configured else f"{module.path}/{BUILDSPEC_NAME}"


def timeout_seconds(module: Module) -> float:
    """The build deadline (option ``timeout_minutes``, default 60)."""
    return float(build_option(module, "timeout_minutes", DEFAULT_TIMEOUT_MINUTES)) * 60.0  # type: ignore[arg-type]


def read_buildspec(config: Config, module: Module) -> tuple[str, str]:
    """``(text, display name)`` of the module's buildspec; InputError when it cannot be read."""
    name = buildspec_path(module)
    path = config.root / name
    origin = f"modules.{module.name}.build.buildspec"
    try:
        return path.read_text(encoding="utf-8"), name
    except FileNotFoundError:
        raise InputError(Problem(name, None, origin, "buildspec not found")) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(Problem(name, None, origin, f"cannot read buildspec: {exc}")) from None


def load_module_buildspec(config: Config, module: Module) -> tuple[Buildspec, str]:
    """Parse and validate the module's buildspec; ``(spec, text)``; InputError with file and line."""
    text, name = read_buildspec(config, module)
    return load_buildspec(text, name), text


def buildspec_problems(config: Config, module: Module) -> list[Problem]:
    """Every problem with the module's buildspec, for a backend's ``preflight``."""
    try:
        load_module_buildspec(config, module)
    except InputError as exc:
        return list(exc.problems)
    return []


def contract_env(module: Module, inputs: BuildInputs) -> dict[str, str]:
    """The environment of one module's build (the module's ``environment`` under the contract)."""
    extra = build_option(module, "environment") or {}
    env = {str(k): str(v) for k, v in dict(extra).items()}  # type: ignore[call-overload]
    env.update(
        {
            "IMAGE_REPO_NAME": inputs.image.repository,
            "REPOSITORY_URI": inputs.image.repository_uri,
            "IMAGE_TAG": inputs.image.commit_tag,
            "IMAGE_CONTENT_TAG": inputs.image.content_tag,
            "AWS_ACCOUNT_ID": inputs.account_id,
            "AWS_DEFAULT_REGION": inputs.region,
            "DEPLOYFW_MODULE": module.name,
            "DEPLOYFW_MODULE_PATH": module.path,
            "DEPLOYFW_RUN_ID": inputs.run_id,
        }
    )
    return env


def with_endpoint(env: Mapping[str, str], endpoint_url: str | None) -> dict[str, str]:
    """Add ``AWS_ENDPOINT_URL`` (sandbox runs) so the build's own AWS calls go to the same place."""
    out = dict(env)
    if endpoint_url:
        out["AWS_ENDPOINT_URL"] = endpoint_url
    return out


def source_dir(config: Config) -> Path:
    """The build's working directory: the repository root, as CODEBUILD_SRC_DIR is in CodeBuild."""
    return config.root
