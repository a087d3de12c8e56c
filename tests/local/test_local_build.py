"""The ``local`` build backend and ``deployfw build MODULE``, end to end in a real git repository.

The happy path runs ``deployfw image build`` from the module's buildspec and pushes
to the embedded AWS sandbox, whose ECR computes digests the way ECR does; the
registry backend then finds the pushed image by its content tag.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from deployfw.backends import ModuleJob
from deployfw.builds.content import content_tag
from deployfw.builds.execute import run_with_deadline
from deployfw.builds.single import build_module
from deployfw.buildspec import load_buildspec
from deployfw.config import Config
from deployfw.errors import InputError
from deployfw.testing import GitRepoBuilder
from deployfw_aws.ecr import EcrRegistry
from deployfw_local.backend import LocalBuild

MakeJob = Callable[..., tuple[ModuleJob, list[str]]]
ENV_DUMP = """\
version: 0.2
phases:
  build:
    commands:
      - env | grep -E '^(IMAGE_|REPOSITORY_URI|AWS_ACCOUNT_ID|AWS_DEFAULT_REGION|DEPLOYFW_|GREETING)' | sort > env.out
      - pwd > pwd.out
"""


def prepared(make_job: MakeJob, config: Config, module: str, head: str, sandbox: Any) -> tuple[ModuleJob, list[str]]:
    """A job whose image reference the ECR backend prepared (creating the repository)."""
    job, lines = make_job(config, module, head, endpoint_url=sandbox.endpoint_url)
    job.image = EcrRegistry(job.ctx).prepare(job, content_tag(config, job.module, head))
    return job, lines


def test_build_pushes_both_tags_and_registry_finds_the_digest(
    shop: GitRepoBuilder, loader: Callable[..., Config], make_job: MakeJob, sandbox: Any
) -> None:
    config = loader(shop.path)
    job, lines = prepared(make_job, config, "api", shop.head, sandbox)
    registry = EcrRegistry(job.ctx)
    assert job.image is not None
    assert job.image.repository_uri == "123456789012.dkr.ecr.us-east-1.amazonaws.com/local-api"
    assert registry.find(job, job.image.content_tag) is None

    result = LocalBuild(job.ctx).build(job)

    assert result.ok, (result.error, lines)
    assert result.details["backend"] == "local"
    assert result.details["status"] == "SUCCEEDED"
    assert [p["name"] for p in result.details["phases"]] == ["INSTALL", "PRE_BUILD", "BUILD", "POST_BUILD"]
    assert f"building api at {shop.head}" in lines
    pushed = [m.group(1) for line in lines if (m := re.fullmatch(r".*/local-api@(sha256:[0-9a-f]{64})", line))]
    assert len(pushed) == 1, lines
    assert registry.find(job, job.image.content_tag) == pushed[0]
    assert registry.find(job, job.image.commit_tag) == pushed[0]


def test_contract_environment_and_working_directory(
    shop: GitRepoBuilder, loader: Callable[..., Config], make_job: MakeJob, sandbox: Any
) -> None:
    shop.commit({"services/api/buildspec.yml": ENV_DUMP})
    config = loader(shop.path)
    job, lines = prepared(make_job, config, "api", shop.head, sandbox)
    assert job.image is not None

    result = LocalBuild(job.ctx).build(job)

    assert result.ok, (result.error, lines)
    assert (shop.path / "pwd.out").read_text().strip() == str(shop.path.resolve())
    env = dict(line.split("=", 1) for line in (shop.path / "env.out").read_text().splitlines())
    assert env == {
        "AWS_ACCOUNT_ID": "123456789012",
        "AWS_DEFAULT_REGION": "us-east-1",
        "DEPLOYFW_MODULE": "api",
        "DEPLOYFW_MODULE_PATH": "services/api",
        "DEPLOYFW_RUN_ID": "run-1",
        "GREETING": "hello",  # the module's environment option
        "IMAGE_CONTENT_TAG": job.image.content_tag,
        "IMAGE_REPO_NAME": "local-api",
        "IMAGE_TAG": shop.head,  # the contract wins over the module's environment option
        "REPOSITORY_URI": "123456789012.dkr.ecr.us-east-1.amazonaws.com/local-api",
    }


def test_failing_phase_fails_the_build(
    shop: GitRepoBuilder, loader: Callable[..., Config], make_job: MakeJob, sandbox: Any
) -> None:
    failing = "version: 0.2\nphases:\n  pre_build:\n    commands:\n      - echo about to fail\n      - exit 3\n"
    shop.commit({"services/other/buildspec.yml": failing})
    config = loader(shop.path)
    job, lines = prepared(make_job, config, "other", shop.head, sandbox)

    result = LocalBuild(job.ctx).build(job)

    assert not result.ok
    assert result.details["status"] == "FAILED"
    assert "PRE_BUILD" in (result.error or "") and "exit 3" in (result.error or "")
    statuses = {p["name"]: p["status"] for p in result.details["phases"]}
    assert statuses == {"INSTALL": "SUCCEEDED", "PRE_BUILD": "FAILED"}  # a failed PRE_BUILD ends the build
    assert "about to fail" in lines


def test_cancel_stops_the_build(
    shop: GitRepoBuilder, loader: Callable[..., Config], make_job: MakeJob, sandbox: Any
) -> None:
    slow = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo started\n      - sleep 30\n"
    shop.commit({"services/other/buildspec.yml": slow})
    config = loader(shop.path)
    job, lines = prepared(make_job, config, "other", shop.head, sandbox)

    def cancel_when_started() -> None:
        deadline = time.monotonic() + 10
        while "started" not in lines and time.monotonic() < deadline:
            time.sleep(0.02)
        job.ctx.cancel.set()

    threading.Thread(target=cancel_when_started, daemon=True).start()
    began = time.monotonic()
    result = LocalBuild(job.ctx).build(job)

    assert time.monotonic() - began < 10
    assert not result.ok
    assert result.details["status"] == "STOPPED"
    assert "cancelled" in (result.error or "")


def test_deadline_times_the_build_out(tmp_path: Path) -> None:
    spec = load_buildspec("version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 30\n", "buildspec.yml")
    began = time.monotonic()
    outcome = run_with_deadline(spec, workdir=tmp_path, env={}, emit=lambda _l: None, cancel=None, timeout=0.5)
    assert time.monotonic() - began < 10
    assert outcome.status == "TIMED_OUT" and not outcome.ok
    assert "timed out" in (outcome.error or "")


def test_invalid_buildspec_is_bad_input_with_file_and_line(
    shop: GitRepoBuilder, loader: Callable[..., Config], make_job: MakeJob, sandbox: Any
) -> None:
    broken = "version: 0.2\nphases:\n  build:\n    commandz:\n      - echo hi\n"
    shop.commit({"services/other/buildspec.yml": broken})
    config = loader(shop.path)
    job, _ = make_job(config, "other", shop.head, endpoint_url=sandbox.endpoint_url)
    backend = LocalBuild(job.ctx)

    problems = backend.preflight(config.modules["other"], config)
    assert problems and all(p.file == "services/other/buildspec.yml" and p.line for p in problems)
    job.image = EcrRegistry(job.ctx).prepare(job, "content-x")
    with pytest.raises(InputError) as caught:
        backend.build(job)
    assert "services/other/buildspec.yml:" in str(caught.value)
    assert backend.preflight(config.modules["api"], config) == []

    shop.commit({"services/other/buildspec.yml": None})
    assert "buildspec not found" in str(backend.preflight(loader(shop.path).modules["other"], config)[0])


def test_secrets_are_resolved_through_the_run_endpoint_and_masked(
    shop: GitRepoBuilder, loader: Callable[..., Config], make_job: MakeJob, sandbox: Any
) -> None:
    sandbox.client("ssm").put_parameter(Name="/shop/token", Value="s3cr3t-value-42", Type="SecureString")
    spec = (
        "version: 0.2\nenv:\n  parameter-store:\n    TOKEN: /shop/token\n"
        'phases:\n  build:\n    commands:\n      - echo "token=$TOKEN"\n      - test "$TOKEN" = s3cr3t-value-42\n'
    )
    shop.commit({"services/other/buildspec.yml": spec})
    config = loader(shop.path)
    job, lines = prepared(make_job, config, "other", shop.head, sandbox)

    result = LocalBuild(job.ctx).build(job)

    assert result.ok, (result.error, lines)
    assert "token=***" in lines
    assert not any("s3cr3t-value-42" in line for line in lines)


def test_build_module_derives_what_ci_did_not_pass(
    shop: GitRepoBuilder, loader: Callable[..., Config], make_job: MakeJob, sandbox: Any, monkeypatch: Any
) -> None:
    config = loader(shop.path)
    job, _ = prepared(make_job, config, "other", shop.head, sandbox)  # the repository exists, as after seeding
    assert job.image is not None
    lines: list[str] = []
    env = {
        "PATH": os.environ["PATH"],
        "AWS_ENDPOINT_URL": sandbox.endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCOUNT_ID": "123456789012",
        "GIT_COMMIT": shop.head,  # what a Jenkins job passes; the rest is derived
    }
    monkeypatch.chdir(shop.path)

    code = build_module(config, "other", env=env, emit=lines.append)

    assert code == 0, lines
    assert lines[-1] == "deployfw build other: SUCCEEDED"
    digest = EcrRegistry(job.ctx).find(job, job.image.content_tag)
    assert digest is not None and any(line.endswith(f"/local-other@{digest}") for line in lines)
    assert EcrRegistry(job.ctx).find(job, shop.head) == digest


def test_build_module_reports_failure_and_bad_input(shop: GitRepoBuilder, loader: Callable[..., Config]) -> None:
    shop.commit({"services/other/buildspec.yml": "version: 0.2\nphases:\n  build:\n    commands:\n      - exit 1\n"})
    config = loader(shop.path)
    lines: list[str] = []
    env = {"IMAGE_TAG": "t", "IMAGE_CONTENT_TAG": "c", "REPOSITORY_URI": "123456789012.dkr.ecr.x.amazonaws.com/o"}
    assert build_module(config, "other", env=env, emit=lines.append) == 1
    assert lines[-1].startswith("deployfw build other: FAILED: BUILD")
    with pytest.raises(InputError, match="unknown module 'nope'"):
        build_module(config, "nope", env=env, emit=lines.append)
    with pytest.raises(InputError, match="library"):
        build_module(config, "common", env=env, emit=lines.append)
