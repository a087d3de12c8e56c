"""The ECS blue/green mechanics of a CodeDeploy deployment.

What CodeDeploy does to an ECS service, step by step: create a replacement task set
registered with the target group the production listener is *not* using, point the
test listener at it, shift production traffic by the deployment config's steps,
then make the replacement primary and remove the original. On failure the listeners
go back to the original target group and the replacement is deleted.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from deployfw.sandbox.aws import appspec, elb
from deployfw.sandbox.aws import codedeploy_errors as errors
from deployfw.sandbox.aws.deployment_configs import NLB_ONLY

if TYPE_CHECKING:
    from moto.codedeploy.models import DeploymentGroup, DeploymentInfo

    from deployfw.sandbox.aws.codedeploy import Progress, SandboxCodeDeployBackend


def _ecs(backend: Any) -> Any:
    from moto.ecs.models import ecs_backends

    return ecs_backends[backend.account_id][backend.region_name]


def _pair(load_balancer_info: dict[str, Any]) -> dict[str, Any]:
    pairs = (load_balancer_info or {}).get("targetGroupPairInfoList") or []
    return pairs[0] if pairs else {}


def _group_arns(elbv2: Any, pair: dict[str, Any]) -> list[str | None]:
    by_name = {tg.name: arn for arn, tg in elbv2.target_groups.items()}
    return [by_name.get(g.get("name", "")) for g in pair.get("targetGroups", [])]


def validate_group(backend: SandboxCodeDeployBackend, spec: dict[str, Any], config: str) -> None:
    """The checks AWS makes when an ECS deployment group is created or updated."""
    services = spec.get("ecs_services") or []
    if len(services) != 1:
        raise errors.invalid_ecs_service("An ECS deployment group needs exactly one ECS service")
    ecs = _ecs(backend)
    cluster, name = services[0].get("clusterName", ""), services[0].get("serviceName", "")
    try:
        service = ecs._get_service(cluster, name)
    except Exception:
        raise errors.invalid_ecs_service(f"The ECS service {name} in cluster {cluster} does not exist") from None
    if (service.deployment_controller or {}).get("type") != "CODE_DEPLOY":
        raise errors.invalid_ecs_service(
            "Deployment group's ECS service must be configured for a CODE_DEPLOY deployment controller."
        )
    pair = _pair(spec.get("load_balancer_info") or {})
    names = [g.get("name") for g in pair.get("targetGroups", [])]
    if len(names) != 2:
        raise errors.invalid_target_group_pair(
            "An ECS blue/green deployment group needs a target group pair (two target groups)"
        )
    elbv2 = elb.elbv2(backend.account_id, backend.region_name)
    arns = _group_arns(elbv2, pair)
    for group_name, arn in zip(names, arns, strict=True):
        if arn is None:
            raise errors.invalid_target_group_pair(f"Target group {group_name} does not exist")
    prod = (pair.get("prodTrafficRoute") or {}).get("listenerArns") or []
    if not prod:
        raise errors.invalid_target_group_pair("The production traffic route has no listener")
    for listener_arn in prod + ((pair.get("testTrafficRoute") or {}).get("listenerArns") or []):
        listener = elb.find_listener(elbv2, listener_arn)
        if listener is None:
            raise errors.invalid_target_group_pair(f"Listener {listener_arn} does not exist")
        if not set(elb.weights(listener)) & set(arns):
            raise errors.invalid_target_group_pair(
                f"Listener {listener_arn} does not forward to either target group of the pair"
            )
    if elb.balancer_type_of_group(elbv2, str(arns[0])) == "network" and config != NLB_ONLY:
        raise errors.invalid_config_name(
            f"Deployment configuration {config} is not supported for an ECS deployment group "
            f"behind a Network Load Balancer; only {NLB_ONLY} is."
        )


def check_nlb_config(backend: SandboxCodeDeployBackend, group: DeploymentGroup, config: str) -> None:
    """NLB groups accept only ECSAllAtOnce, whatever the deployment asks for."""
    elbv2 = elb.elbv2(backend.account_id, backend.region_name)
    arns = [a for a in _group_arns(elbv2, _pair(group.load_balancer_info)) if a]
    if arns and elb.balancer_type_of_group(elbv2, arns[0]) == "network" and config != NLB_ONLY:
        raise errors.invalid_config_name(
            f"Deployment configuration {config} is not supported for an ECS deployment group "
            f"behind a Network Load Balancer; only {NLB_ONLY} is."
        )


def _fail(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


def step(backend: SandboxCodeDeployBackend, deployment: DeploymentInfo, progress: Progress) -> dict[str, str] | None:
    """Perform the next stage; return ``errorInformation`` when the deployment fails."""
    if progress.stage == "start":
        failure = _start(backend, deployment, progress)
        if failure is None:
            progress.stage = "unhealthy" if progress.fail_health else "shift"
        return failure
    state = progress.ecs
    elbv2 = elb.elbv2(backend.account_id, backend.region_name)
    if progress.stage == "unhealthy":
        return _fail(
            "HEALTH_CONSTRAINTS",
            f"The replacement task set's targets in target group {state['replacement_tg_name']} "
            "failed ELB health checks (deployfw sandbox fault "
            f"deploy:{progress.module}).",
        )
    if progress.stage == "shift":
        share = progress.steps[progress.shift_index]
        progress.shift_index += 1
        progress.traffic.append(share)
        for listener_arn in state["prod_listeners"]:
            elb.route(
                elbv2,
                listener_arn,
                {state["original_tg"]: 100 - share, state["replacement_tg"]: share},
            )
        deployment.deployment_status_messages.append(
            f"Production traffic shifted: {share}% to the replacement task set"
        )
        progress.events.append({"lifecycleEventName": f"AllowTraffic {share}%"})
        if progress.shift_index >= len(progress.steps):
            progress.stage = "cleanup"
        return None
    if progress.stage == "cleanup":
        ecs = _ecs(backend)
        ecs.update_service_primary_task_set(state["cluster"], state["service"], state["replacement_ts"])
        if state.get("original_ts"):
            with contextlib.suppress(Exception):
                ecs.delete_task_set(state["cluster"], state["service"], state["original_ts"])
        progress.stage = "done"
    return None


def _start(backend: SandboxCodeDeployBackend, deployment: DeploymentInfo, progress: Progress) -> dict[str, str] | None:
    group = deployment.deployment_group
    ecs = _ecs(backend)
    elbv2 = elb.elbv2(backend.account_id, backend.region_name)
    try:
        spec = appspec.parse_ecs(appspec.revision_content(deployment.revision))
    except ValueError as exc:
        return _fail("INVALID_REVISION", str(exc))
    svc_ref = (group.ecs_services or [{}])[0]
    cluster, service_name = svc_ref.get("clusterName", ""), svc_ref.get("serviceName", "")
    try:
        service = ecs._get_service(cluster, service_name)
    except Exception:
        return _fail("INVALID_ECS_SERVICE", f"The ECS service {service_name} does not exist")
    try:
        taskdef = ecs.describe_task_definition(spec.task_definition)
    except Exception:
        return _fail(
            "ECS_UPDATE_ERROR",
            f"Failed to create taskset: the task definition {spec.task_definition} does not exist",
        )
    if getattr(taskdef, "status", "ACTIVE") != "ACTIVE":
        return _fail("ECS_UPDATE_ERROR", f"The task definition {taskdef.arn} is INACTIVE")
    container = next((c for c in taskdef.container_definitions if c.get("name") == spec.container_name), None)
    if container is None:
        return _fail(
            "INVALID_REVISION",
            f"The AppSpec ContainerName {spec.container_name} is not a container of task definition {taskdef.arn}",
        )
    ports = {int(m.get("containerPort", -1)) for m in container.get("portMappings") or []}
    if spec.container_port not in ports:
        return _fail(
            "INVALID_REVISION",
            f"The AppSpec ContainerPort {spec.container_port} is not mapped by container "
            f"{spec.container_name} of task definition {taskdef.arn}",
        )
    pair = _pair(group.load_balancer_info)
    names = [g.get("name") for g in pair.get("targetGroups", [])]
    arns = _group_arns(elbv2, pair)
    prod = (pair.get("prodTrafficRoute") or {}).get("listenerArns") or []
    test = (pair.get("testTrafficRoute") or {}).get("listenerArns") or []
    listener = elb.find_listener(elbv2, prod[0]) if prod else None
    if listener is None or None in arns:
        return _fail("ECS_UPDATE_ERROR", "The deployment group's listeners or target groups are gone")
    serving = elb.serving_group(listener)
    original_tg = serving if serving in arns else arns[0]
    replacement_tg = arns[1] if original_tg == arns[0] else arns[0]
    original = next((ts for ts in service.task_sets if ts.status == "PRIMARY"), None)
    task_set = ecs.create_task_set(
        service.name,
        cluster,
        taskdef.arn,
        external_id=deployment.deployment_id,
        network_configuration=spec.network_configuration or service.network_configuration or None,
        load_balancers=[
            {
                "targetGroupArn": replacement_tg,
                "containerName": spec.container_name,
                "containerPort": spec.container_port,
            }
        ],
        launch_type=spec.launch_type or service.launch_type or "FARGATE",
        platform_version=spec.platform_version,
    )
    task_set.scale = {"value": 100.0, "unit": "PERCENT"}
    task_set.started_by = "CodeDeploy"
    progress.ecs = {
        "cluster": cluster,
        "service": service.name,
        "original_tg": original_tg,
        "replacement_tg": replacement_tg,
        "replacement_tg_name": names[arns.index(replacement_tg)],
        "original_ts": original.task_set_arn if original else None,
        "replacement_ts": task_set.task_set_arn,
        "prod_listeners": prod,
        "test_listeners": test,
        "task_definition": taskdef.arn,
    }
    for listener_arn in test:
        elb.route(elbv2, listener_arn, {replacement_tg: 100})
    deployment.deployment_status_messages.append(
        f"Replacement task set {task_set.id} created on target group {progress.ecs['replacement_tg_name']}"
    )
    return None


def restore(backend: SandboxCodeDeployBackend, deployment: DeploymentInfo, progress: Progress) -> None:
    """Put traffic back on the original task set and drop the replacement."""
    state = progress.ecs
    if not state:
        return
    elbv2 = elb.elbv2(backend.account_id, backend.region_name)
    for listener_arn in state["prod_listeners"] + state["test_listeners"]:
        if elb.find_listener(elbv2, listener_arn) is not None:
            elb.route(elbv2, listener_arn, {state["original_tg"]: 100})
    ecs = _ecs(backend)
    with contextlib.suppress(Exception):
        ecs.delete_task_set(state["cluster"], state["service"], state["replacement_ts"])


def target_info(deployment: DeploymentInfo, progress: Progress | None) -> dict[str, Any]:
    """``deploymentTarget`` for an ECS deployment, with the traffic weights of each set."""
    state = progress.ecs if progress else {}
    share = progress.traffic[-1] if progress and progress.traffic else 0
    if deployment.status == "Succeeded":
        share = 100
    elif deployment.status in ("Failed", "Stopped") and state:
        share = 0
    status = {
        "Created": "Pending",
        "InProgress": "InProgress",
        "Succeeded": "Succeeded",
        "Failed": "Failed",
        "Stopped": "Failed",
    }.get(deployment.status, "Pending")
    sets = []
    if state:
        if state.get("original_ts"):
            sets.append(
                {
                    "identifer": state["original_ts"],
                    "taskSetLabel": "Blue",
                    "trafficWeight": float(100 - share),
                    "targetGroup": {"name": state["original_tg"].split("/")[-2]},
                }
            )
        sets.append(
            {
                "identifer": state["replacement_ts"],
                "taskSetLabel": "Green",
                "trafficWeight": float(share),
                "targetGroup": {"name": state["replacement_tg_name"]},
            }
        )
    target_id = ""
    group = deployment.deployment_group
    if group.ecs_services:
        target_id = f"{group.ecs_services[0].get('clusterName')}:{group.ecs_services[0].get('serviceName')}"
    return {
        "deploymentTargetType": "ECSTarget",
        "ecsTarget": {
            "deploymentId": deployment.deployment_id,
            "targetId": target_id,
            "status": status,
            "lastUpdatedAt": deployment.complete_time or deployment.start_time or deployment.create_time,
            "lifecycleEvents": progress.events if progress else [],
            "taskSetsInfo": sets,
        },
    }
