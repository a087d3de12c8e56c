"""The ``codedeploy-server`` backend against the sandbox: preflight against the account, recovery, redeploy."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from servers_kit import make_group, upload, wait, write_bundle

from deployfw.backends import ArtifactRef, ModuleJob, RunContext
from deployfw.config import Config, load_config
from deployfw.plugins import PluginManager
from deployfw.state import DeployRecord, Scope
from deployfw.testing import GitRepoBuilder
from deployfw_aws.servers import ServerDeploy

MODULES = """\
version: 1
region: us-east-1
modules:
  {name}:
    path: svc
    build: {{backend: local}}
    registry: {{backend: s3, bucket: be-bundles}}
    deploy: {{backend: codedeploy-server, application: {name}, deployment_group: {name}, bundle: svc/bundle}}
"""


def _setup(git_repo: Callable[..., GitRepoBuilder], box: Any, name: str) -> tuple[Config, ServerDeploy, ModuleJob]:
    repo = git_repo({"modules.yaml": MODULES.format(name=name), "svc/buildspec.yml": "version: 0.2\nphases: {}\n"})
    write_bundle(repo.path / "svc/bundle", name, {"ValidateService": "true"})
    repo.commit({"svc/bundle/README": "bundle"})
    config = load_config(repo.path / "modules.yaml", catalog=PluginManager(entry_points=False).backends.catalog())
    ctx = RunContext(config=config, head=repo.head, run_id=f"run-{name}", region="us-east-1",
                     endpoint_url=box.endpoint_url)  # fmt: skip
    lines: list[str] = []
    job = ModuleJob(ctx, config.modules[name], lines.append)
    return config, ServerDeploy(ctx, sleep=lambda _s: None), job


def _live(deployer: ServerDeploy, job: ModuleJob) -> list[str]:
    """The failed live-check rows, as ``plan`` prints them; [] when every check passed."""
    return [f"{r.check}: {r.detail} (fix: {r.fix})" for r in deployer.live_checks(job) if not r.ok]


def test_live_checks_read_the_group_in_the_account(git_repo: Callable[..., GitRepoBuilder], box: Any) -> None:
    config, deployer, job = _setup(git_repo, box, "pre")
    assert list(deployer.preflight(config.modules["pre"], config)) == []  # static: the account is not asked
    assert any("deployment group: pre/pre in us-east-1 does not exist" in p for p in _live(deployer, job))
    codedeploy = box.client("codedeploy")
    codedeploy.create_application(applicationName="pre", computePlatform="Server")
    codedeploy.create_deployment_group(applicationName="pre", deploymentGroupName="pre",
                                       serviceRoleArn="arn:aws:iam::123456789012:role/cd",
                                       onPremisesInstanceTagFilters=[{"Key": "App", "Value": "pre",
                                                                      "Type": "KEY_AND_VALUE"}])  # fmt: skip
    assert any("the tag filters of pre/pre select no instance (App=pre)" in p and "register-on-premises" in p
               for p in _live(deployer, job))  # fmt: skip
    codedeploy.register_on_premises_instance(instanceName="pre-1", iamSessionArn="arn:aws:sts::123456789012:x/pre-1")
    codedeploy.add_tags_to_on_premises_instances(instanceNames=["pre-1"], tags=[{"Key": "App", "Value": "pre"}])
    assert _live(deployer, job) == []
    box.clear_requests()
    _live(deployer, job)
    assert {r["operation"] for r in box.requests()} <= {"GetDeploymentGroup", "ListOnPremisesInstances"}


def test_live_checks_refuse_a_group_on_another_platform(git_repo: Callable[..., GitRepoBuilder], box: Any) -> None:
    _, deployer, job = _setup(git_repo, box, "ecsapp")
    codedeploy = box.client("codedeploy")
    codedeploy.create_application(applicationName="ecsapp", computePlatform="Lambda")
    codedeploy.create_deployment_group(applicationName="ecsapp", deploymentGroupName="ecsapp",
                                       serviceRoleArn="arn:aws:iam::123456789012:role/cd")  # fmt: skip
    assert any("is on the Lambda platform, not Server" in p for p in _live(deployer, job))


def test_a_killed_runs_deployment_is_located_by_its_marker_and_followed(
    git_repo: Callable[..., GitRepoBuilder], box: Any, tmp_path: Path
) -> None:
    _, deployer, job = _setup(git_repo, box, "rec")
    make_group(box, "rec", 2)
    revision = upload(box, write_bundle(tmp_path / "b", "rec", {"AfterInstall": "sleep 0.3"}), "be-bundles", "r.zip")
    created = box.client("codedeploy").create_deployment(
        applicationName="rec", deploymentGroupName="rec", revision=revision,
        description="deployfw run dead-run module rec: s3://be-bundles/r.zip")["deploymentId"]  # fmt: skip
    assert deployer.locate(job, "other-run", None) is None
    assert deployer.locate(job, "dead-run", None) == created
    outcome = deployer.recover(job, created)
    assert outcome.ok and outcome.recorded == "succeeded" and outcome.deployment_id == created
    assert outcome.extra["revision"].startswith("s3://be-bundles/r.zip@")
    assert [i["status"] for i in outcome.details["instances"]] == ["Succeeded", "Succeeded"]
    gone = deployer.recover(job, "d-NOSUCH123")
    assert gone.gone and gone.recorded == "abandoned"


def test_redeploy_puts_a_recorded_revision_back_and_refuses_an_overwritten_one(
    git_repo: Callable[..., GitRepoBuilder], box: Any, tmp_path: Path
) -> None:
    _, deployer, job = _setup(git_repo, box, "redo")
    make_group(box, "redo", 2)
    revision = upload(box, write_bundle(tmp_path / "b", "redo", {}), "be-bundles", "redo.zip")
    location = revision["s3Location"]
    record = DeployRecord(Scope("123456789012", "us-east-1"), "redo", "old-run", "c0ffee",
                          extra={"revision": f"s3://be-bundles/redo.zip@{location['eTag']}"})  # fmt: skip
    outcome = deployer.redeploy(job, record)
    assert outcome.ok, outcome.error
    assert wait(box, str(outcome.deployment_id))["revision"]["s3Location"]["eTag"] == location["eTag"]
    upload(box, write_bundle(tmp_path / "c", "redo", {}, files={"version.txt": "other"}), "be-bundles", "redo.zip")
    refused = deployer.redeploy(job, record)
    assert not refused.ok and "was overwritten since run old-run deployed it" in (refused.error or "")


def test_deploy_needs_a_bundle(git_repo: Callable[..., GitRepoBuilder], box: Any) -> None:
    _, deployer, job = _setup(git_repo, box, "img")
    job.artifact = ArtifactRef("img", "123456789012.dkr.ecr.us-east-1.amazonaws.com/img", "c", "content-1")
    job.digest = "sha256:" + "0" * 64
    outcome = deployer.deploy(job)
    assert not outcome.ok and "needs registry: {backend: s3" in (outcome.error or "")


@pytest.mark.parametrize("config_name", ["CodeDeployDefault.ECSAllAtOnce", "CodeDeployDefault.LambdaAllAtOnce"])
def test_an_ecs_or_lambda_config_is_refused_before_any_call(
    git_repo: Callable[..., GitRepoBuilder], box: Any, config_name: str
) -> None:
    with_config = f"bundle: svc/bundle, deployment_config: {config_name}}}"
    text = MODULES.format(name="cfg").replace("bundle: svc/bundle}", with_config)
    repo = git_repo({"modules.yaml": text})
    write_bundle(repo.path / "svc/bundle", "cfg", {})
    config = load_config(repo.path / "modules.yaml", catalog=PluginManager(entry_points=False).backends.catalog())
    ctx = RunContext(config=config, head=repo.head, run_id="r", region="us-east-1", endpoint_url=box.endpoint_url)
    box.clear_requests()
    problems = [str(p) for p in ServerDeploy(ctx).preflight(config.modules["cfg"], config)]
    assert any(f"modules.cfg.deploy.deployment_config: {config_name} is not an EC2/on-premises deployment config" in p
               for p in problems)  # fmt: skip
    assert box.requests() == []
