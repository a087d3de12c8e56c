"""``deployfw build MODULE``: build one module the way a CI job asks for it.

A Jenkins job (parameters become environment variables) or a CodeBuild
project (environment overrides) runs this for one module. Whatever the caller
passed of the build contract wins; what it left out is derived the way
``deployfw run`` would derive it, so a hand-started job still pushes the tags
the registry looks for:

* ``IMAGE_REPO_NAME``: the module's ``registry.repository`` or its name;
* ``AWS_DEFAULT_REGION``: ``AWS_REGION`` or the config's ``region``;
* ``AWS_ACCOUNT_ID``: from ``REPOSITORY_URI`` or ``CODEBUILD_BUILD_ARN``;
* ``REPOSITORY_URI``: the ECR URI of account, region and repository;
* ``IMAGE_TAG``/``IMAGE_CONTENT_TAG``: commit and content tag of the head
  commit (``CODEBUILD_RESOLVED_SOURCE_VERSION``, ``GIT_COMMIT``, else HEAD).
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Mapping

from deployfw.backends import ImageRef
from deployfw.builds.content import commit_tag, content_tag
from deployfw.builds.contract import (
    BuildInputs,
    account_from_uri,
    contract_env,
    load_module_buildspec,
    source_dir,
    timeout_seconds,
)
from deployfw.builds.execute import aws_resolver, needs_secrets, run_with_deadline
from deployfw.config import Config, Module
from deployfw.errors import EXIT_FAILED, EXIT_OK, InputError
from deployfw.gitrepo import GitRepo

_HEAD_VARIABLES = ("CODEBUILD_RESOLVED_SOURCE_VERSION", "GIT_COMMIT")
_FROM_CONFIG = frozenset({"DEPLOYFW_MODULE", "DEPLOYFW_MODULE_PATH"})


def build_module(
    config: Config,
    module_name: str,
    *,
    env: Mapping[str, str] = os.environ,
    emit: Callable[[str], None] = print,
    cancel: threading.Event | None = None,
) -> int:
    """Run ``module_name``'s buildspec with the contract environment; exit code 0 or 1.

    Bad input (unknown module, a library, an invalid buildspec) raises
    :class:`InputError`, which the CLI turns into exit 2 before anything runs.
    """
    module = _service(config, module_name)
    spec, _ = load_module_buildspec(config, module)
    # What CI passed wins over the module's ``environment`` option, as CodeBuild overrides do;
    # the module's identity always comes from the config.
    build_env = contract_env(module, _inputs(config, module, env))
    build_env.update({k: v for k, v in env.items() if v and k not in _FROM_CONFIG})
    region = build_env.get("AWS_DEFAULT_REGION") or None
    endpoint = build_env.get("AWS_ENDPOINT_URL") or None
    outcome = run_with_deadline(
        spec,
        workdir=source_dir(config),
        env=build_env,
        emit=emit,
        cancel=cancel,
        timeout=timeout_seconds(module),
        resolver=aws_resolver(region, endpoint) if needs_secrets(spec) else None,
    )
    if not outcome.ok:
        emit(f"deployfw build {module.name}: {outcome.status}: {outcome.error}")
        return EXIT_FAILED
    emit(f"deployfw build {module.name}: SUCCEEDED")
    return EXIT_OK


def _service(config: Config, name: str) -> Module:
    module = config.modules.get(name)
    if module is None:
        known = ", ".join(sorted(config.modules)) or "none"
        raise InputError(f"unknown module {name!r}; modules: {known}")
    if not module.is_service:
        raise InputError(f"module {name!r} is a library; it is built as part of the services that depend on it")
    return module


def _inputs(config: Config, module: Module, env: Mapping[str, str]) -> BuildInputs:
    """The contract values CI did not pass, derived from config, git and CI variables."""
    region = env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or config.region or ""
    configured = module.registry.get("repository") if module.registry is not None else None
    repository = env.get("IMAGE_REPO_NAME") or str(configured or module.name)
    account = env.get("AWS_ACCOUNT_ID") or account_from_uri(env.get("REPOSITORY_URI", "")) or _arn_account(env)
    uri = env.get("REPOSITORY_URI") or (
        f"{account}.dkr.ecr.{region}.amazonaws.com/{repository}" if account and region else repository
    )
    tag = env.get("IMAGE_TAG")
    content = env.get("IMAGE_CONTENT_TAG")
    if not tag or not content:
        head = _head(config, env)
        tag = tag or commit_tag(head)
        content = content or content_tag(config, module, head)
    run_id = env.get("DEPLOYFW_RUN_ID") or f"build-{uuid.uuid4().hex[:12]}"
    return BuildInputs(ImageRef(repository, uri, tag, content), account, region, run_id)


def _arn_account(env: Mapping[str, str]) -> str:
    """The account in ``CODEBUILD_BUILD_ARN`` (arn:aws:codebuild:REGION:ACCOUNT:build/...)."""
    fields = env.get("CODEBUILD_BUILD_ARN", "").split(":")
    return fields[4] if len(fields) > 5 and fields[4].isdigit() else ""


def _head(config: Config, env: Mapping[str, str]) -> str:
    repo = GitRepo(config.root)
    for name in _HEAD_VARIABLES:
        if env.get(name) and (sha := repo.resolve(env[name])):
            return sha
    sha = repo.resolve("HEAD")
    if sha is None:
        raise InputError(f"{config.root}: the repository has no commit to build")
    return sha
