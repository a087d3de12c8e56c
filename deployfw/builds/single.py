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
  commit (``CODEBUILD_RESOLVED_SOURCE_VERSION``, ``GIT_COMMIT``, else HEAD);
* ``ARTIFACT_KIND``/``ARTIFACT_URI``: as passed (a revision bundle's build is
  started with ``ARTIFACT_KIND=bundle``), else an image at ``REPOSITORY_URI``.

Like the ``local`` backend it builds a clean checkout of that head commit (uncommitted files
never reach an image; a dirty working tree is named in one line), unless ``allow_dirty`` asks
for the working tree - which then pushes under a run-only ``dirty-...`` tag instead of the
commit and content tags, whatever CI passed. A source without git (a CodePipeline artifact
is a clean export already) is built where it is.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path

from deployfw.backends import ArtifactKind, ArtifactRef
from deployfw.builds.content import commit_tag, content_tag, dirty_tag
from deployfw.builds.contract import (
    BuildInputs,
    account_from_uri,
    contract_env,
    load_module_buildspec,
    source_dir,
    timeout_seconds,
)
from deployfw.builds.execute import aws_resolver, needs_secrets, run_with_deadline
from deployfw.builds.source import commit_checkout, working_tree_changes
from deployfw.builds.tool import tool_env
from deployfw.config import Config, Module
from deployfw.errors import EXIT_FAILED, EXIT_OK, InputError
from deployfw.gitrepo import GitRepo

_HEAD_VARIABLES = ("CODEBUILD_RESOLVED_SOURCE_VERSION", "GIT_COMMIT")
_FROM_CONFIG = frozenset({"DEPLOYFW_MODULE", "DEPLOYFW_MODULE_PATH"})
_TAGS = frozenset({"IMAGE_TAG", "IMAGE_CONTENT_TAG"})


def build_module(
    config: Config,
    module_name: str,
    *,
    env: Mapping[str, str] = os.environ,
    emit: Callable[[str], None] = print,
    cancel: threading.Event | None = None,
    allow_dirty: bool = False,
) -> int:
    """Run ``module_name``'s buildspec with the contract environment; exit code 0 or 1.

    Bad input (unknown module, a library, an invalid buildspec) raises
    :class:`InputError`, which the CLI turns into exit 2 before anything runs.
    """
    module = _service(config, module_name)
    load_module_buildspec(config, module)  # bad input is exit 2 before any checkout or tag lookup
    repo = _repository(config)
    head = _head(config, repo, env) if repo is not None else None
    tree = working_tree_changes(repo, config.root) if repo is not None and head == repo.resolve("HEAD") else None
    dirty = bool(tree and tree.dirty and allow_dirty)
    if tree is not None and (notice := tree.notice(head or "", allow_dirty=allow_dirty)):
        emit(f"deployfw build {module.name}: {notice}")
    inputs = _inputs(config, module, env, head)
    if dirty:
        tag = dirty_tag(head or "", inputs.run_id)
        inputs = replace(inputs, image=replace(inputs.image, commit_tag=tag, content_tag=tag))
    # What CI passed wins over the module's ``environment`` option, as CodeBuild overrides do;
    # the module's identity (and a dirty build's tags) always come from deployfw.
    build_env = contract_env(module, inputs)
    owned = _FROM_CONFIG | (_TAGS if dirty else frozenset())
    build_env.update({k: v for k, v in env.items() if v and k not in owned})
    build_env.update(tool_env(build_env))
    with _workdir(config, repo, head, module, emit, worktree=dirty or head is None) as workdir:
        spec, _ = load_module_buildspec(config, module, workdir)
        region = build_env.get("AWS_DEFAULT_REGION") or None
        endpoint = build_env.get("AWS_ENDPOINT_URL") or None
        outcome = run_with_deadline(
            spec,
            workdir=workdir,
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


@contextlib.contextmanager
def _workdir(
    config: Config, repo: GitRepo | None, head: str | None, module: Module, emit: Callable[[str], None], *,
    worktree: bool,
) -> Iterator[Path]:
    """A clean checkout of ``head``, or the folder as it is (``--allow-dirty``, or no git repository)."""
    if worktree or repo is None or head is None:
        why = "--allow-dirty" if repo is not None else "no git repository: the source is used as given"
        emit(f"deployfw build {module.name}: building {source_dir(config)} as it is ({why})")
        yield source_dir(config)
        return
    with commit_checkout(config, repo, head, module.name) as tree:
        emit(f"deployfw build {module.name}: building a clean checkout of {head[:12]}")
        yield tree


def _service(config: Config, name: str) -> Module:
    module = config.modules.get(name)
    if module is None:
        known = ", ".join(sorted(config.modules)) or "none"
        raise InputError(f"unknown module {name!r}; modules: {known}")
    if not module.is_service:
        raise InputError(f"module {name!r} is a library; it is built as part of the services that depend on it")
    return module


def _inputs(config: Config, module: Module, env: Mapping[str, str], head: str | None) -> BuildInputs:
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
        if head is None:
            raise InputError(f"{config.root} is not a git repository: pass IMAGE_TAG and IMAGE_CONTENT_TAG")
        tag = tag or commit_tag(head)
        content = content or content_tag(config, module, head)
    run_id = env.get("DEPLOYFW_RUN_ID") or f"build-{uuid.uuid4().hex[:12]}"
    kind: ArtifactKind = "bundle" if env.get("ARTIFACT_KIND") == "bundle" else "image"
    return BuildInputs(ArtifactRef(repository, uri, tag, content, kind), account, region, run_id)


def _arn_account(env: Mapping[str, str]) -> str:
    """The account in ``CODEBUILD_BUILD_ARN`` (arn:aws:codebuild:REGION:ACCOUNT:build/...)."""
    fields = env.get("CODEBUILD_BUILD_ARN", "").split(":")
    return fields[4] if len(fields) > 5 and fields[4].isdigit() else ""


def _repository(config: Config) -> GitRepo | None:
    try:
        return GitRepo(config.root)
    except InputError:
        return None


def _head(config: Config, repo: GitRepo, env: Mapping[str, str]) -> str:
    for name in _HEAD_VARIABLES:
        if env.get(name) and (sha := repo.resolve(env[name])):
            return sha
    sha = repo.resolve("HEAD")
    if sha is None:
        raise InputError(f"{config.root}: the repository has no commit to build")
    return sha
