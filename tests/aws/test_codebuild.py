"""The ``codebuild`` build backend against the embedded sandbox, whose CodeBuild runs the buildspec for real.

The sandbox checks out a temporary git repository at the requested source version,
runs the buildspec override with the environment overrides and writes every line to
CloudWatch Logs, so these tests see what the backend sees in AWS: phases, log
streaming, fault-injected failures, StopBuild, and a lost StartBuild answer.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from deployfw.aws.clients import Aws, AwsError
from deployfw.backends import ModuleJob, RunContext
from deployfw.builds.content import content_tag
from deployfw.config import Config, load_config
from deployfw.plugins import PluginManager
from deployfw.testing import GitRepoBuilder
from deployfw_aws.codebuild import CodeBuildBuild
from deployfw_aws.ecr import EcrRegistry

PUSH = """\
version: 0.2
phases:
  pre_build:
    commands:
      - echo "building $DEPLOYFW_MODULE for run $DEPLOYFW_RUN_ID"
  build:
    commands:
      - >-
        deployfw image build "$DEPLOYFW_MODULE_PATH/app" --push "$REPOSITORY_URI"
        --tag "$IMAGE_TAG" --tag "$IMAGE_CONTENT_TAG"
"""
SLOW = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo started\n      - sleep 30\n"
QUICK = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo quick build\n"
MODULES = {"cb-ok": PUSH, "cb-fail": PUSH, "cb-slow": SLOW, "cb-lost": QUICK, "cb-noproj": QUICK}
SEEDED = ("cb-ok", "cb-fail", "cb-slow", "cb-lost")


def repository_files() -> dict[str, str]:
    lines = [
        "version: 1",
        "project: cb",
        "region: us-east-1",
        "defaults:",
        "  build: {backend: codebuild}",
        "  registry: {backend: ecr}",
        "  deploy: {backend: ecs-rolling, cluster: cb-cluster}",
        "modules:",
    ]
    files: dict[str, str] = {}
    for name, buildspec in MODULES.items():
        lines.append(f"  {name}: {{path: services/{name}}}")
        files[f"services/{name}/buildspec.yml"] = buildspec
        files[f"services/{name}/app/main.py"] = f"print({name!r})\n"
    text = "\n".join(lines) + "\n"
    slow = "  cb-slow: {path: services/cb-slow"
    text = text.replace(slow, slow + ", build: {timeout_minutes: 1}")  # the deadline test's 1 minute
    return {"modules.yaml": text, **files}


@pytest.fixture(scope="module")
def cb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, GitRepoBuilder, Config]]:
    """(sandbox, repository, config): the sandbox's CodeBuild builds from this repository."""
    from deployfw.sandbox.aws import AwsSandbox, ServiceInfra, Timings, seed

    repo = GitRepoBuilder(tmp_path_factory.mktemp("cb") / "repo", repository_files())
    config = load_config(repo.path / "modules.yaml", catalog=PluginManager(entry_points=False).backends.catalog())
    with AwsSandbox(port=0, repo_root=repo.path, timings=Timings(build_phase=0.01)) as sandbox:
        # Full seeding (ECS, ELB...) only where a fault must find its module; plain projects elsewhere.
        seed(sandbox, [ServiceInfra("cb-fail", "cb-cluster", "cb-fail", deploy_kind="rolling")])
        for name in SEEDED:
            if name != "cb-fail":
                create_project(sandbox, f"{name}-build")
        yield sandbox, repo, config


def create_project(sandbox: Any, name: str) -> None:
    sandbox.client("codebuild").create_project(
        name=name,
        source={"type": "CODECOMMIT", "location": "https://git-codecommit.us-east-1.amazonaws.com/v1/repos/cb"},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/standard:7.0",
            "computeType": "BUILD_GENERAL1_SMALL",
        },
        serviceRole="arn:aws:iam::123456789012:role/deployfw-codebuild-role",
    )


def job_for(
    cb: tuple[Any, GitRepoBuilder, Config], module: str, *, run_id: str | None = None, aws: Any = None
) -> tuple[ModuleJob, list[str]]:
    """A job for ``module`` whose image the ECR backend prepared; ``aws`` replaces the run's AWS boundary."""
    sandbox, repo, config = cb
    ctx = RunContext(
        config=config,
        head=repo.head,
        run_id=run_id or f"run-{module}",
        region="us-east-1",
        endpoint_url=sandbox.endpoint_url,
    )
    if aws is not None:
        ctx.resource("aws", lambda: aws)
    lines: list[str] = []
    job = ModuleJob(ctx=ctx, module=config.modules[module], log=lines.append)
    job.image = EcrRegistry(ctx).prepare(job, content_tag(config, job.module, repo.head))
    return job, lines


def backend(job: ModuleJob, **kwargs: Any) -> CodeBuildBuild:
    return CodeBuildBuild(job.ctx, poll_initial=0.05, poll_max=0.2, **kwargs)


def operations(sandbox: Any, operation: str) -> list[dict[str, Any]]:
    return [r for r in sandbox.requests() if r["service"] == "codebuild" and r["operation"] == operation]


def cancel_when(lines: list[str], text: str, event: threading.Event) -> None:
    def watch() -> None:
        deadline = time.monotonic() + 20
        while not any(text in line for line in lines) and time.monotonic() < deadline:
            time.sleep(0.02)
        event.set()

    threading.Thread(target=watch, daemon=True).start()


def test_success_streams_the_log_and_pushes_the_image(cb: Any) -> None:
    sandbox, repo, _ = cb
    job, lines = job_for(cb, "cb-ok")
    sandbox.clear_requests()

    result = backend(job).build(job)

    assert result.ok, (result.error, lines)
    details = result.details
    assert details["backend"] == "codebuild" and details["status"] == "SUCCEEDED"
    assert details["project"] == "cb-ok-build" and details["build_id"].startswith("cb-ok-build:")
    assert {"PRE_BUILD", "BUILD", "POST_BUILD"} <= {p["name"] for p in details["phases"]}
    assert "phase BUILD" in lines and "phase COMPLETED" in lines
    assert "building cb-ok for run run-cb-ok" in lines  # a line from CloudWatch Logs
    assert any(line.startswith("[Container]") for line in lines)
    assert details["log_lines"] >= 5
    pushed = [m.group(1) for line in lines if (m := re.fullmatch(r".*/cb-ok@(sha256:[0-9a-f]{64})", line))]
    assert len(pushed) == 1, lines
    assert job.image is not None
    assert EcrRegistry(job.ctx).find(job, job.image.content_tag) == pushed[0]
    (start,) = operations(sandbox, "StartBuild")
    assert start["params"]["projectName"] == "cb-ok-build" and start["params"]["sourceVersion"] == repo.head
    assert operations(sandbox, "BatchGetBuilds")
    logs = [r for r in sandbox.requests() if r["service"] == "logs" and r["operation"] == "GetLogEvents"]
    assert logs


def test_start_build_carries_the_contract_and_the_buildspec(cb: Any) -> None:
    sandbox, repo, _ = cb
    job, _ = job_for(cb, "cb-lost")
    result = backend(job).build(job)
    assert result.ok
    (build,) = sandbox.client("codebuild").batch_get_builds(ids=[result.details["build_id"]])["builds"]
    env = {v["name"]: (v["value"], v["type"]) for v in build["environment"]["environmentVariables"]}
    assert job.image is not None
    assert env["DEPLOYFW_RUN_ID"] == ("run-cb-lost", "PLAINTEXT")
    assert env["IMAGE_TAG"] == (repo.head, "PLAINTEXT")
    assert env["IMAGE_CONTENT_TAG"] == (job.image.content_tag, "PLAINTEXT")
    assert env["REPOSITORY_URI"][0] == "123456789012.dkr.ecr.us-east-1.amazonaws.com/cb-lost"
    assert env["AWS_ACCOUNT_ID"][0] == "123456789012" and env["DEPLOYFW_MODULE_PATH"][0] == "services/cb-lost"
    assert build["source"]["buildspec"] == QUICK
    assert build["sourceVersion"] == repo.head


def test_build_fault_fails_with_the_phase_message(cb: Any) -> None:
    sandbox, _, _ = cb
    job, lines = job_for(cb, "cb-fail")
    sandbox.set_faults("build:cb-fail")
    try:
        result = backend(job).build(job)
    finally:
        sandbox.set_faults("")
    assert not result.ok
    assert result.details["status"] == "FAILED"
    assert "BUILD" in (result.error or "") and "build:cb-fail" in (result.error or "")
    assert any("State: FAILED" in line for line in lines)


def test_cancel_stops_the_build(cb: Any) -> None:
    sandbox, _, _ = cb
    job, lines = job_for(cb, "cb-slow")
    sandbox.clear_requests()
    cancel_when(lines, "started", job.ctx.cancel)
    result = backend(job).build(job)

    assert not result.ok
    assert result.details["status"] == "STOPPED"  # stopped, not run to its end
    assert "cancelled" in (result.error or "")
    (stop,) = operations(sandbox, "StopBuild")
    assert stop["params"]["id"] == result.details["build_id"]
    (build,) = sandbox.client("codebuild").batch_get_builds(ids=[result.details["build_id"]])["builds"]
    assert build["buildStatus"] == "STOPPED"


def test_deadline_stops_the_build_as_timed_out(cb: Any) -> None:
    sandbox, _, _ = cb
    job, lines = job_for(cb, "cb-slow")
    sandbox.clear_requests()
    now = [0.0]

    def clock() -> float:  # each poll "takes" 10 s once the build runs: the 1 minute deadline passes fast
        if any("started" in line for line in lines):
            now[0] += 10.0
        return now[0]

    result = backend(job, clock=clock, stop_grace=1e6).build(job)

    assert not result.ok
    assert result.details["status"] == "TIMED_OUT"
    assert "deadline of 1 minutes passed" in (result.error or "")
    assert len(operations(sandbox, "StopBuild")) == 1


class LosesFirstStartAnswer:
    """The AWS boundary, except that the first StartBuild succeeds and its answer is lost."""

    def __init__(self, aws: Aws) -> None:
        self._aws = aws
        self.lost = 0

    def call(self, service: str, operation: str, **params: Any) -> dict[str, Any]:
        answer = self._aws.call(service, operation, **params)
        if operation == "start_build" and not self.lost:
            self.lost += 1
            raise AwsError(service, operation, "Read timeout on endpoint URL")
        return answer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._aws, name)


def test_lost_start_answer_adopts_the_running_build(cb: Any) -> None:
    sandbox, _, _ = cb
    flaky = LosesFirstStartAnswer(Aws("us-east-1", endpoint_url=sandbox.endpoint_url))
    job, lines = job_for(cb, "cb-lost", run_id="run-lost-answer", aws=flaky)
    sandbox.clear_requests()

    result = backend(job).build(job)

    assert result.ok, (result.error, lines)
    assert flaky.lost == 1
    assert len(operations(sandbox, "StartBuild")) == 1
    assert operations(sandbox, "ListBuildsForProject")
    assert any(line.startswith("adopted build cb-lost-build:") for line in lines)
    assert "quick build" in lines


def test_missing_project_fails_without_retrying(cb: Any) -> None:
    sandbox, _, _ = cb
    job, _ = job_for(cb, "cb-noproj")
    sandbox.clear_requests()
    result = backend(job).build(job)
    assert not result.ok
    assert result.details["status"] == "NOT_STARTED"
    assert "cb-noproj-build" in (result.error or "")
    assert len(operations(sandbox, "StartBuild")) == 1


def test_plan_steps_and_preflight_make_no_calls(cb: Any) -> None:
    sandbox, _, config = cb
    job, _ = job_for(cb, "cb-ok")
    sandbox.clear_requests()
    build = CodeBuildBuild(job.ctx)
    steps = build.steps(config.modules["cb-ok"], config)
    assert "cb-ok-build" in steps[0] and "services/cb-ok/buildspec.yml" in steps[0]
    assert build.preflight(config.modules["cb-ok"], config) == []
    assert sandbox.requests() == []


class ScriptedAws:
    """A stand-in boundary for :func:`start_once` alone: StartBuild answers come from a script."""

    def __init__(
        self, starts: list[Any], existing: list[dict[str, Any]] | None = None, deadline: float = 120.0
    ) -> None:
        self.starts = starts
        self.existing = existing or []
        self.calls: list[str] = []
        self.deadline = deadline

    def call(self, service: str, operation: str, **params: Any) -> dict[str, Any]:
        self.calls.append(operation)
        if operation == "start_build":
            answer = self.starts.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return {"build": answer}
        if operation == "list_builds_for_project":
            return {"ids": [b["id"] for b in self.existing]}
        if operation == "batch_get_builds":
            return {"builds": [b for b in self.existing if b["id"] in params["ids"]]}
        raise AssertionError(operation)


def test_start_once_retries_only_when_no_build_of_the_run_exists() -> None:
    from deployfw_aws.codebuild_start import start_once

    throttled = AwsError("codebuild", "start_build", "Rate exceeded", "ThrottlingException")
    other_run = {"id": "p:old", "environment": {"environmentVariables": [{"name": "DEPLOYFW_RUN_ID", "value": "r0"}]}}
    aws = ScriptedAws([throttled, {"id": "p:new"}], existing=[other_run])
    params = {"projectName": "p"}
    logged: list[str] = []

    build = start_once(aws, params, run_id="r1", module="m", log=logged.append, wait=lambda _s: False)  # type: ignore[arg-type]

    assert build["id"] == "p:new"
    assert aws.calls == ["start_build", "list_builds_for_project", "batch_get_builds", "start_build"]
    assert "ThrottlingException" in logged[0]

    refused = AwsError("codebuild", "start_build", "no such project", "ResourceNotFoundException")
    aws = ScriptedAws([refused])
    with pytest.raises(AwsError, match="no such project"):
        start_once(aws, params, run_id="r1", module="m", log=logged.append, wait=lambda _s: False)  # type: ignore[arg-type]
    assert aws.calls == ["start_build"]


def test_start_once_keeps_trying_for_the_boundarys_deadline_not_a_fixed_count() -> None:
    """Heavy throttling is outlasted as any other call's would be; past the deadline the last error is raised."""
    from deployfw_aws.codebuild_start import start_once

    throttled = AwsError("codebuild", "start_build", "Rate exceeded", "ThrottlingException")
    now = [0.0]

    def wait(seconds: float) -> bool:
        now[0] += seconds
        return False

    aws = ScriptedAws([throttled] * 7 + [{"id": "p:late"}], deadline=60.0)
    build = start_once(aws, {"projectName": "p"}, run_id="r1", module="m", log=lambda _m: None,  # type: ignore[arg-type]
                       wait=wait, clock=lambda: now[0])  # fmt: skip
    assert build["id"] == "p:late"
    assert aws.calls.count("start_build") == 8

    now[0] = 0.0
    aws = ScriptedAws([throttled] * 50, deadline=20.0)
    with pytest.raises(AwsError, match="Rate exceeded"):
        start_once(aws, {"projectName": "p"}, run_id="r1", module="m", log=lambda _m: None,  # type: ignore[arg-type]
                   wait=wait, clock=lambda: now[0])  # fmt: skip
    assert 3 < aws.calls.count("start_build") < 50
    assert now[0] >= 20.0
