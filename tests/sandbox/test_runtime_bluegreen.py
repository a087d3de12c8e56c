"""CodeDeploy blue/green on real tasks: health decides, listeners show it, the clock paces it."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from deployfw.sandbox.clock import SandboxClock
from deployfw.testing.images import image_for

ACTIVE = ("Created", "Queued", "InProgress", "Ready")


def _control(sandbox: Any, name: str) -> Any:
    with urllib.request.urlopen(f"{sandbox.endpoint_url}/_sandbox/{name}", timeout=10) as answer:
        return json.load(answer)


def _url(sandbox: Any, balancer: str, port: int) -> str:
    (row,) = [r for r in _control(sandbox, "listeners") if r["load_balancer"] == balancer and r["port"] == port]
    return str(row["url"])


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.read().decode().strip()


def _taskdef(ecs: Any, family: str, image: str) -> str:
    return ecs.register_task_definition(
        family=family,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[{"name": "app", "image": image, "portMappings": [{"containerPort": 8080}]}],
    )["taskDefinition"]["taskDefinitionArn"]


def _appspec(taskdef: str) -> str:
    return (
        "version: 0.0\nResources:\n  - TargetService:\n      Type: AWS::ECS::Service\n"
        f'      Properties:\n        TaskDefinition: "{taskdef}"\n        LoadBalancerInfo:\n'
        "          ContainerName: app\n          ContainerPort: 8080\n"
    )


def _deploy(cd: Any, module: str, taskdef: str) -> str:
    return cd.create_deployment(
        applicationName=f"{module}-app",
        deploymentGroupName=f"{module}-dg",
        revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": _appspec(taskdef)}},
    )["deploymentId"]


def _watch(cd: Any, wait: Any, deployment_id: str, each: Any, timeout: float = 60) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        each()
        info = cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
        return None if info["status"] in ACTIVE else info

    return wait(done, timeout=timeout, interval=0.05)


def _settle(cd: Any, module: str, wait: Any) -> None:
    wait(lambda: not cd.list_deployments(applicationName=f"{module}-app", deploymentGroupName=f"{module}-dg",
                                         includeOnlyStatuses=list(ACTIVE))["deployments"], timeout=60)  # fmt: skip


def _good_baseline(cd: Any, ecs: Any, wait: Any, module: str, version: str) -> None:
    _settle(cd, module, wait)
    info = _watch(cd, wait, _deploy(cd, module, _taskdef(ecs, module, image_for(ecs, module, version))), lambda: 0)
    assert info["status"] == "Succeeded"


def test_test_listener_shows_the_replacement_before_production_switches(aws_sandbox, aws_client, aws_wait, no_faults):
    cd, ecs = aws_client("codedeploy"), aws_client("ecs")
    _good_baseline(cd, ecs, aws_wait, "user-api", "bg-1")
    prod, test = _url(aws_sandbox, "user-api-alb", 80), _url(aws_sandbox, "user-api-alb", 8080)
    assert _get(prod) == _get(test) == "bg-1"
    deployment_id = _deploy(cd, "user-api", _taskdef(ecs, "user-api", image_for(ecs, "user-api", "bg-2")))
    seen: list[tuple[str, str]] = []
    info = _watch(cd, aws_wait, deployment_id, lambda: seen.append((_get(prod), _get(test))))
    assert info["status"] == "Succeeded"
    seen.append((_get(prod), _get(test)))
    assert ("bg-1", "bg-2") in seen  # the replacement answered on the test listener first
    assert seen[-1] == ("bg-2", "bg-2")
    assert seen.index(("bg-1", "bg-2")) < seen.index(("bg-2", "bg-2"))
    target = cd.get_deployment_target(deploymentId=deployment_id, targetId="test-cluster:user-api")
    events = target["deploymentTarget"]["ecsTarget"]["lifecycleEvents"]
    assert [e["lifecycleEventName"] for e in events] == [
        "BeforeInstall",
        "Install",
        "AfterInstall",
        "AllowTestTraffic",
        "AfterAllowTestTraffic",
        "BeforeAllowTraffic",
        "AllowTraffic",
        "AfterAllowTraffic",
    ]
    assert all(e["status"] == "Succeeded" and e["startTime"] <= e["endTime"] for e in events)
    assert target["deploymentTarget"]["ecsTarget"]["targetArn"].endswith(":service/test-cluster/user-api")


def test_a_replacement_that_never_becomes_healthy_fails_and_rolls_back(aws_sandbox, aws_client, aws_wait, no_faults):
    cd, ecs = aws_client("codedeploy"), aws_client("ecs")
    _good_baseline(cd, ecs, aws_wait, "fail-api", "fine")
    prod = _url(aws_sandbox, "fail-api-alb", 80)
    sick = _taskdef(ecs, "fail-api", image_for(ecs, "fail-api", "sick", health_status=500))
    deployment_id = _deploy(cd, "fail-api", sick)
    served: set[str] = set()
    info = _watch(cd, aws_wait, deployment_id, lambda: served.add(_get(prod)))
    assert info["status"] == "Failed"
    assert info["errorInformation"]["code"] == "ECS_UPDATE_ERROR"
    assert "replacement task set to become healthy" in info["errorInformation"]["message"]
    assert served == {"fine"}
    rollback = info["rollbackInfo"]["rollbackDeploymentId"]
    final = _watch(cd, aws_wait, rollback, lambda: served.add(_get(prod)))
    assert final["status"] == "Succeeded" and served == {"fine"}
    service = ecs.describe_services(cluster="test-cluster", services=["fail-api"])["services"][0]
    assert [ts["taskDefinition"] for ts in service["taskSets"]] != [sick]
    assert sick not in {t["task_definition"] for t in _control(aws_sandbox, "tasks")}  # replacement tasks gone


def test_a_canary_on_the_scaled_clock_holds_its_share_then_completes(aws_sandbox, aws_client, aws_wait, no_faults):
    """ECSLinear10PercentEvery1Minutes at 300 sandbox seconds per second: ten steps, a sandbox minute apart."""
    cd, ecs = aws_client("codedeploy"), aws_client("ecs")
    _good_baseline(cd, ecs, aws_wait, "canary-svc", "lin-1")
    elb = aws_client("elbv2")
    listener = aws_sandbox.seeded.services["canary-svc"].listener_arns[0]
    before = elb.describe_listeners(ListenerArns=[listener])["Listeners"][0]["DefaultActions"][0]
    original = before["TargetGroupArn"]
    saved = aws_sandbox.ctx.clock
    aws_sandbox.ctx.clock = SandboxClock(300)
    try:
        deployment_id = _deploy(cd, "canary-svc", _taskdef(ecs, "canary-svc", image_for(ecs, "canary-svc", "lin-2")))
        weights: list[int] = []

        def sample() -> None:
            action = elb.describe_listeners(ListenerArns=[listener])["Listeners"][0]["DefaultActions"][0]
            groups = (action.get("ForwardConfig") or {}).get("TargetGroups") or []
            if groups:
                share = sum(g["Weight"] for g in groups if g["TargetGroupArn"] != original)
            else:
                share = 0 if action.get("TargetGroupArn") == original else 100
            if not weights or weights[-1] != share:
                weights.append(share)

        info = _watch(cd, aws_wait, deployment_id, sample, timeout=60)
    finally:
        aws_sandbox.ctx.clock = saved
    assert info["status"] == "Succeeded"
    assert weights == sorted(weights) and weights[-1] == 100  # step by step, never back
    assert set(weights) & {10, 20, 30, 40, 50, 60, 70, 80, 90}  # shares between the steps were served
    target = cd.get_deployment_target(deploymentId=deployment_id, targetId="test-cluster:canary-svc")
    (shift,) = [e for e in target["deploymentTarget"]["ecsTarget"]["lifecycleEvents"]
                if e["lifecycleEventName"] == "AllowTraffic"]  # fmt: skip
    # Nine one-minute intervals between ten steps took at least 9 * 60 / 300 real seconds (a lower
    # bound the sandbox cannot beat, however loaded the machine is).
    assert (shift["endTime"] - shift["startTime"]).total_seconds() >= 9 * 60 / 300
