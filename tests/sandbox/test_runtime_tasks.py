"""Tasks are processes: started from the pushed image, counted honestly, stopped for real."""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError

from deployfw.testing.images import image_for


def _control(sandbox: Any, name: str) -> Any:
    with urllib.request.urlopen(f"{sandbox.endpoint_url}/_sandbox/{name}", timeout=10) as answer:
        return json.load(answer)


def _service(ecs: Any, name: str) -> dict[str, Any]:
    return ecs.describe_services(cluster="test-cluster", services=[name])["services"][0]


def _taskdef(ecs: Any, family: str, image: str) -> str:
    return ecs.register_task_definition(
        family=family,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[
            {"name": "app", "image": image, "essential": True, "portMappings": [{"containerPort": 8080}]}
        ],
    )["taskDefinition"]["taskDefinitionArn"]


def _listener_url(sandbox: Any, balancer: str, port: int = 80) -> str:
    (row,) = [r for r in _control(sandbox, "listeners") if r["load_balancer"] == balancer and r["port"] == port]
    return str(row["url"])


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.read().decode().strip()


def test_a_rolling_deploy_runs_the_pushed_image_and_the_listener_serves_it(
    aws_sandbox, aws_client, aws_wait, no_faults
):
    ecs = aws_client("ecs")
    aws_wait(lambda: _service(ecs, "order-api")["deployments"][0]["rolloutState"] == "COMPLETED", timeout=30)
    image = image_for(ecs, "order-api", "tasks-v1")
    taskdef = _taskdef(ecs, "order-api", image)
    ecs.update_service(cluster="test-cluster", service="order-api", taskDefinition=taskdef)
    ecs.get_waiter("services_stable").wait(
        cluster="test-cluster", services=["order-api"], WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    service = _service(ecs, "order-api")
    assert service["runningCount"] == service["desiredCount"] == 1 and service["pendingCount"] == 0
    arns = ecs.list_tasks(cluster="test-cluster", serviceName="order-api")["taskArns"]
    assert len(arns) == 1
    (task,) = ecs.describe_tasks(cluster="test-cluster", tasks=arns)["tasks"]
    assert task["lastStatus"] == "RUNNING" and task["desiredStatus"] == "RUNNING"
    assert task["taskDefinitionArn"] == taskdef and task["group"] == "service:order-api"
    assert task["healthStatus"] == "HEALTHY"
    (container,) = task["containers"]
    assert container["image"] == image and container["lastStatus"] == "RUNNING"
    address = container["networkInterfaces"][0]["privateIpv4Address"]
    assert _get(f"http://{address}:8080/") == "tasks-v1"  # the task's own address, the app's usual port
    listed = [t for t in _control(aws_sandbox, "tasks") if t["service"] == "order-api"]
    assert [(t["task_arn"], t["address"], t["port"], t["health"]) for t in listed] == [
        (arns[0], address, 8080, "healthy")
    ]
    assert _get(_listener_url(aws_sandbox, "order-api-alb")) == "tasks-v1"
    group = aws_sandbox.seeded.services["order-api"].target_group_arns[0]
    health = aws_client("elbv2").describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]
    assert [(h["Target"]["Id"], h["Target"]["Port"], h["TargetHealth"]["State"]) for h in health] == [
        (address, 8080, "healthy")
    ]


def test_on_the_instant_clock_a_healthy_target_is_rechecked_at_a_settled_pace(
    aws_sandbox, aws_client, aws_wait, no_faults
):
    """Scale 0 makes the health-check interval pass at once; a healthy target is still not probed 20 times a second."""
    import time

    from deployfw.sandbox.aws.health import SETTLED_RECHECK_AT_ZERO

    assert aws_sandbox.clock.instant
    group = aws_sandbox.seeded.services["order-api"].target_group_arns[0]
    elbv2 = aws_client("elbv2")

    def healthy() -> Any:
        found = elbv2.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]
        return next((h["Target"] for h in found if h["TargetHealth"]["State"] == "healthy"), None)

    target = aws_wait(healthy, timeout=30)
    state = aws_sandbox.ctx.health.state((group, target["Id"], target["Port"]))
    before, started = state.probes, time.monotonic()
    aws_wait(lambda: state.probes >= before + 3, timeout=30)  # still checked...
    probes, elapsed = state.probes - before, time.monotonic() - started
    assert probes <= elapsed / SETTLED_RECHECK_AT_ZERO + 1, (probes, elapsed)  # ...but not at the fast pace
    assert state.state == "healthy"


def test_stop_task_stops_the_process_and_the_service_replaces_it(aws_sandbox, aws_client, aws_wait, no_faults):
    ecs = aws_client("ecs")
    ecs.get_waiter("services_stable").wait(
        cluster="test-cluster", services=["order-api"], WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    (arn,) = ecs.list_tasks(cluster="test-cluster", serviceName="order-api")["taskArns"]
    state = aws_sandbox.ctx.runtime.get(arn.split("/")[-1])
    pid = state.containers[0].pid
    stopped = ecs.stop_task(cluster="test-cluster", task=arn, reason="test stop")["task"]
    assert stopped["desiredStatus"] == "STOPPED"

    def gone() -> dict[str, Any] | None:
        (task,) = ecs.describe_tasks(cluster="test-cluster", tasks=[arn])["tasks"]
        return task if task["lastStatus"] == "STOPPED" else None

    task = aws_wait(gone, timeout=30)
    assert task["stoppedReason"] == "test stop"
    assert "exitCode" in task["containers"][0]
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert arn in ecs.list_tasks(cluster="test-cluster", serviceName="order-api", desiredStatus="STOPPED")["taskArns"]
    replacement = aws_wait(lambda: ecs.list_tasks(cluster="test-cluster", serviceName="order-api")["taskArns"])
    assert replacement != [arn]


def test_an_app_that_exits_at_start_trips_the_circuit_breaker_at_ecs_threshold(
    aws_sandbox, aws_client, aws_wait, no_faults
):
    ecs = aws_client("ecs")
    good = _taskdef(ecs, "broken-api", image_for(ecs, "broken-api", "good"))
    ecs.update_service(cluster="test-cluster", service="broken-api", taskDefinition=good)
    ecs.get_waiter("services_stable").wait(
        cluster="test-cluster", services=["broken-api"], WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    url = _listener_url(aws_sandbox, "broken-api-alb")
    assert _get(url) == "good"
    bad = _taskdef(ecs, "broken-api", image_for(ecs, "broken-api", "bad", exit_at_start=True))
    failed_id = ecs.update_service(cluster="test-cluster", service="broken-api", taskDefinition=bad)["service"][
        "deployments"
    ][0]["id"]
    served: set[str] = set()
    failed: list[dict[str, Any]] = []

    def rolled_back() -> dict[str, Any] | None:
        served.add(_get(url))
        service = _service(ecs, "broken-api")
        failed.extend(d for d in service["deployments"] if d["id"] == failed_id and d["rolloutState"] == "FAILED")
        primary = service["deployments"][0]
        return service if primary["id"] != failed_id and primary["rolloutState"] == "COMPLETED" else None

    service = aws_wait(rolled_back, timeout=60, interval=0.05)
    # desiredCount 1: ECS's threshold is max(3, ceil(0.5 * 1)) = 3 failed tasks.
    assert failed and failed[0]["failedTasks"] == 3
    assert "circuit breaker" in failed[0]["rolloutStateReason"]
    assert service["taskDefinition"] == good
    assert served == {"good"}  # the listener served the previous version throughout
    stopped = ecs.list_tasks(cluster="test-cluster", serviceName="broken-api", desiredStatus="STOPPED")["taskArns"]
    reasons = {t["stoppedReason"] for t in ecs.describe_tasks(cluster="test-cluster", tasks=stopped)["tasks"]
               if t["taskDefinitionArn"] == bad}  # fmt: skip
    assert reasons == {"Essential container in task exited"}


def test_an_image_ecr_does_not_hold_cannot_be_pulled(aws_client):
    ecs = aws_client("ecs")
    taskdef = _taskdef(ecs, "broken-api", "public.example/nope:1")
    (task,) = ecs.run_task(
        cluster="test-cluster",
        taskDefinition=taskdef,
        launchType="FARGATE",
        count=1,
        networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-1"]}},
    )["tasks"]

    def stopped() -> dict[str, Any] | None:
        (found,) = ecs.describe_tasks(cluster="test-cluster", tasks=[task["taskArn"]])["tasks"]
        return found if found["lastStatus"] == "STOPPED" else None

    import time

    deadline = time.monotonic() + 20
    while (found := stopped()) is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert found["stoppedReason"].startswith("CannotPullContainerError")
    assert found["stopCode"] == "TaskFailedToStart"


def test_describe_tasks_reports_missing_tasks_as_failures(aws_client):
    ecs = aws_client("ecs")
    answer = ecs.describe_tasks(cluster="test-cluster", tasks=["0123456789abcdef0123456789abcdef"])
    assert answer["tasks"] == [] and answer["failures"][0]["reason"] == "MISSING"
    with pytest.raises(ClientError):
        ecs.describe_tasks(cluster="test-cluster", tasks=[])
