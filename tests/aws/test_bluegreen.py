"""ecs-bluegreen and ecs-nlb against the sandbox's CodeDeploy/ECS/ELB lifecycles."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from aws_helpers import CANARY, load, make_job, module_files

from deployfw.aws.clients import Aws, AwsError
from deployfw.backends import ModuleJob, StageResult
from deployfw_aws.bluegreen import BlueGreenDeploy, NlbDeploy
from deployfw_aws.deploy_common import Backoff

FAST = Backoff(first=0.05, factor=2.0, cap=0.2)


def deploy_config(module: str, **extra: Any) -> dict[str, Any]:
    """A module deploying to the service the sandbox seeding creates for ``module``."""
    return {
        "backend": "ecs-bluegreen",
        "cluster": "test-cluster",
        "application": f"{module}-app",
        "deployment_group": f"{module}-dg",
        **extra,
    }


@pytest.fixture
def job_for(repo: Any, sandbox: Any, infra: Any) -> Callable[..., tuple[ModuleJob, Any]]:
    """A deploy job for a seeded service's module, and what seeding created for it."""

    def make(module: str, deploy: dict[str, Any] | None = None, *, run_id: str | None = None) -> tuple[ModuleJob, Any]:
        root = repo({module: deploy or deploy_config(module)}, module_files(module), environments={"dev": {}})
        return make_job(load(root, "dev"), module, sandbox.endpoint_url, run_id=run_id), infra.services[module]

    return make


def operations(sandbox: Any) -> list[str]:
    return [e["operation"] for e in sandbox.requests()]


def primary_task_set(aws: Callable[[str], Any], service: str) -> dict[str, Any]:
    found = aws("ecs").describe_services(cluster="test-cluster", services=[service])["services"][0]
    return next(ts for ts in found["taskSets"] if ts["status"] == "PRIMARY")


def forwards_to(aws: Callable[[str], Any], listener_arn: str) -> list[str]:
    [listener] = aws("elbv2").describe_listeners(ListenerArns=[listener_arn])["Listeners"]
    action = listener["DefaultActions"][0]
    groups = (action.get("ForwardConfig") or {}).get("TargetGroups")
    if groups:
        return [g["TargetGroupArn"] for g in groups if g.get("Weight", 1)]
    return [action["TargetGroupArn"]]


def test_canary_deploy_succeeds_and_production_serves_the_new_task_set(
    job_for: Any, sandbox: Any, aws: Callable[[str], Any]
) -> None:
    job, service = job_for("bg-api", deploy_config("bg-api", deployment_config=CANARY))
    sandbox.clear_requests()

    result = BlueGreenDeploy(job.ctx, backoff=FAST).deploy(job)

    assert result.ok, result.error
    details = result.details
    assert details["backend"] == "ecs-bluegreen" and details["status"] == "Succeeded"
    assert result.rolled_back is False and result.deployment_id.startswith("d-")
    assert details["deployment_config"] == CANARY
    primary = primary_task_set(aws, "bg-api")
    assert primary["taskDefinition"] == result.task_definition
    taskdef = aws("ecs").describe_task_definition(taskDefinition=primary["taskDefinition"])["taskDefinition"]
    assert taskdef["containerDefinitions"][0]["image"] == job.image_uri  # repo@sha256:...
    assert forwards_to(aws, service.listener_arns[0]) == [primary["loadBalancers"][0]["targetGroupArn"]]
    info = aws("codedeploy").get_deployment(deploymentId=result.deployment_id)["deploymentInfo"]
    assert info["deploymentConfigName"] == CANARY
    assert job.ctx.run_id in info["description"]
    assert info["revision"]["revisionType"] == "AppSpecContent"
    ops = operations(sandbox)
    assert ops.count("CreateDeployment") == 1 and ops.count("RegisterTaskDefinition") == 1
    log = job.log.text()  # type: ignore[attr-defined]
    assert "Succeeded" in log and "10%" in log


def test_failed_deployment_is_rolled_back_and_reported_failed(
    job_for: Any, sandbox: Any, aws: Callable[[str], Any]
) -> None:
    job, service = job_for("bg-api")
    before = primary_task_set(aws, "bg-api")
    sandbox.set_faults("deploy:bg-api")

    result = BlueGreenDeploy(job.ctx, backoff=FAST).deploy(job)

    assert not result.ok
    assert result.rolled_back is True and result.details["status"] == "Failed"
    assert result.details["error_information"]["code"] == "HEALTH_CONSTRAINTS"
    assert result.error and result.error.startswith("HEALTH_CONSTRAINTS") and "rolled back" in result.error
    assert primary_task_set(aws, "bg-api")["taskDefinition"] == before["taskDefinition"]
    assert forwards_to(aws, service.listener_arns[0]) == [before["loadBalancers"][0]["targetGroupArn"]]


def test_cancel_stops_the_deployment_with_rollback(job_for: Any, sandbox: Any, aws: Callable[[str], Any]) -> None:
    job, _ = job_for("bg-api", deploy_config("bg-api", deployment_config=CANARY))
    before = primary_task_set(aws, "bg-api")
    sandbox.clear_requests()

    def interrupt(seconds: float) -> None:  # Ctrl-C arrives during the first wait
        job.ctx.cancel.set()

    result = BlueGreenDeploy(job.ctx, sleep=interrupt, backoff=FAST).deploy(job)

    assert not result.ok and result.error and result.error.startswith("cancelled")
    assert result.rolled_back is True and result.details["status"] == "Stopped"
    assert "StopDeployment" in operations(sandbox)
    assert primary_task_set(aws, "bg-api")["taskDefinition"] == before["taskDefinition"]


def test_timeout_stops_the_deployment_with_rollback(job_for: Any, sandbox: Any) -> None:
    job, _ = job_for("bg-api", deploy_config("bg-api", timeout_minutes=1))
    ticks = itertools.count(step=45.0)  # every clock read is 45 s later

    result = BlueGreenDeploy(job.ctx, clock=lambda: next(ticks), sleep=lambda s: None, backoff=FAST).deploy(job)

    assert not result.ok and result.error and result.error.startswith("timed out after 1 min")
    assert result.rolled_back is True


class LostAnswer(Aws):
    """CreateDeployment reaches CodeDeploy, but the answer is lost on the way back."""

    lost = False

    def call(self, service: str, operation: str, /, *, deadline: float | None = None, **params: Any) -> dict[str, Any]:
        result = super().call(service, operation, deadline=deadline, **params)
        if operation == "create_deployment" and not self.lost:
            self.lost = True
            raise AwsError(service, operation, "Read timeout on endpoint URL")
        return result


def test_lost_create_answer_finds_the_first_deployment(job_for: Any, sandbox: Any) -> None:
    job, _ = job_for("bg-api")
    job.ctx.resource("aws", lambda: LostAnswer(job.ctx.region, endpoint_url=sandbox.endpoint_url))
    sandbox.clear_requests()

    result = BlueGreenDeploy(job.ctx, backoff=FAST).deploy(job)

    assert result.ok, result.error
    ops = operations(sandbox)
    assert ops.count("CreateDeployment") == 1
    assert "ListDeployments" in ops
    assert "created by this run" in job.log.text()  # type: ignore[attr-defined]


class Crash(Exception):
    """The deploying process dies (agent lost, pod evicted) mid-wait."""


def test_retried_run_resumes_its_deployment_instead_of_starting_another(job_for: Any, sandbox: Any) -> None:
    job, _ = job_for("bg-api", deploy_config("bg-api", deployment_config=CANARY), run_id=f"run-{uuid.uuid4().hex[:8]}")
    sandbox.clear_requests()

    def die(seconds: float) -> None:
        raise Crash

    with pytest.raises(Crash):
        BlueGreenDeploy(job.ctx, sleep=die, backoff=FAST).deploy(job)
    first = job.ctx
    again, _ = job_for("bg-api", deploy_config("bg-api", deployment_config=CANARY), run_id=first.run_id)

    result = BlueGreenDeploy(again.ctx, backoff=FAST).deploy(again)

    assert result.ok, result.error
    assert operations(sandbox).count("CreateDeployment") == 1
    assert "resuming deployment" in again.log.text()  # type: ignore[attr-defined]


def test_group_of_another_service_is_refused_before_any_change(job_for: Any, sandbox: Any) -> None:
    job, _ = job_for("bg-api", deploy_config("bg-api", application="canary-api-app", deployment_group="canary-api-dg"))
    sandbox.clear_requests()

    result = BlueGreenDeploy(job.ctx).deploy(job)

    assert not result.ok and result.error and "test-cluster/canary-api" in result.error
    assert "RegisterTaskDefinition" not in operations(sandbox)


def test_nlb_deploys_all_at_once(job_for: Any, aws: Callable[[str], Any]) -> None:
    job, service = job_for("nlb-api", {**deploy_config("nlb-api"), "backend": "ecs-nlb"})

    result = NlbDeploy(job.ctx, backoff=FAST).deploy(job)

    assert result.ok, result.error
    assert result.details["backend"] == "ecs-nlb"
    assert result.details["deployment_config"] == "CodeDeployDefault.ECSAllAtOnce"
    primary = primary_task_set(aws, "nlb-api")
    assert forwards_to(aws, service.listener_arns[0]) == [primary["loadBalancers"][0]["targetGroupArn"]]


def test_nlb_refuses_a_group_configured_for_canary(job_for: Any, sandbox: Any) -> None:
    job, _ = job_for("canary-api", {**deploy_config("canary-api"), "backend": "ecs-nlb"})
    sandbox.clear_requests()

    result = NlbDeploy(job.ctx).deploy(job)

    assert not result.ok and result.error and CANARY in result.error and "ECSAllAtOnce" in result.error
    assert "CreateDeployment" not in operations(sandbox)


def test_nlb_preflight_and_steps(repo: Any) -> None:
    from deployfw.config import load_config

    root = repo(
        {"nlb-api": {"backend": "ecs-nlb", "cluster": "c", "deployment_config": CANARY}},
        module_files("nlb-api"),
        environments={"dev": {}},
    )
    config = load_config(root / "modules.yaml", env="dev")  # as a config that bypassed the schema
    backend = NlbDeploy(make_job(config, "nlb-api", None).ctx)
    [problem] = backend.preflight(config.modules["nlb-api"], config)
    assert problem.key == "modules.nlb-api.deploy.deployment_config"
    steps = backend.steps(config.modules["nlb-api"], config)
    assert any("CodeDeployDefault.ECSAllAtOnce" in s for s in steps)


def test_steps_say_what_will_happen(repo: Any) -> None:
    root = repo(
        {"user-api": deploy_config("user-api", deployment_config=CANARY, timeout_minutes=60)},
        module_files("user-api"),
        environments={"dev": {}},
    )
    config = load(root, "dev")
    steps = BlueGreenDeploy(make_job(config, "user-api", None).ctx).steps(config.modules["user-api"], config)
    assert steps[1] == "register task definition from services/user-api/taskdef.json"
    assert steps[2] == f"create CodeDeploy deployment in user-api-app/user-api-dg with {CANARY}"
    assert steps[3].startswith("wait up to 60 min; stop and roll back")


def test_deadline_follows_the_groups_wait_settings(repo: Any) -> None:
    root = repo({"user-api": deploy_config("user-api")}, module_files("user-api"), environments={"dev": {}})
    config = load(root, "dev")
    backend = BlueGreenDeploy(make_job(config, "user-api", None).ctx)
    target = __import__("deployfw_aws.deploy_common", fromlist=["target_of"]).target_of(
        config, config.modules["user-api"]
    )
    group = {
        "blueGreenDeploymentConfiguration": {
            "deploymentReadyOption": {"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 20},
            "terminateBlueInstancesOnDeploymentSuccess": {"action": "TERMINATE", "terminationWaitTimeInMinutes": 60},
        }
    }
    assert backend._deadline_seconds(target, group, "CodeDeployDefault.ECSCanary10Percent15Minutes") == 105 * 60
    assert backend._deadline_seconds(target, {}, None) == 30 * 60
    group["blueGreenDeploymentConfiguration"]["terminateBlueInstancesOnDeploymentSuccess"][
        "terminationWaitTimeInMinutes"
    ] = 2880
    assert backend._deadline_seconds(target, group, None) == 360 * 60


def test_no_image_is_a_failure_without_aws(repo: Any) -> None:
    root = repo({"user-api": deploy_config("user-api")}, module_files("user-api"), environments={"dev": {}})
    config = load(root, "dev")
    job = make_job(config, "user-api", "http://127.0.0.1:9")  # nothing listens there
    job.digest = None
    started = time.monotonic()
    result: StageResult = BlueGreenDeploy(job.ctx).deploy(job)
    assert not result.ok and result.error == "no image digest to deploy"
    assert time.monotonic() - started < 1


def test_waits_for_a_deployment_started_elsewhere_before_creating_its_own(
    job_for: Any, sandbox: Any, aws: Callable[[str], Any]
) -> None:
    """Never two deployments of one service: another tool's active deployment finishes first."""
    job, _ = job_for("bg-api")
    codedeploy = aws("codedeploy")
    group = codedeploy.get_deployment_group(applicationName="bg-api-app", deploymentGroupName="bg-api-dg")
    last = group["deploymentGroupInfo"]["lastSuccessfulDeployment"]["deploymentId"]
    revision = codedeploy.get_deployment(deploymentId=last)["deploymentInfo"]["revision"]
    step, sandbox.timings.deploy_step = sandbox.timings.deploy_step, 0.5  # keep the other one active a while
    try:
        other = codedeploy.create_deployment(
            applicationName="bg-api-app", deploymentGroupName="bg-api-dg", revision=revision, description="by hand"
        )["deploymentId"]
        sandbox.clear_requests()
        result = BlueGreenDeploy(job.ctx, backoff=FAST).deploy(job)
    finally:
        sandbox.timings.deploy_step = step

    requests = sandbox.requests()
    assert result.ok, result.error
    assert codedeploy.get_deployment(deploymentId=other)["deploymentInfo"]["status"] == "Succeeded"
    log = job.log.text()  # type: ignore[attr-defined]
    assert f"deployment {other} of bg-api-app/bg-api-dg is still active" in log
    created = [i for i, r in enumerate(requests) if r["operation"] == "CreateDeployment"]
    polled = [i for i, r in enumerate(requests)
              if r["operation"] == "GetDeployment" and r.get("params", {}).get("deploymentId") == other]  # fmt: skip
    assert len(created) == 1 and polled and max(polled) < created[0]
