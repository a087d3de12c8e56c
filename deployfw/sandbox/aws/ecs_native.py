"""ECS-native service deployments: blue/green, linear and canary run by the ECS controller itself.

An UpdateService of an ECS-controller service whose ``deploymentConfiguration.strategy`` is
BLUE_GREEN, LINEAR or CANARY (or an in-place switch of a CODE_DEPLOY service to the ECS
controller) creates a service deployment that this module moves through the lifecycle stages
the ECS API names, on the sandbox clock:

RECONCILE_SERVICE (only when more than one service revision is active, e.g. a deployment
that superseded one still in progress) - PRE_SCALE_UP - SCALE_UP (the green revision's tasks
start on the alternate target group and must all become healthy: real processes, real health
checks) - POST_SCALE_UP - TEST_TRAFFIC_SHIFT (the test rule forwards to green) -
POST_TEST_TRAFFIC_SHIFT - PRODUCTION_TRAFFIC_SHIFT (the production rule's weights move by the
strategy's steps, a canary or linear step bake apart) - POST_PRODUCTION_TRAFFIC_SHIFT -
BAKE_TIME (``bakeTimeInMinutes``) - CLEAN_UP (blue's tasks drain and stop).

Behind a Network Load Balancer ECS adds ten minutes to PRE_SCALE_UP, TEST_TRAFFIC_SHIFT and
each PRODUCTION_TRAFFIC_SHIFT step (the ECS guide's NLB page), and so does the sandbox. Every
stage lasts at least ``Timings.deploy_step`` real seconds, as CodeDeploy's do, so a test can
act in the middle of one.

A deployment fails - and with rollback configured, or when StopServiceDeployment asks for it,
rolls back: traffic returns to blue, green stops - when its tasks trip the circuit breaker
(ECS's threshold), a CloudWatch alarm it watches goes to ALARM, or its production rule does
not forward to both target groups. ``deploy:<module>`` makes green's tasks fail their health
checks. Rolling deployments get service deployment records too (:mod:`.ecs_native_rolling`),
so ListServiceDeployments and DescribeServiceDeployments cover every strategy.

The tasks are the scheduler's (:mod:`.ecs_scheduler`): while a traffic-shifting deployment is
in progress this module starts and stops them through it instead of the rolling driver, and
registers each revision's deployment with the target group its tasks belong to.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from moto.core.utils import utcnow
from moto.ecs.exceptions import InvalidParameterException

from deployfw.sandbox.aws import context, elb
from deployfw.sandbox.aws.ecs_native_config import (
    forward_weights,
    merged_configuration,
    traffic_steps,
    validate_configuration,
    validate_load_balancers,
)
from deployfw.sandbox.aws.ecs_native_model import (
    TRAFFIC_STRATEGIES,
    Revision,
    ServiceDeployment,
    Traffic,
    deployment_arn,
    revision_arn,
)
from deployfw.sandbox.aws.ecs_native_rolling import RollingRecords
from deployfw.sandbox.aws.ecs_native_traffic import advance
from deployfw.sandbox.aws.ecs_scheduler import DeploymentState, breaker_threshold

if TYPE_CHECKING:
    from deployfw.sandbox.aws.ecs import SandboxEcsBackend


class NativeDeployments:
    """The service deployments and revisions of one ECS backend (one account and region)."""

    def __init__(self, backend: SandboxEcsBackend) -> None:
        self.backend = backend
        self.records: dict[str, ServiceDeployment] = {}
        self.revisions: dict[str, Revision] = {}
        self.by_service: dict[tuple[str, str], list[str]] = {}
        """(cluster, service) -> service deployment ARNs, newest first."""
        self.current: dict[tuple[str, str], str] = {}
        """(cluster, service) -> the revision serving production."""
        self.rolling = RollingRecords(self)
        self.lock = threading.RLock()
        """Held while a deployment advances: moto's state is process-wide, so two sandboxes in one process
        (each ticking under its own lock) reach this engine from two threads."""

    # -- helpers --------------------------------------------------------------------------

    @property
    def scheduler(self) -> Any:
        return self.backend.scheduler

    def key(self, service: Any) -> tuple[str, str]:
        return (str(service.cluster_name), str(service.name))

    def ongoing(self, service: Any) -> ServiceDeployment | None:
        for arn in self.by_service.get(self.key(service), []):
            record = self.records[arn]
            if record.ongoing:
                return record
        return None

    def revision(self, service: Any, *, task_definition: str, owner: str, target_group: str | None) -> Revision:
        region, account = self.backend.region_name, self.backend.account_id
        taskdef = self.backend.describe_task_definition(task_definition)
        images = [{"containerName": c.get("name"), "image": c.get("image")} for c in taskdef.container_definitions]
        revision = Revision(
            arn=revision_arn(region, account, service.cluster_name, service.name),
            service_arn=service.arn,
            cluster_arn=service.cluster_arn,
            task_definition=taskdef.arn,
            load_balancers=[dict(lb) for lb in service.load_balancers or []],
            launch_type=service.launch_type,
            network_configuration=service.network_configuration or None,
            owner=owner,
            target_group=target_group,
            container_images=images,
        )
        self.revisions[revision.arn] = revision
        return revision

    def production_revision(self, service: Any) -> Revision:
        """The revision serving now: the recorded one while its tasks' deployment exists, else the PRIMARY's."""
        owners = {d["id"] for d in service.deployments}
        current = self.revisions.get(self.current.get(self.key(service), ""))
        if current is not None and current.owner in owners:
            return current
        primary = next((d for d in service.deployments if d["status"] == "PRIMARY"), service.deployments[0])
        state = self.scheduler.deployments.get(primary["id"])
        groups = (state.load_balancers if state and state.load_balancers else None) or service.load_balancers or []
        revision = self.revision(service, task_definition=primary["taskDefinition"], owner=primary["id"],
                                 target_group=groups[0].get("targetGroupArn") if groups else None)  # fmt: skip
        self.current[self.key(service)] = revision.arn
        return revision

    def add(self, service: Any, record: ServiceDeployment) -> None:
        self.records[record.arn] = record
        self.by_service.setdefault(self.key(service), []).insert(0, record.arn)
        service.current_service_deployment = record.arn

    def new_record(self, service: Any, source: list[Revision], target: Revision, strategy: str) -> ServiceDeployment:
        config = dict(getattr(service, "deployment_configuration", None) or {})
        record = ServiceDeployment(
            arn=deployment_arn(self.backend.region_name, self.backend.account_id, service.cluster_name, service.name),
            service_arn=service.arn,
            cluster_arn=service.cluster_arn,
            cluster=service.cluster_name,
            service=service.name,
            source=source,
            target=target,
            strategy=strategy,
            configuration=config,
        )
        if (config.get("deploymentCircuitBreaker") or {}).get("enable"):
            record.breaker_threshold = breaker_threshold(int(service.desired_count))
        return record

    # -- UpdateService --------------------------------------------------------------------

    def validate(self, service: Any, props: dict[str, Any]) -> None:
        """Refuse what AWS refuses before anything of the update is applied."""
        config = merged_configuration(getattr(service, "deployment_configuration", None),
                                      props.get("deployment_configuration"))  # fmt: skip
        controller = (props.get("deployment_controller") or service.deployment_controller or {}).get("type", "ECS")
        if controller != "ECS":
            return
        strategy = validate_configuration(config)
        if strategy in TRAFFIC_STRATEGIES:
            lbs = props.get("load_balancers") if props.get("load_balancers") is not None else service.load_balancers
            validate_load_balancers(self.backend.account_id, self.backend.region_name, list(lbs or []))

    def handles(self, service: Any, props: dict[str, Any]) -> bool:
        """True for a controller switch to ECS, and for every update of a traffic-shifting ECS service."""
        current = (service.deployment_controller or {}).get("type", "ECS")
        wanted = (props.get("deployment_controller") or {}).get("type")
        if current == "CODE_DEPLOY" and wanted == "ECS":
            return True
        if current != "ECS":
            return False
        config = merged_configuration(getattr(service, "deployment_configuration", None),
                                      props.get("deployment_configuration"))  # fmt: skip
        return config.get("strategy") in TRAFFIC_STRATEGIES

    def update_service(self, service: Any, props: dict[str, Any]) -> Any:
        with self.lock:
            return self._update_service(service, props)

    def _update_service(self, service: Any, props: dict[str, Any]) -> Any:
        ctx = context.current()
        switching = (service.deployment_controller or {}).get("type") == "CODE_DEPLOY"
        if switching:
            self._adopt_task_sets(service)
        previous = service.task_definition
        config = props.pop("deployment_configuration", None)
        if config:
            service.deployment_configuration = merged_configuration(getattr(service, "deployment_configuration", None),
                                                                    config)  # fmt: skip
        new_taskdef = props.pop("task_definition", None)
        force = bool(props.pop("force_new_deployment", False))
        lbs_changed = props.get("load_balancers") is not None and props["load_balancers"] != service.load_balancers
        for key in ("cluster", "service"):
            props.pop(key, None)
        for name, value in props.items():
            if value is not None:
                setattr(service, name, value)
        if new_taskdef:
            service.task_definition = self.backend.describe_task_definition(new_taskdef).arn
        changed = service.task_definition != previous
        if not (switching or force or changed or lbs_changed):
            for deployment in service.deployments:
                if deployment["status"] == "PRIMARY":
                    deployment["desiredCount"] = service.desired_count
            self.scheduler.reconcile()
            return service
        module = ctx.registry.module_for_service(service.cluster_name, service.name)
        failing = ctx.faults.take_deploy(module)
        strategy = (service.deployment_configuration or {}).get("strategy") or "ROLLING"
        if strategy in TRAFFIC_STRATEGIES:
            self._start_traffic(service, failing)
        else:
            self.backend.new_deployment(service, failing=failing, previous=previous)
            self.rolling.started(service, previous)
        self.scheduler.reconcile()
        return service

    def _adopt_task_sets(self, service: Any) -> None:
        """CODE_DEPLOY -> ECS in place: the primary task set's tasks become the service's current revision."""
        if len(service.task_sets) != 1 or _codedeploy_active(self.backend, service):
            raise InvalidParameterException(
                "Unable to update the deployment controller of a service during an ongoing service deployment."
            )
        task_set = service.task_sets[0]
        now = utcnow()
        owner = f"ecs-svc/{int(time.time() * 1e6) % 10**19:019d}"
        service.deployments[:] = [{
            "id": owner, "status": "PRIMARY", "taskDefinition": task_set.task_definition,
            "desiredCount": service.desired_count, "pendingCount": 0, "runningCount": 0, "failedTasks": 0,
            "createdAt": now, "updatedAt": now, "launchType": service.launch_type, "platformFamily": "Linux",
            "networkConfiguration": task_set.network_configuration or service.network_configuration or None,
            "rolloutState": "COMPLETED", "rolloutStateReason": f"ECS deployment {owner} completed.",
        }]  # fmt: skip
        self.scheduler.deployments[owner] = DeploymentState(None, load_balancers=list(task_set.load_balancers or []))
        for task in self.backend.sandbox_tasks.values():
            if task.owner == task_set.id:
                task.owner = owner
        service.task_sets = []
        service.task_definition = task_set.task_definition
        group = (task_set.load_balancers or [{}])[0].get("targetGroupArn")
        revision = self.revision(service, task_definition=task_set.task_definition, owner=owner, target_group=group)
        self.current[self.key(service)] = revision.arn

    def _start_traffic(self, service: Any, failing: bool) -> None:
        lb = next(lb for lb in service.load_balancers if lb.get("advancedConfiguration"))
        advanced = lb["advancedConfiguration"]
        primary, alternate = lb["targetGroupArn"], advanced["alternateTargetGroupArn"]
        elbv2 = elb.elbv2(self.backend.account_id, self.backend.region_name)
        source = [self.production_revision(service)]
        # Blue is where the production revision's tasks are registered; the weights say so for a
        # revision the sandbox did not record (a service created with its tasks on either group).
        blue = str(source[0].target_group)
        if blue not in (primary, alternate):
            weights = forward_weights(elbv2, advanced["productionListenerRule"])
            serving = [g for g in (primary, alternate) if weights.get(g, 0) > 0]
            blue = max(serving, key=lambda g: weights[g]) if serving else primary
        green = alternate if blue == primary else primary
        superseded = self.ongoing(service)
        if superseded is not None:
            superseded.status, superseded.status_reason = "STOPPED", "Service deployment superseded by a newer one."
            superseded.stopped_at = superseded.finished_at = utcnow()
            if superseded.target.owner != source[0].owner and any(
                d["id"] == superseded.target.owner for d in service.deployments
            ):
                source.append(superseded.target)  # fmt: skip
        self.backend.new_deployment(service, failing=failing, previous=source[0].task_definition)
        green_deployment = service.deployments[0]
        green_lbs = [{**{k: v for k, v in x.items() if k != "advancedConfiguration"}, "targetGroupArn": green}
                     for x in service.load_balancers if x is lb] or [{"targetGroupArn": green}]  # fmt: skip
        self.scheduler.deployments[green_deployment["id"]].load_balancers = green_lbs
        target = self.revision(service, task_definition=service.task_definition, owner=green_deployment["id"],
                               target_group=green)  # fmt: skip
        strategy = str(service.deployment_configuration["strategy"])
        record = self.new_record(service, source, target, strategy)
        steps, _ = traffic_steps(strategy, record.configuration)
        network = elb.balancer_type_of_group(elbv2, green) == "network"
        record.traffic = Traffic(advanced["productionListenerRule"], advanced.get("testListenerRule"), blue, green,
                                 network=network, steps=steps)  # fmt: skip
        self.add(service, record)

    # -- the tick -------------------------------------------------------------------------

    def tick(self, service: Any, rolling: Callable[[Any], None]) -> None:
        """Advance the service's traffic-shifting deployment, or let the rolling driver run; then sync records."""
        with self.lock:
            self._tick(service, rolling)

    def _tick(self, service: Any, rolling: Callable[[Any], None]) -> None:
        record = self.ongoing(service)
        if record is not None and record.traffic is not None:
            advance(self, service, record)
        else:
            rolling(service)
        self.rolling.sync(service)
        self._current_revisions(service)

    def _current_revisions(self, service: Any) -> None:
        summaries = []
        for deployment in service.deployments:
            revision = next((r for r in self.revisions.values() if r.owner == deployment["id"]), None)
            if revision is None:
                continue
            running, pending = self.counts(deployment["id"])
            summaries.append({"arn": revision.arn, "requestedTaskCount": int(deployment.get("desiredCount") or 0),
                              "runningTaskCount": running, "pendingTaskCount": pending})  # fmt: skip
        service.current_service_revisions = summaries

    def counts(self, owner: str) -> tuple[int, int]:
        live = self.scheduler.live(owner)
        running = sum(1 for t in live if self.scheduler._is_running(t))
        return running, len(live) - running

    def due(self, record: ServiceDeployment, sandbox_seconds: float) -> None:
        ctx = context.current()
        record.due = time.monotonic() + max(ctx.clock.real(sandbox_seconds), ctx.timings.deploy_step)


def _codedeploy_active(backend: Any, service: Any) -> bool:
    """Whether a CodeDeploy deployment of this service is still running."""
    from moto.codedeploy.models import codedeploy_backends

    try:
        codedeploy = codedeploy_backends[backend.account_id][backend.region_name]
    except KeyError:
        return False
    for deployment in getattr(codedeploy, "deployments", {}).values():
        group = getattr(deployment, "deployment_group", None)
        refs = getattr(group, "ecs_services", None) or []
        ours = any(r.get("serviceName") == service.name and r.get("clusterName") == service.cluster_name for r in refs)
        if ours and getattr(deployment, "status", "") in ("Created", "Queued", "InProgress", "Ready", "Baking"):
            return True
    return False
