"""The ``ecr`` registry backend against the embedded sandbox (ECR with real manifest digests)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from deployfw.aws.clients import Aws
from deployfw.backends import ModuleJob, RunContext
from deployfw.config import Module, Section
from deployfw.errors import ExternalError
from deployfw.image import ImageSpec, build_image, push_image
from deployfw_aws.ecr import EcrRegistry

HEAD = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def ecr_sandbox() -> Iterator[Any]:
    from deployfw.sandbox.aws import AwsSandbox

    with AwsSandbox(port=0) as box:
        yield box


def module(name: str, **registry: Any) -> Module:
    return Module(
        name=name,
        path=f"services/{name}",
        kind="service",
        depends_on=(),
        build=Section("local", {}),
        registry=Section("ecr", registry),
        deploy=None,
        execution_mode=None,
        files=(),
        effective={},
    )


def job_for(sandbox: Any, mod: Module) -> tuple[ModuleJob, list[str]]:
    config = SimpleNamespace(root=Path("."), modules={mod.name: mod})
    ctx = RunContext(config=config, head=HEAD, run_id="r1", region="us-east-1", endpoint_url=sandbox.endpoint_url)  # type: ignore[arg-type]
    lines: list[str] = []
    return ModuleJob(ctx=ctx, module=mod, log=lines.append), lines


def push(sandbox: Any, tmp_path: Path, repository: str, tags: list[str], text: str = "hello") -> str:
    (tmp_path / "ctx").mkdir(exist_ok=True)
    (tmp_path / "ctx" / "app.txt").write_text(text)
    image = build_image(tmp_path / "ctx", ImageSpec(cmd=("cat", "/app.txt")))
    return push_image(image, Aws("us-east-1", clients={"ecr": sandbox.client("ecr")}), repository, tags).digest


def test_prepare_creates_the_repository_once(ecr_sandbox: Any) -> None:
    job, lines = job_for(ecr_sandbox, module("ecr-api", repository="team/ecr-api", immutable_tags=True))
    registry = EcrRegistry(job.ctx)

    ref = registry.prepare(job, "content-abc")

    assert ref.repository == "team/ecr-api"
    assert ref.repository_uri == "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/ecr-api"
    assert (ref.commit_tag, ref.content_tag) == (HEAD, "content-abc")
    (repo,) = ecr_sandbox.client("ecr").describe_repositories(repositoryNames=["team/ecr-api"])["repositories"]
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["imageScanningConfiguration"] == {"scanOnPush": False}
    assert lines == ["created ECR repository team/ecr-api (IMMUTABLE tags)"]

    ecr_sandbox.clear_requests()
    assert registry.prepare(job, "content-abc") == ref
    assert [r["operation"] for r in ecr_sandbox.requests() if r["service"] == "ecr"] == ["DescribeRepositories"]


def test_prepare_defaults_to_the_module_name_and_mutable_tags(ecr_sandbox: Any) -> None:
    job, _ = job_for(ecr_sandbox, module("plain-api"))
    ref = EcrRegistry(job.ctx).prepare(job, "content-1")
    assert ref.repository == "plain-api"
    (repo,) = ecr_sandbox.client("ecr").describe_repositories(repositoryNames=["plain-api"])["repositories"]
    assert repo["imageTagMutability"] == "MUTABLE"
    assert ref.repository_uri == repo["repositoryUri"]


def test_find_returns_the_digest_or_none(ecr_sandbox: Any, tmp_path: Path) -> None:
    job, _ = job_for(ecr_sandbox, module("find-api"))
    registry = EcrRegistry(job.ctx)
    assert registry.find(job, "content-1") is None  # no repository yet: nothing to reuse
    job.image = registry.prepare(job, "content-1")
    assert registry.find(job, "content-1") is None
    digest = push(ecr_sandbox, tmp_path, "find-api", ["content-1", "c1"])
    assert registry.find(job, "content-1") == digest
    assert registry.find(job, "c1") == digest
    assert registry.find(job, "content-2") is None


def test_promote_retags_the_same_manifest(ecr_sandbox: Any, tmp_path: Path) -> None:
    job, lines = job_for(ecr_sandbox, module("promote-api", immutable_tags=True))
    registry = EcrRegistry(job.ctx)
    job.image = registry.prepare(job, "content-9")
    digest = push(ecr_sandbox, tmp_path, "promote-api", ["content-9"])

    registry.promote(job, digest, [HEAD, "content-9", "release"])  # content-9 is already there: fine

    for tag in (HEAD, "content-9", "release"):
        assert registry.find(job, tag) == digest
    images = ecr_sandbox.client("ecr").describe_images(repositoryName="promote-api")["imageDetails"]
    assert [i["imageDigest"] for i in images] == [digest]
    assert set(images[0]["imageTags"]) == {HEAD, "content-9", "release"}
    registry.promote(job, digest, [HEAD])  # again: idempotent
    assert lines[-1].startswith(f"tagged promote-api@{digest} as {HEAD}")


def test_promote_refuses_to_move_an_immutable_tag(ecr_sandbox: Any, tmp_path: Path) -> None:
    job, _ = job_for(ecr_sandbox, module("immutable-api", immutable_tags=True))
    registry = EcrRegistry(job.ctx)
    job.image = registry.prepare(job, "content-1")
    first = push(ecr_sandbox, tmp_path, "immutable-api", ["v1"], text="one")
    second = push(ecr_sandbox, tmp_path, "immutable-api", ["content-1"], text="two")
    with pytest.raises(ExternalError, match="already names another image"):
        registry.promote(job, second, ["v1"])
    assert registry.find(job, "v1") == first


def test_promote_of_an_unknown_digest_fails_clearly(ecr_sandbox: Any) -> None:
    job, _ = job_for(ecr_sandbox, module("missing-api"))
    registry = EcrRegistry(job.ctx)
    job.image = registry.prepare(job, "content-1")
    with pytest.raises(ExternalError, match=r"missing-api@sha256:0+"):
        registry.promote(job, "sha256:" + "0" * 64, ["x"])


def test_steps_name_the_repository_without_calling_aws(ecr_sandbox: Any) -> None:
    mod = module("steps-api", repository="steps", immutable_tags=True)
    job, _ = job_for(ecr_sandbox, mod)
    ecr_sandbox.clear_requests()
    steps = EcrRegistry(job.ctx).steps(mod, job.ctx.config)
    assert steps[0] == "ensure ECR repository steps (IMMUTABLE tags)"
    assert EcrRegistry(job.ctx).preflight(mod, job.ctx.config) == []
    assert ecr_sandbox.requests() == []
