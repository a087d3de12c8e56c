"""The ECS blue/green mechanics of a CodeDeploy deployment, on the sandbox clock.

What CodeDeploy does to an ECS service, as lifecycle events named as AWS names them:
BeforeInstall; Install - create a replacement task set registered with the target
group the production listener is *not* using, and wait (up to 60 minutes) until its
tasks are running and healthy; AfterInstall; AllowTestTraffic - point the test
listener at it; AfterAllowTestTraffic; then, with ``deploymentReadyOption``
STOP_DEPLOYMENT, wait (status ``Ready``) for ContinueDeployment; BeforeAllowTraffic;
AllowTraffic - shift production traffic by the deployment config's steps, each
canary/linear interval a real wait on the sandbox clock; AfterAllowTraffic; then wait
``terminationWaitTimeInMinutes`` before the original task set is removed. AppSpec
``Hooks`` are honoured: the event stays InProgress until
PutLifecycleEventHookExecutionStatus reports on it (``GET /_sandbox/hooks`` lists the
executions a test or a stand-in for the Lambda function answers). On failure the
listeners go back to the original target group and the replacement is deleted.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

from deployfw.sandbox.aws import appspec, context, elb
from deployfw.sandbox.aws import codedeploy_errors as errors
from deployfw.sandbox.aws.codedeploy_progress import ECS_EVENTS, Progress
from deployfw.sandbox.aws.deployment_configs import NLB_ONLY
from deployfw.sandbox.clock import MIN_POLL

if TYPE_CHECKING:
    from moto.codedeploy.models import DeploymentGroup, DeploymentInfo

HEALTH_TIMEOUT_MINUTES = 60
"""CodeDeploy fails an ECS deployment whose replacement task set is not healthy within 60 minutes."""
HOOK_TIMEOUT_MINUTES = 60
"""A lifecycle hook must report within an hour."""


def _ecs(backend: Any) -> Any:
    from moto.ecs.models import ecs_backends

    return ecs_backends[backend.account_id][backend.region_name]


def _pair(load_balancer_info: dict[str, Any]) -> dict[str, Any]:
    pairs = (load_balancer_info or {}).get("targetGroupPairInfoList") or []
    return pairs[0] if pairs else {}


def _group_arns(elbv2: Any, pair: dict[str, Any]) -> list[str | None]:
    by_name = {tg.name: arn for arn, tg in elbv2.target_groups.items()}
    return [by_name.get(g.get("name", "")) for g in pair.get("targetGroups", [])]


def validate_group(backend: Any, spec: dict[str, Any], config: str, *, current: tuple[str, str] | None) -> None:
    """The checks AWS makes when an ECS deployment group is created or updated (``current``: the group updated)."""
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

    for app, groups in backend.deployment_groups.items():
        for group_name, group in groups.items():
            if (app, group_name) == current:
                continue
            for ref in group.ecs_services or []:
                if (ref.get("clusterName", "").split("/")[-1], ref.get("serviceName", "").split("/")[-1]) == (
                    cluster.split("/")[-1],
                    name.split("/")[-1],
                ):
                    raise errors.CodeDeployError(
                        "ECSServiceMappingLimitExceededException",
                        f"The Amazon ECS service {cluster}:{name} is associated with more than one deployment"
                        " groups. An Amazon ECS service can be associated with only one deployment group.",
                    )


def check_nlb_config(backend: Any, group: DeploymentGroup, config: str) -> None:
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


def _later(progress: Progress, sandbox_seconds: float, *, floor: bool = True) -> None:
    """The next step is due after ``sandbox_seconds`` (never sooner than the deploy_step floor)."""
    ctx = context.current()
    real = ctx.clock.real(sandbox_seconds)
    if floor:
        real = max(real, ctx.timings.deploy_step)
    progress.due = time.monotonic() + real


def _poll(progress: Progress) -> None:
    progress.due = time.monotonic() + MIN_POLL


def _bounded(minutes: float) -> float:
    """A deadline for a wait on a condition: sandbox minutes on the clock (see clock.bounded)."""
    return time.monotonic() + context.current().clock.bounded(minutes * 60)


def _group_config(deployment: DeploymentInfo) -> dict[str, Any]:
    return deployment.deployment_group.blue_green_deployment_configuration or {}


def step(backend: Any, deployment: DeploymentInfo, progress: Progress) -> dict[str, str] | None:
    """Perform what is due now; return ``errorInformation`` when the deployment fails."""
    stage = progress.stage
    if stage == "start":
        failure = _start(backend, deployment, progress)
        if failure is None:
            progress.start_events(ECS_EVENTS)
            progress.stage = "BeforeInstall"
            _later(progress, 0)
        return failure
    if stage in ("BeforeInstall", "AfterInstall", "AfterAllowTestTraffic", "BeforeAllowTraffic", "AfterAllowTraffic"):
        return _hook_stage(deployment, progress, stage)
    state = progress.ecs
    elbv2 = elb.elbv2(backend.account_id, backend.region_name)
    ecs = _ecs(backend)
    if stage == "Install":
        return _install(backend, deployment, progress)
    if stage == "AllowTestTraffic":
        progress.begin("AllowTestTraffic")
        for listener_arn in state["test_listeners"]:
            elb.route(elbv2, listener_arn, {state["replacement_tg"]: 100})
        progress.end("AllowTestTraffic")
        progress.stage = "AfterAllowTestTraffic"
        return None
    if stage == "Ready":
        return _ready(deployment, progress)
    if stage == "AllowTraffic":
        progress.begin("AllowTraffic")
        share = progress.steps[progress.shift_index]
        progress.shift_index += 1
        progress.traffic.append(share)
        for listener_arn in state["prod_listeners"]:
            elb.route(elbv2, listener_arn, {state["original_tg"]: 100 - share, state["replacement_tg"]: share})
        deployment.deployment_status_messages.append(
            f"Production traffic shifted: {share}% to the replacement task set"
        )
        if progress.shift_index >= len(progress.steps):
            progress.end("AllowTraffic")
            progress.stage = "AfterAllowTraffic"
            _later(progress, 0, floor=False)
        else:
            _later(progress, progress.interval_minutes * 60)
        return None
    if stage == "TerminationWait":
        terminate = _group_config(deployment).get("terminateBlueInstancesOnDeploymentSuccess") or {}
        if progress.deadline is None:
            minutes = float(terminate.get("terminationWaitTimeInMinutes") or 0)
            progress.deadline = time.monotonic() + context.current().clock.real(minutes * 60)
        if "TERMINATION_WAIT" in progress.continued or time.monotonic() >= progress.deadline:
            progress.deadline = None
            progress.stage = "cleanup"
            _later(progress, 0)
        else:
            _poll(progress)
        return None
    if stage == "cleanup":
        ecs.update_service_primary_task_set(state["cluster"], state["service"], state["replacement_ts"])
        if state.get("original_ts"):
            with contextlib.suppress(Exception):
                ecs.delete_task_set(state["cluster"], state["service"], state["original_ts"])
        ecs.scheduler.reconcile()  # the original task set's tasks start draining now, not at the next tick
        progress.stage = "done"
    return None


def _hook_stage(deployment: DeploymentInfo, progress: Progress, stage: str) -> dict[str, str] | None:
    """A hook event: run the AppSpec's hook (wait for its status) or pass straight through."""
    progress.begin(stage)
    execution = progress.hook(deployment.deployment_id, stage)
    if execution is not None:
        if progress.deadline is None:
            progress.deadline = _bounded(HOOK_TIMEOUT_MINUTES)
        if execution.status == "Failed":
            progress.deadline = None
            return _fail(
                "HOOK_FAILED",
                f"The deployment failed because the lifecycle event hook {execution.function} for"
                f" {stage} reported Failed.",
            )
        if execution.status != "Succeeded":
            if time.monotonic() >= progress.deadline:
                progress.deadline = None
                return _fail("TIMEOUT", f"The lifecycle event hook {execution.function} for {stage} timed out.")
            _poll(progress)
            return None
        progress.deadline = None
    progress.end(stage)
    progress.stage = {
        "BeforeInstall": "Install",
        "AfterInstall": "AllowTestTraffic",
        "AfterAllowTestTraffic": "Ready",
        "BeforeAllowTraffic": "AllowTraffic",
        "AfterAllowTraffic": "TerminationWait",
    }[stage]
    if progress.stage == "AllowTraffic":
        _later(progress, 0)
    return None


def _install(backend: Any, deployment: DeploymentInfo, progress: Progress) -> dict[str, str] | None:
    """Create the replacement task set, then wait until its tasks are running and healthy."""
    state = progress.ecs
    ecs = _ecs(backend)
    if progress.fail_health:
        return _fail(
            "HEALTH_CONSTRAINTS",
            f"The replacement task set's targets in target group {state['replacement_tg_name']} "
            f"failed ELB health checks (deployfw sandbox fault deploy:{progress.module}).",
        )
    if "replacement_ts" not in state:
        progress.begin("Install")
        failure = _create_replacement(backend, deployment, progress)
        if failure is not None:
            return failure
        progress.deadline = _bounded(HEALTH_TIMEOUT_MINUTES)
    service = ecs._get_service(state["cluster"], state["service"])
    task_set = next((ts for ts in service.task_sets if ts.task_set_arn == state["replacement_ts"]), None)
    if task_set is None:
        return _fail("ECS_UPDATE_ERROR", "The replacement task set was deleted during the deployment.")
    if ecs.scheduler.task_set_healthy(task_set, service):
        progress.deadline = None
        progress.end("Install")
        progress.stage = "AfterInstall"
        return None
    if progress.deadline is not None and time.monotonic() >= progress.deadline:
        progress.deadline = None
        failures = ecs.scheduler.task_set_failures(task_set)
        return _fail(
            "ECS_UPDATE_ERROR",
            "The deployment timed out while waiting for the replacement task set to become healthy. "
            f"This time out period is {HEALTH_TIMEOUT_MINUTES} minutes."
            + (f" ({failures} replacement tasks failed to start or failed health checks.)" if failures else ""),
        )
    _poll(progress)
    return None


def _ready(deployment: DeploymentInfo, progress: Progress) -> dict[str, str] | None:
    """``deploymentReadyOption``: STOP_DEPLOYMENT waits (status Ready) for ContinueDeployment."""
    ready = _group_config(deployment).get("deploymentReadyOption") or {}
    if ready.get("actionOnTimeout") != "STOP_DEPLOYMENT" or "READY_WAIT" in progress.continued:
        if deployment.status == "Ready":
            deployment.status = "InProgress"
        progress.deadline = None
        progress.stage = "BeforeAllowTraffic"
        return None
    if progress.deadline is None:
        minutes = float(ready.get("waitTimeInMinutes") or 0)
        progress.deadline = time.monotonic() + context.current().clock.bounded(minutes * 60)
        deployment.status = "Ready"
        deployment.deployment_overview["InProgress"] = 0
        deployment.deployment_overview["Ready"] = 1
    if time.monotonic() >= progress.deadline:
        progress.deadline = None
        return _fail(
            "TIMEOUT",
            "The deployment was stopped because traffic was not rerouted to the replacement task set"
            f" within the deployment's wait time ({ready.get('waitTimeInMinutes') or 0} minutes).",
        )
    _poll(progress)
    return None


def _start(backend: Any, deployment: DeploymentInfo, progress: Progress) -> dict[str, str] | None:
    """Check the AppSpec against the group and the task definition (the replacement is made in Install)."""
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
    for hook in spec.hooks:
        for event, function in hook.items():
            progress.hooks[str(event)] = str(function)
    progress.ecs = {
        "cluster": cluster,
        "service": service.name,
        "original_tg": original_tg,
        "replacement_tg": replacement_tg,
        "replacement_tg_name": names[arns.index(replacement_tg)],
        "original_ts": original.task_set_arn if original else None,
        "prod_listeners": prod,
        "test_listeners": test,
        "task_definition": taskdef.arn,
        "spec": spec,
    }
    return None


def _create_replacement(backend: Any, deployment: DeploymentInfo, progress: Progress) -> dict[str, str] | None:
    state = progress.ecs
    spec = state["spec"]
    ecs = _ecs(backend)
    service = ecs._get_service(state["cluster"], state["service"])
    task_set = ecs.create_task_set(
        service.name,
        state["cluster"],
        state["task_definition"],
        external_id=deployment.deployment_id,
        network_configuration=spec.network_configuration or service.network_configuration or None,
        load_balancers=[
            {
                "targetGroupArn": state["replacement_tg"],
                "containerName": spec.container_name,
                "containerPort": spec.container_port,
            }
        ],
        launch_type=spec.launch_type or service.launch_type or "FARGATE",
        platform_version=spec.platform_version,
    )
    task_set.scale = {"value": 100.0, "unit": "PERCENT"}
    task_set.started_by = "CodeDeploy"
    state["replacement_ts"] = task_set.task_set_arn
    deployment.deployment_status_messages.append(
        f"Replacement task set {task_set.id} created on target group {state['replacement_tg_name']}"
    )
    return None


def restore(backend: Any, deployment: DeploymentInfo, progress: Progress) -> None:
    """Put traffic back on the original task set and drop the replacement."""
    state = progress.ecs
    if not state:
        return
    elbv2 = elb.elbv2(backend.account_id, backend.region_name)
    for listener_arn in state["prod_listeners"] + state["test_listeners"]:
        if elb.find_listener(elbv2, listener_arn) is not None:
            elb.route(elbv2, listener_arn, {state["original_tg"]: 100})
    ecs = _ecs(backend)
    if state.get("replacement_ts"):
        with contextlib.suppress(Exception):
            ecs.delete_task_set(state["cluster"], state["service"], state["replacement_ts"])


def target_info(deployment: DeploymentInfo, progress: Progress | None, region: str, account: str) -> dict[str, Any]:
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
    if state and state.get("replacement_ts"):
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
            "targetArn": _service_arn(deployment, region, account),
            "taskSetsInfo": sets,
        },
    }


def _service_arn(deployment: DeploymentInfo, region: str, account: str) -> str:
    """An ECS target's ``targetArn``: the service's ARN."""
    group = deployment.deployment_group
    ref = (group.ecs_services or [{}])[0]
    return f"arn:aws:ecs:{region}:{account}:service/{ref.get('clusterName')}/{ref.get('serviceName')}"


def replacement_gone(backend: Any, progress: Progress) -> bool:
    """True once the failed deployment's replacement tasks have all stopped (drained, then SIGTERM)."""
    state = progress.ecs
    if not state.get("replacement_ts"):
        return True
    ecs = _ecs(backend)
    set_id = str(state["replacement_ts"]).split("/")[-1]
    return not any(t.owner == set_id and t.stopped_at is None for t in ecs.sandbox_tasks.values())
