"""ECS backend: rolling deployments that complete, fail, and roll back like ECS.

moto's ``update_service`` swaps the task definition in place and never creates a
deployment, so ``services_stable`` never holds and a circuit-breaker rollback cannot
be observed. Here an update of an ECS-controller service adds a new PRIMARY
deployment (the old one turns ACTIVE) which, on the sandbox clock, either reaches
COMPLETED (old deployments drained) or, when a ``deploy:<module>`` fault is
injected, keeps failing tasks; with the circuit breaker on it goes FAILED and, with
rollback, ECS starts a new deployment of the previous task definition.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from moto.core.utils import utcnow
from moto.ecs import urls as moto_urls
from moto.ecs.exceptions import InvalidParameterException
from moto.ecs.models import EC2ContainerServiceBackend, Service
from moto.ecs.responses import EC2ContainerServiceResponse

from deployfw.sandbox.aws import context

DEFAULT_DEPLOYMENT_CONFIGURATION: dict[str, Any] = {
    "deploymentCircuitBreaker": {"enable": False, "rollback": False},
    "maximumPercent": 200,
    "minimumHealthyPercent": 100,
}


@dataclass
class Rollout:
    """One ECS deployment being driven to COMPLETED or FAILED."""

    service_key: str
    deployment_id: str
    due: float
    failing: bool
    stage: str = "starting"
    previous_task_definition: str | None = None


class SandboxEcsBackend(EC2ContainerServiceBackend):
    def __init__(self, region_name: str, account_id: str) -> None:
        super().__init__(region_name, account_id)
        self.rollouts: list[Rollout] = []

    @property
    def _url_module(self) -> Any:  # type: ignore[override]
        from deployfw.sandbox.aws.urls import url_module

        return url_module(moto_urls, SandboxEcsResponse)

    # -- services ------------------------------------------------------------------------

    def service_created(self, service: Service, deployment_configuration: dict[str, Any] | None) -> None:
        """Finish what moto's create_service leaves out (called with the request params)."""
        config = {**DEFAULT_DEPLOYMENT_CONFIGURATION, **(deployment_configuration or {})}
        service.deployment_configuration = config
        kind = (service.deployment_controller or {}).get("type", "ECS")
        if kind == "ECS" and service.deployments:
            deployment = service.deployments[0]
            deployment["runningCount"] = 0
            deployment["pendingCount"] = service.desired_count
            deployment["rolloutState"] = "IN_PROGRESS"
            deployment["rolloutStateReason"] = "ECS deployment in progress."
            deployment["failedTasks"] = 0
            service.running_count = 0
            service.pending_count = service.desired_count
            self._start_rollout(service, deployment, failing=False, previous=None)
        else:
            # CODE_DEPLOY/EXTERNAL: tasks belong to task sets; report them as running.
            service.running_count = service.desired_count
            service.pending_count = 0

    def update_service(self, service_properties: dict[str, Any]) -> Service:
        ctx = context.current()
        with ctx.lock:
            self.advance()
            cluster = service_properties.get("cluster", "default")
            service = self._get_service(cluster, service_properties["service"].split("/")[-1])
            kind = (service.deployment_controller or {}).get("type", "ECS")
            new_taskdef = service_properties.get("task_definition")
            if kind == "CODE_DEPLOY":
                return self._update_code_deploy_service(service, service_properties)
            previous = service.task_definition
            config = service_properties.pop("deployment_configuration", None)
            if config:
                service.deployment_configuration = {
                    **getattr(service, "deployment_configuration", DEFAULT_DEPLOYMENT_CONFIGURATION),
                    **config,
                }
            force = bool(service_properties.get("force_new_deployment"))
            service_properties["force_new_deployment"] = False
            old_running = service.running_count
            updated = super().update_service(service_properties)
            resolved = self.describe_task_definition(new_taskdef).arn if new_taskdef else previous
            updated.task_definition = resolved
            changed = resolved != previous
            if kind == "ECS" and (changed or force):
                module = ctx.registry.module_for_service(updated.cluster_name, updated.name)
                self._new_deployment(
                    updated,
                    failing=ctx.faults.take_deploy(module),
                    previous=previous,
                )
                updated.running_count = old_running
            elif kind == "ECS" and updated.deployments:
                primary = updated.deployments[0]
                primary["desiredCount"] = updated.desired_count
                primary["runningCount"] = updated.running_count
            return updated

    def _update_code_deploy_service(self, service: Service, props: dict[str, Any]) -> Service:
        """AWS lets only counts and a few settings change outside CodeDeploy."""
        new_taskdef = props.get("task_definition")
        if new_taskdef and self.describe_task_definition(new_taskdef).arn != service.task_definition:
            raise InvalidParameterException(
                "Unable to update task definition on services with a CODE_DEPLOY deployment "
                "controller. Use AWS CodeDeploy to trigger a new deployment."
            )
        for key in ("network_configuration", "load_balancers", "platform_version"):
            if props.get(key) is not None:
                raise InvalidParameterException(
                    f"Unable to update {key} on services with a CODE_DEPLOY deployment "
                    "controller. Use AWS CodeDeploy to trigger a new deployment."
                )
        if props.get("desired_count") is not None:
            service.desired_count = int(props["desired_count"])
            service.running_count = service.desired_count
            service.pending_count = 0
        return service

    def _new_deployment(self, service: Service, *, failing: bool, previous: str | None) -> None:
        for deployment in service.deployments:
            if deployment["status"] == "PRIMARY":
                deployment["status"] = "ACTIVE"
                deployment["updatedAt"] = utcnow()
        now = utcnow()
        deployment = {
            "id": f"ecs-svc/{uuid.uuid4().int % 10**19:019d}",
            "status": "PRIMARY",
            "taskDefinition": service.task_definition,
            "desiredCount": service.desired_count,
            "pendingCount": service.desired_count,
            "runningCount": 0,
            "failedTasks": 0,
            "createdAt": now,
            "updatedAt": now,
            "launchType": service.launch_type,
            "platformFamily": "EC2" if service.launch_type == "EC2" else "FARGATE",
            "networkConfiguration": service.network_configuration or None,
            "rolloutState": "IN_PROGRESS",
            "rolloutStateReason": "ECS deployment in progress.",
        }
        service.deployments.insert(0, deployment)
        self._start_rollout(service, deployment, failing=failing, previous=previous)

    def _start_rollout(
        self, service: Service, deployment: dict[str, Any], *, failing: bool, previous: str | None
    ) -> None:
        step = context.current().timings.rolling_step
        self.rollouts.append(
            Rollout(
                service_key=f"{service.cluster_name}:{service.name}",
                deployment_id=deployment["id"],
                due=time.monotonic() + step,
                failing=failing,
                previous_task_definition=previous,
            )
        )

    def describe_services(self, cluster_str: str, service_names_or_arns: list[str]) -> Any:
        with context.current().lock:
            self.advance()
            return super().describe_services(cluster_str, service_names_or_arns)

    # -- progression ---------------------------------------------------------------------

    def sandbox_advance(self) -> None:
        self.advance()

    def advance(self) -> None:
        now = time.monotonic()
        step = context.current().timings.rolling_step
        for rollout in list(self.rollouts):
            while rollout.stage not in ("done",) and rollout.due <= now:
                self._step(rollout)
                rollout.due = now if step <= 0 else rollout.due + step
            if rollout.stage == "done" and rollout in self.rollouts:
                self.rollouts.remove(rollout)

    def _step(self, rollout: Rollout) -> None:
        service = self.services.get(rollout.service_key)
        deployment = next(
            (d for d in (service.deployments if service else []) if d["id"] == rollout.deployment_id),
            None,
        )
        if service is None or deployment is None or deployment.get("rolloutState") != "IN_PROGRESS":
            rollout.stage = "done"
            return
        if deployment["status"] != "PRIMARY":
            # A newer deployment superseded this one: ECS drains it instead of finishing it, and
            # it disappears once the PRIMARY reaches a steady state.
            rollout.stage = "done"
            return
        desired = service.desired_count
        deployment["updatedAt"] = utcnow()
        if rollout.stage == "starting":
            if rollout.failing:
                deployment["failedTasks"] = deployment.get("failedTasks", 0) + max(desired, 1)
                deployment["pendingCount"] = 0
                self._event(
                    service,
                    f"(service {service.name}) has started {desired} tasks; "
                    "tasks failed container health checks and were stopped.",
                )
            else:
                deployment["runningCount"] = desired
                deployment["pendingCount"] = 0
            rollout.stage = "settling"
            return
        if rollout.failing:
            breaker = getattr(service, "deployment_configuration", {}).get("deploymentCircuitBreaker", {})
            if not breaker.get("enable"):
                deployment["failedTasks"] += max(desired, 1)  # ECS keeps retrying forever
                return
            deployment["rolloutState"] = "FAILED"
            deployment["rolloutStateReason"] = "ECS deployment circuit breaker: tasks failed to start."
            self._event(
                service,
                f"(service {service.name}) (deployment {deployment['id']}) deployment failed: tasks failed to start.",
            )
            rollout.stage = "done"
            if breaker.get("rollback") and rollout.previous_task_definition:
                service.task_definition = rollout.previous_task_definition
                self._new_deployment(service, failing=False, previous=None)
                self._event(service, f"(service {service.name}) rolling back to {rollout.previous_task_definition}.")
            return
        deployment["rolloutState"] = "COMPLETED"
        deployment["rolloutStateReason"] = f"ECS deployment {deployment['id']} completed."
        deployment["runningCount"] = desired
        service.deployments[:] = [deployment]
        service.running_count = desired
        service.pending_count = 0
        self._event(service, f"(service {service.name}) has reached a steady state.")
        rollout.stage = "done"

    @staticmethod
    def _event(service: Service, message: str) -> None:
        service.events.insert(0, {"id": str(uuid.uuid4()), "createdAt": utcnow(), "message": message})


class SandboxEcsResponse(EC2ContainerServiceResponse):
    """Keeps ``deploymentConfiguration`` and starts the first rollout at create time."""

    def create_service(self) -> Any:
        result = super().create_service()
        backend: SandboxEcsBackend = self.ecs_backend  # type: ignore[assignment]
        service = backend._get_service(self._get_param("cluster", "default"), self._get_param("serviceName"))
        backend.service_created(service, self._get_param("deploymentConfiguration"))
        return result
