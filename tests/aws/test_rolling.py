"""ecs-rolling: its own deployment followed to COMPLETED, FAILED (circuit breaker) or rolled back on cancel."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from aws_helpers import load, make_job, module_files

from deployfw.backends import ModuleJob
from deployfw_aws.deploy_common import Backoff
from deployfw_aws.rolling import RollingDeploy

FAST = Backoff(first=0.05, factor=2.0, cap=0.2)
ROLLING = {"backend": "ecs-rolling", "cluster": "test-cluster"}


@pytest.fixture
def job_for(repo: Any, sandbox: Any, infra: Any) -> Callable[..., ModuleJob]:
    def make(module: str = "roll-api", deploy: dict[str, Any] | None = None) -> ModuleJob:
        root = repo({module: deploy or ROLLING}, module_files(module, appspec=None), environments={"dev": {}})
        return make_job(load(root, "dev"), module, sandbox.endpoint_url)

    return make


def service_of(aws: Callable[[str], Any], name: str = "roll-api") -> dict[str, Any]:
    return aws("ecs").describe_services(cluster="test-cluster", services=[name])["services"][0]


def operations(sandbox: Any) -> list[str]:
    return [e["operation"] for e in sandbox.requests()]


def settled(aws: Callable[[str], Any]) -> None:
    """Wait until an earlier test's rollout (or rollback) of the shared service has finished."""
    deadline = time.monotonic() + 10
    while any(d.get("rolloutState") == "IN_PROGRESS" for d in service_of(aws)["deployments"]):
        assert time.monotonic() < deadline, "the shared service never settled"
        time.sleep(0.05)


def test_rolling_deploy_completes_its_own_deployment(job_for: Any, sandbox: Any, aws: Callable[[str], Any]) -> None:
    job = job_for()
    before = service_of(aws)["taskDefinition"]
    sandbox.clear_requests()

    result = RollingDeploy(job.ctx, backoff=FAST).deploy(job)

    assert result.ok, result.error
    details = result.details
    assert details["status"] == "COMPLETED" and result.rolled_back is False
    assert result.deployment_id.startswith("ecs-svc/") and details["previous_task_definition"] == before
    service = service_of(aws)
    assert service["taskDefinition"] == result.task_definition != before
    assert [d["id"] for d in service["deployments"]] == [result.deployment_id]
    assert service["deploymentConfiguration"]["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    taskdef = aws("ecs").describe_task_definition(taskDefinition=result.task_definition)["taskDefinition"]
    assert taskdef["containerDefinitions"][0]["image"] == job.image_uri
    ops = operations(sandbox)
    assert ops.count("UpdateService") == 1 and ops.count("RegisterTaskDefinition") == 1
    assert "COMPLETED" in job.log.text()  # type: ignore[attr-defined]


def test_circuit_breaker_rollback_is_a_failure(job_for: Any, sandbox: Any, aws: Callable[[str], Any]) -> None:
    job = job_for()
    before = service_of(aws)["taskDefinition"]
    sandbox.set_faults("deploy:roll-api")

    result = RollingDeploy(job.ctx, backoff=FAST).deploy(job)

    assert not result.ok
    assert result.rolled_back is True and result.details["status"] == "FAILED"
    assert result.error and "circuit breaker" in result.error
    primary = next(d for d in service_of(aws)["deployments"] if d["status"] == "PRIMARY")
    assert primary["taskDefinition"] == before and primary["id"] == result.details["rollback_deployment_id"]
    assert "failed" in job.log.text()  # type: ignore[attr-defined]  # ECS's own events are shown


def test_cancel_rolls_back_to_the_previous_task_definition(
    job_for: Any, sandbox: Any, aws: Callable[[str], Any]
) -> None:
    job = job_for()
    settled(aws)
    before = service_of(aws)["taskDefinition"]
    sandbox.clear_requests()

    def interrupt(seconds: float) -> None:
        job.ctx.cancel.set()

    result = RollingDeploy(job.ctx, sleep=interrupt, backoff=FAST).deploy(job)

    assert not result.ok and result.error and result.error.startswith("cancelled; rolled back to")
    assert result.rolled_back is True
    assert operations(sandbox).count("UpdateService") == 2
    assert service_of(aws)["taskDefinition"] == before
    # The rollback itself was followed to its end, not just requested.
    assert result.details["rollback_state"] == "rollback completed"
    rollback = next(d for d in service_of(aws)["deployments"] if d["id"] == result.details["rollback_deployment_id"])
    assert rollback["rolloutState"] == "COMPLETED"


def test_code_deploy_service_is_refused(job_for: Any, sandbox: Any) -> None:
    job = job_for("bg-api", {**ROLLING})
    sandbox.clear_requests()

    result = RollingDeploy(job.ctx).deploy(job)

    assert not result.ok and result.error and "CODE_DEPLOY" in result.error and "ecs-bluegreen" in result.error
    assert "RegisterTaskDefinition" not in operations(sandbox)


class ScriptedAws:
    """Answers DescribeServices from a script: the deployment this run started vanishes under someone else's."""

    def __init__(self) -> None:
        self.describes = 0

    def account_id(self) -> str:
        return "123456789012"

    def call(self, service: str, operation: str, /, **params: Any) -> dict[str, Any]:
        td = "arn:aws:ecs:us-east-1:123456789012:task-definition/roll-api:"
        if operation == "register_task_definition":
            return {"taskDefinition": {"taskDefinitionArn": td + "8"}}
        if operation == "update_service":
            ours = {"id": "ecs-svc/ours", "status": "PRIMARY", "taskDefinition": td + "8"}
            return {"service": {"deployments": [ours]}}
        self.describes += 1
        if self.describes == 1:
            deployments = [{"id": "ecs-svc/old", "status": "PRIMARY", "taskDefinition": td + "7"}]
        else:
            deployments = [{"id": "ecs-svc/theirs", "status": "PRIMARY", "taskDefinition": td + "9"}]
        service = {"status": "ACTIVE", "taskDefinition": td + "7", "deployments": deployments, "events": []}
        return {"services": [service]}


def test_superseded_deployment_is_a_failure(repo: Any) -> None:
    root = repo({"roll-api": ROLLING}, module_files("roll-api", appspec=None), environments={"dev": {}})
    job = make_job(load(root, "dev"), "roll-api", None)
    job.ctx.resource("aws", ScriptedAws)

    result = RollingDeploy(job.ctx, sleep=lambda s: None).deploy(job)

    assert not result.ok and result.details["status"] == "SUPERSEDED" and result.rolled_back is False
    assert result.error and "roll-api:9" in result.error


def test_steps(repo: Any) -> None:
    root = repo(
        {"roll-api": {**ROLLING, "timeout_minutes": 15}},
        module_files("roll-api", appspec=None),
        environments={"dev": {}},
    )
    config = load(root, "dev")
    steps = RollingDeploy(make_job(config, "roll-api", None).ctx).steps(config.modules["roll-api"], config)
    assert steps[1] == "register task definition from services/roll-api/taskdef.json"
    assert "circuit breaker (rollback on)" in steps[2] and steps[3].startswith("wait up to 15 min")


def test_waits_for_a_rollout_started_elsewhere_before_updating(
    job_for: Any, sandbox: Any, aws: Callable[[str], Any]
) -> None:
    """Never two rollouts of one service: one still in progress (started by hand) finishes first."""
    job = job_for()
    ecs = aws("ecs")
    settled(aws)
    current = service_of(aws)["taskDefinition"]
    step, sandbox.timings.rolling_step = sandbox.timings.rolling_step, 0.5  # keep the other one going a while
    try:
        other = ecs.update_service(cluster="test-cluster", service="roll-api", taskDefinition=current,
                                   forceNewDeployment=True)["service"]["deployments"][0]["id"]  # fmt: skip
        sandbox.clear_requests()
        result = RollingDeploy(job.ctx, backoff=FAST).deploy(job)
    finally:
        sandbox.timings.rolling_step = step

    assert result.ok, result.error
    assert f"deployment {other} of test-cluster/roll-api is still in progress" in job.log.text()  # type: ignore[attr-defined]
    ops = operations(sandbox)
    assert ops.count("UpdateService") == 1
    assert ops.index("UpdateService") > ops.index("DescribeServices", 1)  # it looked again before updating
