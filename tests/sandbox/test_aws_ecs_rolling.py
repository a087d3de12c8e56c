"""ECS rolling deployments: new PRIMARY deployment, completion, circuit-breaker rollback."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from deployfw.testing.images import image_for


def _taskdef(ecs: Any, family: str, tag: str) -> str:
    return ecs.register_task_definition(
        family=family,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[
            {
                "name": "app",
                "image": image_for(ecs, family, tag),
                "memory": 512,
                "portMappings": [{"containerPort": 8080}],
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]


def _service(ecs: Any, name: str) -> dict[str, Any]:
    return ecs.describe_services(cluster="test-cluster", services=[name])["services"][0]


def test_update_service_rolls_out_and_services_stable_holds(aws_client, aws_wait, no_faults):
    ecs = aws_client("ecs")
    ecs.get_waiter("services_stable").wait(
        cluster="test-cluster", services=["order-api"], WaiterConfig={"Delay": 1, "MaxAttempts": 10}
    )
    old = _service(ecs, "order-api")
    assert old["deploymentConfiguration"]["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    new_td = _taskdef(ecs, "order-api", "v2")
    updated = ecs.update_service(cluster="test-cluster", service="order-api", taskDefinition=new_td)["service"]
    primary, active = updated["deployments"][0], updated["deployments"][1]
    assert primary["status"] == "PRIMARY" and primary["taskDefinition"] == new_td
    assert primary["rolloutState"] == "IN_PROGRESS"
    assert active["status"] == "ACTIVE" and active["taskDefinition"] == old["taskDefinition"]
    ecs.get_waiter("services_stable").wait(
        cluster="test-cluster", services=["order-api"], WaiterConfig={"Delay": 1, "MaxAttempts": 10}
    )
    done = _service(ecs, "order-api")
    (only,) = done["deployments"]
    assert only["rolloutState"] == "COMPLETED" and only["id"] == primary["id"]
    assert done["runningCount"] == done["desiredCount"] == only["runningCount"]
    assert done["taskDefinition"] == new_td


def test_circuit_breaker_fails_and_rolls_back(aws_sandbox, aws_client, aws_wait, no_faults):
    ecs = aws_client("ecs")
    aws_wait(lambda: _service(ecs, "broken-api")["deployments"][0]["rolloutState"] == "COMPLETED")
    previous = _service(ecs, "broken-api")["taskDefinition"]
    aws_sandbox.set_faults("deploy:broken-api")
    bad = _taskdef(ecs, "broken-api", "broken")
    failed_id = ecs.update_service(cluster="test-cluster", service="broken-api", taskDefinition=bad)["service"][
        "deployments"
    ][0]["id"]

    def rolled_back() -> dict[str, Any] | None:
        svc = _service(ecs, "broken-api")
        primary = svc["deployments"][0]
        return svc if primary["id"] != failed_id and primary["rolloutState"] == "COMPLETED" else None

    failed_seen: list[dict[str, Any]] = []

    def watch() -> dict[str, Any] | None:
        svc = _service(ecs, "broken-api")
        failed_seen.extend(d for d in svc["deployments"] if d["id"] == failed_id and d["rolloutState"] == "FAILED")
        return rolled_back()

    svc = aws_wait(watch, interval=0.02)
    assert failed_seen and failed_seen[0]["failedTasks"] > 0
    assert "circuit breaker" in failed_seen[0]["rolloutStateReason"]
    assert svc["taskDefinition"] == previous
    assert svc["deployments"][0]["taskDefinition"] == previous
    assert any("rolling back" in e["message"] for e in svc["events"])


def test_code_deploy_service_refuses_task_definition_change(aws_client):
    ecs = aws_client("ecs")
    new_td = _taskdef(ecs, "user-api", "direct")
    with pytest.raises(ClientError) as refused:
        ecs.update_service(cluster="test-cluster", service="user-api", taskDefinition=new_td)
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
    assert "CODE_DEPLOY" in refused.value.response["Error"]["Message"]
    scaled = ecs.update_service(cluster="test-cluster", service="user-api", desiredCount=2)["service"]
    assert scaled["desiredCount"] == 2


def test_a_superseded_deployment_is_drained_not_completed(aws_client, aws_wait, no_faults):
    """Two updates in a row: the first never completes over the second, whose PRIMARY stays."""
    ecs = aws_client("ecs")
    aws_wait(lambda: _service(ecs, "order-api")["deployments"][0]["rolloutState"] == "COMPLETED")
    first = ecs.update_service(
        cluster="test-cluster", service="order-api", taskDefinition=_taskdef(ecs, "order-api", "v3")
    )["service"]["deployments"][0]
    second_td = _taskdef(ecs, "order-api", "v4")
    second = ecs.update_service(cluster="test-cluster", service="order-api", taskDefinition=second_td)["service"][
        "deployments"
    ][0]
    assert second["id"] != first["id"] and second["status"] == "PRIMARY"
    ecs.get_waiter("services_stable").wait(
        cluster="test-cluster", services=["order-api"], WaiterConfig={"Delay": 1, "MaxAttempts": 10}
    )
    (only,) = _service(ecs, "order-api")["deployments"]
    assert only["id"] == second["id"] and only["taskDefinition"] == second_td
    assert only["status"] == "PRIMARY" and only["rolloutState"] == "COMPLETED"
