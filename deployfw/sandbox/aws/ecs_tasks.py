"""ECS tasks of the sandbox: what ECS records about a task, backed by a real process.

:class:`EcsTask` is ECS's view (ARN, group, startedBy, task definition, target
registrations, timestamps); the process itself lives in the sandbox's
:class:`~deployfw.sandbox.runtime.TaskRuntime`, whose state decides ``lastStatus``,
``stoppedReason`` and the containers' exit codes. :func:`task_spec` turns a task
definition into the runtime's request - images resolved in the sandbox's ECR exactly
as the ECS agent pulls them (an image ECR does not hold cannot be pulled) - and
:func:`describe` answers DescribeTasks in ECS's shape.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from moto.core.utils import utcnow

from deployfw.sandbox.runtime import ContainerSpec, TaskSpec, TaskState

if TYPE_CHECKING:
    from deployfw.sandbox.aws.health import HealthChecks


@dataclass
class EcsTask:
    """ECS's record of one task (the process is the runtime's)."""

    task_id: str
    arn: str
    cluster: str
    cluster_arn: str
    task_definition_arn: str
    group: str
    started_by: str
    owner: str
    """The deployment id (ECS controller) or task set id (CODE_DEPLOY/EXTERNAL) it belongs to; "" if standalone."""
    service: str | None
    launch_type: str
    cpu: str | None
    memory: str | None
    containers: list[dict[str, Any]]
    targets: list[tuple[str, int]] = field(default_factory=list)
    """(target group ARN, container port) to register once RUNNING."""
    created_at: datetime = field(default_factory=utcnow)
    started_at: datetime | None = None
    stopping_at: datetime | None = None
    stopped_at: datetime | None = None
    desired_status: str = "RUNNING"
    registered: bool = False
    stop_after: float | None = None
    """Monotonic time at which a draining task is really stopped."""
    stop_reason: str | None = None
    by_scheduler: bool = False
    """Stopped on purpose (scale-in, replacement): not a failure."""
    counted: bool = False
    availability_zone: str = ""
    subnet: str = ""
    version: int = 1


def new_task(
    backend: Any,
    cluster: Any,
    taskdef: Any,
    *,
    group: str,
    started_by: str,
    owner: str,
    service: str | None,
    launch_type: str,
    load_balancers: list[dict[str, Any]],
    network_configuration: dict[str, Any] | None,
) -> EcsTask:
    task_id = uuid.uuid4().hex
    arn = f"arn:aws:ecs:{backend.region_name}:{backend.account_id}:task/{cluster.name}/{task_id}"
    targets = [
        (str(lb["targetGroupArn"]), int(lb.get("containerPort") or 0))
        for lb in load_balancers
        if lb.get("targetGroupArn")
    ]
    subnets = ((network_configuration or {}).get("awsvpcConfiguration") or {}).get("subnets") or []
    return EcsTask(
        task_id=task_id,
        arn=arn,
        cluster=cluster.name,
        cluster_arn=cluster.arn,
        task_definition_arn=taskdef.arn,
        group=group,
        started_by=started_by,
        owner=owner,
        service=service,
        launch_type=launch_type or "FARGATE",
        cpu=getattr(taskdef, "cpu", None),
        memory=getattr(taskdef, "memory", None),
        containers=[dict(c) for c in taskdef.container_definitions],
        targets=targets,
        availability_zone=f"{backend.region_name}a",
        subnet=str(subnets[0]) if subnets else "",
    )


def resolve_manifest(image: str, account_id: str) -> str | None:
    """What pulling ``image`` from the sandbox's ECR gets; None when ECR has no such image."""
    from moto.ecr.models import ecr_backends

    from deployfw.sandbox.aws.ecr import parse_image_uri

    parsed = parse_image_uri(image)
    if parsed is None:
        return None  # Docker Hub and other registries are out of the sandbox's reach
    account, region, repository, reference = parsed
    try:
        backend = ecr_backends[account][region]
    except KeyError:
        return None
    manifest_of = getattr(backend, "manifest_of", None)
    return manifest_of(repository, reference) if manifest_of else None


def task_spec(task: EcsTask, account_id: str, overrides: dict[str, Any] | None = None) -> TaskSpec:
    """The runtime request for ``task``: each container's image, command and environment."""
    by_name = {o.get("name"): o for o in (overrides or {}).get("containerOverrides") or []}
    containers = []
    for definition in task.containers:
        override = by_name.get(definition.get("name"), {})
        env = {e["name"]: str(e.get("value", "")) for e in definition.get("environment") or [] if "name" in e}
        env.update({e["name"]: str(e.get("value", "")) for e in override.get("environment") or [] if "name" in e})
        env.setdefault("ECS_CONTAINER_METADATA_URI_V4", "")  # present in real tasks; the sandbox serves none
        ports = tuple(int(m.get("containerPort") or 0) for m in definition.get("portMappings") or [])
        containers.append(
            ContainerSpec(
                name=str(definition.get("name") or "app"),
                image=str(definition.get("image") or ""),
                manifest=resolve_manifest(str(definition.get("image") or ""), account_id),
                essential=definition.get("essential", True) is not False,
                entry_point=definition.get("entryPoint") or None,
                command=override.get("command") or definition.get("command") or None,
                environment=env,
                working_directory=definition.get("workingDirectory"),
                ports=tuple(p for p in ports if p),
            )
        )
    labels = {"cluster": task.cluster, "service": task.service or "", "task_arn": task.arn}
    return TaskSpec(tuple(containers), labels)


def last_status(task: EcsTask, state: TaskState | None) -> str:
    if state is None:
        return "PROVISIONING"
    if state.status == "RUNNING" and task.desired_status == "STOPPED":
        return "DEACTIVATING" if task.stop_after is not None else "STOPPING"
    return state.status


def exit_code(code: int | None) -> int | None:
    """A signal death as Docker reports it (SIGTERM -> 143)."""
    if code is None:
        return None
    return 128 - code if code < 0 else code


def health_status(task: EcsTask, state: TaskState | None, health: HealthChecks | None) -> str:
    """The task's healthStatus: from its load balancer target health where it has one, else UNKNOWN.

    (ECS derives healthStatus from container health checks; the sandbox does not run
    those and reports the ELB verdict instead - see docs/sandbox-fidelity.md.)
    """
    if state is None or state.status != "RUNNING" or not task.targets or health is None:
        return "UNKNOWN"
    verdicts = []
    for group, port in task.targets:
        target = health.state((group, state.address or "", port))
        verdicts.append(target.state if target else "initial")
    if verdicts and all(v == "healthy" for v in verdicts):
        return "HEALTHY"
    if any(v == "unhealthy" for v in verdicts):
        return "UNHEALTHY"
    return "UNKNOWN"


def describe(task: EcsTask, state: TaskState | None, health: HealthChecks | None) -> dict[str, Any]:
    """DescribeTasks' ``Task`` shape."""
    status = last_status(task, state)
    address = state.address if state else None
    containers = []
    for index, definition in enumerate(task.containers):
        runtime = state.containers[index] if state and index < len(state.containers) else None
        container: dict[str, Any] = {
            "containerArn": f"{task.arn.replace(':task/', ':container/')}/{_container_id(task, index)}",
            "taskArn": task.arn,
            "name": definition.get("name"),
            "image": definition.get("image"),
            "lastStatus": "STOPPED" if status == "STOPPED" else (runtime.status if runtime else "PENDING"),
            "healthStatus": health_status(task, state, health),
            "cpu": str(definition.get("cpu", 0)),
            "networkBindings": [],
            "networkInterfaces": [{"attachmentId": task.task_id, "privateIpv4Address": address}] if address else [],
        }
        if runtime is not None and runtime.exit_code is not None:
            container["exitCode"] = exit_code(runtime.exit_code)
        if runtime is not None and runtime.reason:
            container["reason"] = runtime.reason
        if definition.get("memory"):
            container["memory"] = str(definition["memory"])
        containers.append(container)
    doc: dict[str, Any] = {
        "taskArn": task.arn,
        "clusterArn": task.cluster_arn,
        "taskDefinitionArn": task.task_definition_arn,
        "lastStatus": status,
        "desiredStatus": task.desired_status,
        "healthStatus": health_status(task, state, health),
        "containers": containers,
        "createdAt": task.created_at,
        "group": task.group,
        "launchType": task.launch_type,
        "availabilityZone": task.availability_zone,
        "connectivity": "CONNECTED" if status in ("RUNNING", "DEACTIVATING", "STOPPING") else None,
        "version": task.version,
        "cpu": task.cpu,
        "memory": task.memory,
        "startedBy": task.started_by or None,
        "platformVersion": "1.4.0" if task.launch_type == "FARGATE" else None,
        "attachments": [
            {
                "id": task.task_id,
                "type": "ElasticNetworkInterface",
                "status": "ATTACHED" if status not in ("STOPPED",) else "DELETED",
                "details": [
                    {"name": "subnetId", "value": task.subnet},
                    {"name": "privateIPv4Address", "value": address or ""},
                ],
            }
        ],
    }
    if task.started_at:
        doc["startedAt"] = task.started_at
        doc["pullStartedAt"] = task.started_at
        doc["pullStoppedAt"] = task.started_at
    if task.stopping_at:
        doc["stoppingAt"] = task.stopping_at
    if status == "STOPPED":
        doc["stoppedAt"] = task.stopped_at or utcnow()
        doc["stoppedReason"] = (state.stopped_reason if state else None) or task.stop_reason or "Task stopped"
        doc["stopCode"] = (state.stop_code if state else None) or "ServiceSchedulerInitiated"
        doc["executionStoppedAt"] = doc["stoppedAt"]
    return {k: v for k, v in doc.items() if v is not None}


def _container_id(task: EcsTask, index: int) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"{task.arn}/{index}")
