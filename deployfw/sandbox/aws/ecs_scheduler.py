"""The ECS service scheduler: keep each service's tasks what its deployments ask for.

Run on every tick (and before each read) under the sandbox lock, for each service:

* **ECS controller (rolling).** The PRIMARY deployment wants ``desiredCount`` tasks;
  older (ACTIVE) deployments keep theirs until enough new ones are healthy, within
  ``minimumHealthyPercent``/``maximumPercent``. A task is healthy when it is RUNNING
  and, behind a load balancer, ``healthy`` in every target group. A task that stops
  by itself (its app exited) or that a target group finds ``unhealthy`` (ECS stops
  it: "Task failed ELB health checks") is a failed task of its deployment. With the
  deployment circuit breaker on, the deployment goes FAILED once its failed tasks
  reach ECS's threshold - ``0.5 * desiredCount``, at least 3, at most 200 - and, with
  rollback, ECS starts a deployment of the last completed task definition. When the
  PRIMARY's tasks are all healthy and no older task is left, it is COMPLETED.
* **CODE_DEPLOY / EXTERNAL controllers.** Each task set wants ``ceil(desiredCount *
  scale%)`` tasks; failed tasks are replaced (CodeDeploy judges health, not ECS).

Stopping a task behind a load balancer first deregisters it: it keeps serving while
the target drains (``deregistration_delay``, a sandbox duration), then gets SIGTERM.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from moto.core.utils import utcnow

from deployfw.sandbox.aws import context, elb
from deployfw.sandbox.aws.ecs_tasks import EcsTask, new_task, task_spec
from deployfw.sandbox.aws.health import deregistration_delay

if TYPE_CHECKING:
    from deployfw.sandbox.aws.ecs import SandboxEcsBackend

RESTART_DELAY = 10.0
"""Sandbox seconds the scheduler waits before replacing a failed task; doubled on each further failure."""
RESTART_DELAY_MAX = 900.0
RESTART_FLOOR = 0.25
"""Real seconds at least between two launches after a failure (at scale 0 nothing else would pace them)."""


def breaker_threshold(desired: int) -> int:
    """ECS's circuit-breaker failure threshold for a deployment of ``desired`` tasks."""
    return min(200, max(3, math.ceil(0.5 * desired)))


@dataclass
class DeploymentState:
    """The sandbox's bookkeeping for one ECS deployment (beside moto's deployment dict)."""

    previous_task_definition: str | None
    failing: bool = False
    """A ``deploy:<module>`` fault: its tasks fail their health checks."""
    not_before: float = 0.0
    next_launch: float = 0.0
    failures: int = 0
    load_balancers: list[dict[str, Any]] | None = None
    """Where its tasks register when not the service's ``loadBalancers`` (an ECS-native green revision's
    alternate target group)."""


class Scheduler:
    """Reconciles one ECS backend's services with the task runtime."""

    def __init__(self, backend: SandboxEcsBackend) -> None:
        self.backend = backend
        self.deployments: dict[str, DeploymentState] = {}

    # -- helpers ---------------------------------------------------------------------------

    @property
    def ctx(self) -> context.SandboxContext:
        return context.current()

    def _state(self, task: EcsTask) -> Any:
        runtime = self.ctx.runtime
        return runtime.get(task.task_id) if runtime is not None else None

    def live(self, owner: str) -> list[EcsTask]:
        """Tasks of ``owner`` that are not stopping or stopped."""
        return [t for t in self.backend.sandbox_tasks.values() if t.owner == owner and t.desired_status == "RUNNING"]

    def healthy(self, task: EcsTask) -> bool:
        state = self._state(task)
        if state is None or state.status != "RUNNING" or task.desired_status != "RUNNING":
            return False
        if not task.targets:
            return True
        health = self.ctx.health
        return (
            health is not None
            and task.registered
            and all(health.healthy((group, state.address or "", port)) for group, port in task.targets)
        )

    def start_task(
        self,
        service: Any,
        taskdef_arn: str,
        owner: str,
        *,
        load_balancers: list[dict[str, Any]],
        network_configuration: dict[str, Any] | None,
        started_by: str,
        launch_type: str | None,
    ) -> EcsTask:
        cluster = self.backend._get_cluster(service.cluster_name)
        taskdef = self.backend.describe_task_definition(taskdef_arn)
        task = new_task(
            self.backend,
            cluster,
            taskdef,
            group=f"service:{service.name}",
            started_by=started_by,
            owner=owner,
            service=service.name,
            launch_type=launch_type or service.launch_type or "FARGATE",
            load_balancers=load_balancers,
            network_configuration=network_configuration,
        )
        self.backend.sandbox_tasks[task.arn] = task
        runtime = self.ctx.runtime
        if runtime is not None:
            runtime.start(task_spec(task, self.backend.account_id), task_id=task.task_id)
        _event(service, f"(service {service.name}) has started 1 tasks: (task {task.task_id}).")
        return task

    def stop_task(self, task: EcsTask, reason: str, *, by_scheduler: bool = True, drain: bool = True) -> None:
        """Deregister (and let it drain), then stop the process."""
        if task.desired_status == "STOPPED":
            return
        task.desired_status = "STOPPED"
        task.stopping_at = utcnow()
        task.stop_reason = reason
        task.by_scheduler = by_scheduler
        delay = 0.0
        if task.registered:
            delay = self._deregister(task) if drain else 0.0
        if delay > 0 and drain:
            task.stop_after = time.monotonic() + self.ctx.clock.real(delay)
        else:
            self._kill(task)

    def _kill(self, task: EcsTask) -> None:
        task.stop_after = None
        runtime = self.ctx.runtime
        if runtime is not None:
            runtime.stop(task.task_id, task.stop_reason or "Task stopped", "ServiceSchedulerInitiated")

    def _register(self, task: EcsTask, address: str) -> None:
        health = self.ctx.health
        for backend in elb.elbv2_backends_of():
            for group_arn, port in task.targets:
                group = backend.target_groups.get(group_arn)
                if group is None:
                    continue
                group.register([{"Id": address, "Port": port}])
                if health is not None:
                    health.register((group_arn, address, port))
        task.registered = True

    def _deregister(self, task: EcsTask) -> float:
        """Deregister the task's targets; returns the longest deregistration delay (sandbox seconds)."""
        state = self._state(task)
        address = state.address if state else None
        delay = 0.0
        if address:
            for backend in elb.elbv2_backends_of():
                for group_arn, port in task.targets:
                    group = backend.target_groups.get(group_arn)
                    if group is None:
                        continue
                    group.targets.pop(address, None)
                    seconds = deregistration_delay(group)
                    delay = max(delay, seconds)
                    if self.ctx.health is not None:
                        self.ctx.health.deregister((group_arn, address, port), seconds)
        task.registered = False
        return delay

    # -- the tick ----------------------------------------------------------------------------

    def reconcile(self) -> None:
        self._follow_tasks()
        for service in list(self.backend.services.values()):
            if service.status != "ACTIVE":
                continue
            kind = (service.deployment_controller or {}).get("type", "ECS")
            if kind == "ECS":
                self.backend.native.tick(service, self._rolling)  # ECS-native deployments drive their own tasks
            else:
                self._task_sets(service)
            self._counts(service, kind)

    def _follow_tasks(self) -> None:
        """Register tasks that came up, stop drained ones, notice failures."""
        now = time.monotonic()
        health = self.ctx.health
        for task in list(self.backend.sandbox_tasks.values()):
            if task.stopped_at is not None:  # seen stopped and dealt with below: nothing is left to watch
                continue
            state = self._state(task)
            if task.stop_after is not None and now >= task.stop_after:
                self._kill(task)
            if state is None:
                continue
            if state.status == "RUNNING" and task.started_at is None:
                task.started_at = utcnow()
            if state.status == "RUNNING" and task.desired_status == "RUNNING" and not task.registered and task.targets:
                self._register(task, state.address or "")
            if state.status == "STOPPED":
                task.stopped_at = utcnow()
                task.stop_after = None  # a stopped task has nothing left to drain
                if task.registered:
                    self._deregister(task)
                if task.desired_status == "RUNNING":  # it stopped by itself: a failure
                    task.desired_status = "STOPPED"
                    task.stop_reason = state.stopped_reason
                    self._failed(task, state.stopped_reason or "Essential container in task exited")
                continue
            if task.desired_status == "RUNNING" and task.registered and health is not None:
                for group, port in task.targets:
                    target = health.state((group, state.address or "", port))
                    if target is not None and target.state == "unhealthy":
                        self.stop_task(task, f"Task failed ELB health checks in (target-group {group})",
                                       by_scheduler=False, drain=False)  # fmt: skip
                        self._failed(task, "failed ELB health checks")
                        break

    def _failed(self, task: EcsTask, why: str) -> None:
        if task.counted or not task.service:
            return
        task.counted = True
        service = self.backend.services.get(f"{task.cluster}:{task.service}")
        if service is None:
            return
        deployments: list[dict[str, Any]] = service.deployments
        for deployment in deployments:
            if deployment["id"] == task.owner:
                deployment["failedTasks"] = int(deployment.get("failedTasks") or 0) + 1
        state = self.deployments.get(task.owner)
        if state is not None:
            delay = min(RESTART_DELAY * 2**state.failures, RESTART_DELAY_MAX)
            state.failures += 1
            state.next_launch = time.monotonic() + max(RESTART_FLOOR, self.ctx.clock.real(delay))
        _event(service, f"(service {service.name}) has stopped 1 running tasks: (task {task.task_id}) - {why}.")

    # -- ECS controller ---------------------------------------------------------------------------

    def _rolling(self, service: Any) -> None:
        deployments = service.deployments
        if not deployments:
            return
        primary = deployments[0]
        state = self.deployments.setdefault(primary["id"], DeploymentState(None))
        desired = int(service.desired_count)
        config = getattr(service, "deployment_configuration", None) or {}
        maximum = math.floor(desired * int(config.get("maximumPercent", 200)) / 100)
        minimum = math.ceil(desired * int(config.get("minimumHealthyPercent", 100)) / 100)
        now = time.monotonic()
        new = self.live(primary["id"])
        old = [t for d in deployments[1:] for t in self.live(d["id"])]
        if state.failing:
            for task in new:
                if self._state(task) is not None and self._state(task).status == "RUNNING":
                    self.stop_task(task, "Task failed container health checks (deployfw sandbox fault)",
                                   by_scheduler=False, drain=False)  # fmt: skip
                    self._failed(task, "failed container health checks")
            new = self.live(primary["id"])
        if primary.get("rolloutState") == "IN_PROGRESS" and self._breaker_trips(service, primary):
            return
        # Start what the PRIMARY lacks, within maximumPercent (never fewer than one at a time).
        missing = desired - len(new)
        room = max(maximum - len(new) - len(old), 1 if not old or minimum < desired else 0)
        if missing > 0 and now >= state.next_launch and primary.get("rolloutState") != "FAILED":
            for _ in range(min(missing, room)):
                self.start_task(service, primary["taskDefinition"], primary["id"],
                                load_balancers=state.load_balancers or service.load_balancers,
                                network_configuration=service.network_configuration,
                                started_by=primary["id"], launch_type=primary.get("launchType"))  # fmt: skip
            new = self.live(primary["id"])
        if len(new) > desired:  # scale in
            for task in sorted(new, key=self.healthy)[: len(new) - desired]:
                self.stop_task(task, "Scaling activity initiated by (deployment {})".format(primary["id"]))
            new = self.live(primary["id"])
        # Stop old tasks as far as minimumHealthyPercent allows.
        healthy_new = sum(1 for t in new if self.healthy(t))
        healthy_old = [t for t in old if self.healthy(t)]
        can_stop = healthy_new + len(healthy_old) - minimum
        for task in [t for t in old if not self.healthy(t)] + healthy_old:
            if task not in healthy_old or can_stop > 0:
                if task in healthy_old:
                    can_stop -= 1
                self.stop_task(task, f"Scaling activity initiated by (deployment {primary['id']})")
        old = [t for d in deployments[1:] for t in self.live(d["id"])]
        draining = [t for d in deployments[1:] for t in self.backend.sandbox_tasks.values()
                    if t.owner == d["id"] and t.stop_after is not None]  # fmt: skip
        primary["runningCount"] = sum(1 for t in new if self._is_running(t))
        primary["pendingCount"] = len(new) - primary["runningCount"]
        primary["desiredCount"] = desired
        for deployment in deployments[1:]:
            mine = self.live(deployment["id"])
            deployment["runningCount"] = sum(1 for t in mine if self._is_running(t))
            deployment["pendingCount"] = len(mine) - deployment["runningCount"]
            deployment["desiredCount"] = len(mine)
        if (
            primary.get("rolloutState") == "IN_PROGRESS"
            and healthy_new >= desired
            and not old
            and not draining
            and now >= state.not_before
        ):
            primary["rolloutState"] = "COMPLETED"
            primary["rolloutStateReason"] = f"ECS deployment {primary['id']} completed."
            primary["updatedAt"] = utcnow()
            service.deployments[:] = [primary]
            _event(service, f"(service {service.name}) (deployment {primary['id']}) deployment completed.")
            _event(service, f"(service {service.name}) has reached a steady state.")
        elif primary.get("rolloutState") == "COMPLETED" and len(deployments) == 1 and healthy_new >= desired:
            pass

    def _is_running(self, task: EcsTask) -> bool:
        state = self._state(task)
        return state is not None and state.status == "RUNNING"

    def _breaker_trips(self, service: Any, primary: dict[str, Any]) -> bool:
        config = getattr(service, "deployment_configuration", None) or {}
        breaker = config.get("deploymentCircuitBreaker") or {}
        if not breaker.get("enable"):
            return False
        if int(primary.get("failedTasks", 0)) < breaker_threshold(int(service.desired_count)):
            return False
        state = self.deployments.get(primary["id"])
        if state is not None and time.monotonic() < state.not_before:
            return False
        primary["rolloutState"] = "FAILED"
        primary["rolloutStateReason"] = (
            f"ECS deployment circuit breaker: tasks failed to start. ({primary.get('failedTasks')} failed tasks)"
        )
        primary["updatedAt"] = utcnow()
        _event(
            service, f"(service {service.name}) (deployment {primary['id']}) deployment failed: tasks failed to start."
        )
        for task in self.live(primary["id"]):
            self.stop_task(task, f"Scaling activity initiated by (deployment {primary['id']}) circuit breaker")
        previous = state.previous_task_definition if state else None
        if breaker.get("rollback") and previous:
            service.task_definition = previous
            self.backend.new_deployment(service, failing=False, previous=None)
            _event(service, f"(service {service.name}) rolling back to {previous}.")
        return True

    # -- CODE_DEPLOY / EXTERNAL controllers ---------------------------------------------------------

    def _task_sets(self, service: Any) -> None:
        desired = int(service.desired_count)
        now = time.monotonic()
        for task_set in service.task_sets:
            state = self.deployments.setdefault(task_set.id, DeploymentState(None))
            scale = float((task_set.scale or {}).get("value", 100.0))
            want = math.ceil(desired * scale / 100)
            mine = self.live(task_set.id)
            if len(mine) < want and now >= state.next_launch:
                for _ in range(want - len(mine)):
                    self.start_task(service, task_set.task_definition, task_set.id,
                                    load_balancers=task_set.load_balancers,
                                    network_configuration=task_set.network_configuration,
                                    started_by=task_set.external_id or task_set.id,
                                    launch_type=task_set.launch_type)  # fmt: skip
            elif len(mine) > want:
                for task in sorted(mine, key=self.healthy)[: len(mine) - want]:
                    self.stop_task(task, f"Scaling activity initiated by (task set {task_set.id})")
            mine = self.live(task_set.id)
            running = sum(1 for t in mine if self._is_running(t))
            task_set.computed_desired_count = want
            task_set.running_count = running
            task_set.pending_count = len(mine) - running
            steady = sum(1 for t in mine if self.healthy(t)) >= want and len(mine) == want
            stability = "STEADY_STATE" if steady else "STABILIZING"
            if getattr(task_set, "stabilityStatus", None) != stability:
                task_set.stabilityStatus = stability
                task_set.stabilityStatusAt = utcnow()
        owners = {ts.id for ts in service.task_sets}
        for task in list(self.backend.sandbox_tasks.values()):
            if task.service == service.name and task.cluster == service.cluster_name and task.owner not in owners:
                self.stop_task(task, "Task set deleted")

    def task_set_healthy(self, task_set: Any, service: Any) -> bool:
        """Every task the task set wants is running and healthy (what CodeDeploy waits for)."""
        want = getattr(task_set, "computed_desired_count", None)
        if want is None:
            return False
        mine = self.live(task_set.id)
        return len(mine) >= want and sum(1 for t in mine if self.healthy(t)) >= want

    def task_set_failures(self, task_set: Any) -> int:
        return sum(1 for t in self.backend.sandbox_tasks.values() if t.owner == task_set.id and t.counted)

    def _counts(self, service: Any, kind: str) -> None:
        mine = [
            t
            for t in self.backend.sandbox_tasks.values()
            if t.service == service.name and t.cluster == service.cluster_name and t.desired_status == "RUNNING"
        ]
        running = sum(1 for t in mine if self._is_running(t))
        service.running_count = running
        service.pending_count = len(mine) - running

    # -- stopping everything of a service ---------------------------------------------------------

    def drop_service(self, cluster: str, name: str) -> None:
        for task in list(self.backend.sandbox_tasks.values()):
            if task.service == name and task.cluster == cluster:
                self.stop_task(task, "Service deleted", drain=False)


def _event(service: Any, message: str) -> None:
    import uuid

    service.events.insert(0, {"id": str(uuid.uuid4()), "createdAt": utcnow(), "message": message})
    del service.events[100:]
