"""ECS backend: services whose tasks really run, and rolling deployments judged on them.

moto's ECS records services and task sets but never runs a task: ``runningCount`` is
made up, ListTasks ignores its service filter, ``update_service`` swaps the task
definition in place. Here every service is driven by :mod:`.ecs_scheduler`: tasks are
processes started from the pushed images (:mod:`deployfw.sandbox.runtime`), counts
are counted, and an update of an ECS-controller service adds a PRIMARY deployment
that completes when its tasks are healthy or trips the circuit breaker when they are
not. ListTasks, DescribeTasks, StopTask and RunTask answer from those tasks.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.ecs import urls as moto_urls
from moto.ecs.exceptions import InvalidParameterException
from moto.ecs.models import EC2ContainerServiceBackend, Service
from moto.ecs.responses import EC2ContainerServiceResponse

from deployfw.aws.taskdef_rules import violations
from deployfw.sandbox.aws import context
from deployfw.sandbox.aws.ecs_native import NativeDeployments
from deployfw.sandbox.aws.ecs_native_api import NativeResponses
from deployfw.sandbox.aws.ecs_scheduler import DeploymentState, Scheduler
from deployfw.sandbox.aws.ecs_tasks import EcsTask, describe, new_task, task_spec
from deployfw.sandbox.aws.urls import url_module


class TaskDefinitionRefused(JsonRESTError):
    """A RegisterTaskDefinition refusal, with the exception name ECS answers with."""

    code = 400

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(error_type, message)


CODE_DEPLOY_UPDATABLE = (
    "health_check_grace_period_seconds",
    "placement_constraints",
    "placement_strategy",
    "enable_ecs_managed_tags",
    "propagate_tags",
)
CODE_DEPLOY_FIXED = (
    "network_configuration",
    "load_balancers",
    "platform_version",
    "capacity_provider_strategy",
    "service_registries",
    "launch_type",
    "enable_execute_command",
    "service_connect_configuration",
    "volume_configurations",
    "vpc_lattice_configurations",
)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


DEFAULT_DEPLOYMENT_CONFIGURATION: dict[str, Any] = {
    "deploymentCircuitBreaker": {"enable": False, "rollback": False},
    "maximumPercent": 200,
    "minimumHealthyPercent": 100,
}


class SandboxEcsBackend(EC2ContainerServiceBackend):
    def __init__(self, region_name: str, account_id: str) -> None:
        super().__init__(region_name, account_id)
        self.sandbox_tasks: dict[str, EcsTask] = {}
        self.scheduler = Scheduler(self)
        self.native = NativeDeployments(self)  # service deployments: ECS-native strategies, records for all

    sandbox_response: type | None = None
    """Set by :mod:`.install` to the response class below."""

    @property
    def _url_module(self) -> Any:
        return url_module(moto_urls, self.sandbox_response)

    # -- services ------------------------------------------------------------------------

    def service_created(self, service: Any, deployment_configuration: dict[str, Any] | None) -> None:
        """Finish what moto's create_service leaves out (called with the request params)."""
        config = {**DEFAULT_DEPLOYMENT_CONFIGURATION, **(deployment_configuration or {})}
        service.deployment_configuration = config
        service.running_count = 0
        service.pending_count = 0
        kind = (service.deployment_controller or {}).get("type", "ECS")
        if kind == "ECS" and service.deployments:
            deployment = service.deployments[0]
            deployment.update(runningCount=0, pendingCount=0, failedTasks=0, rolloutState="IN_PROGRESS",
                              rolloutStateReason="ECS deployment in progress.")  # fmt: skip
            self.scheduler.deployments[str(deployment["id"])] = self._deployment_state(None, failing=False)
            self.native.rolling.started(service, None)

    def _deployment_state(self, previous: str | None, *, failing: bool) -> DeploymentState:
        # Two rolling steps (tasks started, then the deployment judged) at least, as before tasks were real.
        floor = 2 * context.current().timings.rolling_step
        return DeploymentState(previous, failing, not_before=time.monotonic() + floor)

    def update_service(self, service_properties: dict[str, Any]) -> Service:
        ctx = context.current()
        with ctx.lock:
            self.advance()
            cluster = service_properties.get("cluster", "default")
            service: Any = self._get_service(cluster, service_properties["service"].split("/")[-1])
            self.native.validate(service, service_properties)
            if self.native.handles(service, service_properties):  # ECS-native strategies, controller switch
                return self.native.update_service(service, service_properties)
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
            running, pending = service.running_count, service.pending_count
            updated = super().update_service(service_properties)
            resolved = self.describe_task_definition(new_taskdef).arn if new_taskdef else previous
            updated.task_definition = resolved
            updated.running_count, updated.pending_count = running, pending
            changed = resolved != previous
            if kind == "ECS" and (changed or force):
                module = ctx.registry.module_for_service(updated.cluster_name, updated.name)
                self.new_deployment(updated, failing=ctx.faults.take_deploy(module), previous=previous)
                self.native.rolling.started(updated, previous)
            elif kind == "ECS" and updated.deployments:
                updated.deployments[0]["desiredCount"] = updated.desired_count
            self.scheduler.reconcile()
            return updated

    def _update_code_deploy_service(self, service: Any, props: dict[str, Any]) -> Service:
        """UpdateService on a CODE_DEPLOY service: only what ECS lets change outside CodeDeploy.

        ECS's API reference: for the CODE_DEPLOY controller only the desired count,
        deployment configuration, health check grace period, placement constraints and
        strategy, ECS managed tags and tag propagation can be updated; anything else is
        refused before any of the request is applied.
        """
        new_taskdef = props.get("task_definition")
        if new_taskdef and self.describe_task_definition(new_taskdef).arn != service.task_definition:
            raise InvalidParameterException(
                "Unable to update task definition on services with a CODE_DEPLOY deployment "
                "controller. Use AWS CodeDeploy to trigger a new deployment."
            )
        if props.get("force_new_deployment"):
            raise InvalidParameterException(
                "Unable to force a new deployment on services with a CODE_DEPLOY deployment "
                "controller. Use AWS CodeDeploy to trigger a new deployment."
            )
        for key in CODE_DEPLOY_FIXED:
            if props.get(key) is not None:
                raise InvalidParameterException(
                    f"Unable to update {_camel(key)} on services with a CODE_DEPLOY deployment "
                    "controller. Use AWS CodeDeploy to trigger a new deployment."
                )
        if props.get("desired_count") is not None:
            service.desired_count = int(props["desired_count"])
        if props.get("deployment_configuration") is not None:
            service.deployment_configuration = {
                **(getattr(service, "deployment_configuration", None) or DEFAULT_DEPLOYMENT_CONFIGURATION),
                **props["deployment_configuration"],
            }
        for key in CODE_DEPLOY_UPDATABLE:
            if props.get(key) is not None:
                setattr(service, key, props[key])
        self.scheduler.reconcile()
        return service

    def new_deployment(self, service: Service, *, failing: bool, previous: str | None) -> None:
        """A new PRIMARY deployment of the service's task definition; older ones turn ACTIVE."""
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
            "pendingCount": 0,
            "runningCount": 0,
            "failedTasks": 0,
            "createdAt": now,
            "updatedAt": now,
            "launchType": service.launch_type,
            "platformFamily": "Linux",
            "networkConfiguration": service.network_configuration or None,
            "rolloutState": "IN_PROGRESS",
            "rolloutStateReason": "ECS deployment in progress.",
        }
        service.deployments.insert(0, deployment)
        self.scheduler.deployments[str(deployment["id"])] = self._deployment_state(previous, failing=failing)

    def describe_services(self, cluster_str: str, service_names_or_arns: list[str]) -> Any:
        with context.current().lock:
            self.advance()
            return super().describe_services(cluster_str, service_names_or_arns)

    def delete_service(self, cluster_name: str, service_name: str, force: bool) -> Service:
        with context.current().lock:
            service = super().delete_service(cluster_name, service_name, force)
            self.scheduler.drop_service(service.cluster_name, service.name)
            return service

    # -- tasks -----------------------------------------------------------------------------

    def sandbox_list_tasks(
        self,
        cluster: str,
        *,
        service_name: str | None,
        family: str | None,
        started_by: str | None,
        desired_status: str | None,
    ) -> list[str]:
        with context.current().lock:
            self.advance()
            found = self._get_cluster(cluster)
            if service_name:
                self._get_service(found.name, service_name.split("/")[-1])
            wanted = desired_status or "RUNNING"
            arns = []
            for task in self.sandbox_tasks.values():
                if task.cluster != found.name or task.desired_status != wanted:
                    continue
                if service_name and task.service != service_name.split("/")[-1]:
                    continue
                if started_by and task.started_by != started_by:
                    continue
                if family and task.task_definition_arn.split("/")[-1].rsplit(":", 1)[0] != family:
                    continue
                arns.append(task.arn)
            return arns

    def sandbox_describe_tasks(
        self, cluster: str, refs: list[str]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        ctx = context.current()
        with ctx.lock:
            self.advance()
            found = self._get_cluster(cluster)
            if not refs:
                raise InvalidParameterException("Tasks cannot be empty.")
            tasks, failures = [], []
            for ref in refs:
                task = self._task(found.name, ref)
                if task is None:
                    failures.append({"arn": ref, "reason": "MISSING"})
                    continue
                state = ctx.runtime.get(task.task_id) if ctx.runtime else None
                tasks.append(describe(task, state, ctx.health))
            return tasks, failures

    def _task(self, cluster: str, ref: str) -> EcsTask | None:
        task_id = ref.split("/")[-1]
        for task in self.sandbox_tasks.values():
            if task.cluster == cluster and (task.arn == ref or task.task_id == task_id):
                return task
        return None

    def sandbox_stop_task(self, cluster: str, ref: str, reason: str | None) -> dict[str, Any]:
        ctx = context.current()
        with ctx.lock:
            found = self._get_cluster(cluster)
            task = self._task(found.name, ref)
            if task is None:
                raise InvalidParameterException("The referenced task was not found.")
            self.scheduler.stop_task(task, reason or "Task stopped by user", by_scheduler=False)
            task.counted = True  # a user's stop is not a deployment failure
            state = ctx.runtime.get(task.task_id) if ctx.runtime else None
            return describe(task, state, ctx.health)

    def sandbox_run_task(self, cluster: str, taskdef_ref: str, count: int, *, started_by: str | None,
                         launch_type: str | None, network_configuration: dict[str, Any] | None,
                         group: str | None, overrides: dict[str, Any] | None) -> list[dict[str, Any]]:  # fmt: skip
        ctx = context.current()
        with ctx.lock:
            found = self._get_cluster(cluster)
            taskdef = self.describe_task_definition(taskdef_ref)
            if taskdef.network_mode == "awsvpc" and not network_configuration:
                raise InvalidParameterException(
                    "Network Configuration must be provided when networkMode 'awsvpc' is specified."
                )
            answers = []
            for _ in range(count):
                task = new_task(self, found, taskdef, group=group or f"family:{taskdef.family}",
                                started_by=started_by or "", owner="", service=None,
                                launch_type=launch_type or "FARGATE", load_balancers=[],
                                network_configuration=network_configuration)  # fmt: skip
                self.sandbox_tasks[task.arn] = task
                if ctx.runtime is not None:
                    ctx.runtime.start(task_spec(task, self.account_id, overrides), task_id=task.task_id)
                answers.append(describe(task, None, ctx.health))
            return answers

    # -- progression ---------------------------------------------------------------------

    def sandbox_advance(self) -> None:
        self.advance()

    def advance(self) -> None:
        self.scheduler.reconcile()


class SandboxEcsResponse(NativeResponses, EC2ContainerServiceResponse):
    """Keeps ``deploymentConfiguration``; tasks come from the scheduler, not moto; service deployments
    (:class:`~deployfw.sandbox.aws.ecs_native_api.NativeResponses`) from the ECS-native records."""

    @property
    def backend(self) -> SandboxEcsBackend:
        return self.ecs_backend  # type: ignore[return-value]

    def register_task_definition(self) -> ActionResult:
        """ECS's refusals first (the same rules deployfw's preflight checks), then moto's registration."""
        request = {
            key: self._get_param(key)
            for key in ("family", "networkMode", "requiresCompatibilities", "cpu", "memory", "containerDefinitions")
        }
        found = violations({k: v for k, v in request.items() if v is not None})
        if found:
            raise TaskDefinitionRefused(found[0].exception, found[0].message)
        return super().register_task_definition()

    def create_service(self) -> Any:
        controller = (self._get_param("deploymentController") or {}).get("type")
        if controller == "CODE_DEPLOY" and not self._get_param("loadBalancers"):
            raise InvalidParameterException(
                "A service using the CODE_DEPLOY deployment controller must use an Application Load Balancer"
                " or a Network Load Balancer: loadBalancers is required."
            )
        result = super().create_service()
        service = self.backend._get_service(self._get_param("cluster", "default"), self._get_param("serviceName"))
        self.backend.service_created(service, self._get_param("deploymentConfiguration"))
        return result

    def list_tasks(self) -> ActionResult:
        arns = self.backend.sandbox_list_tasks(
            self._get_param("cluster", "default"),
            service_name=self._get_param("serviceName"),
            family=self._get_param("family"),
            started_by=self._get_param("startedBy"),
            desired_status=self._get_param("desiredStatus"),
        )
        return ActionResult({"taskArns": arns})

    def describe_tasks(self) -> ActionResult:
        tasks, failures = self.backend.sandbox_describe_tasks(
            self._get_param("cluster", "default"), self._get_param("tasks", [])
        )
        return ActionResult({"tasks": tasks, "failures": failures})

    def stop_task(self) -> ActionResult:
        task = self.backend.sandbox_stop_task(
            self._get_param("cluster", "default"), self._get_param("task"), self._get_param("reason")
        )
        return ActionResult({"task": task})

    def run_task(self) -> ActionResult:
        tasks = self.backend.sandbox_run_task(
            self._get_param("cluster", "default"),
            self._get_param("taskDefinition"),
            self._get_int_param("count", 1),
            started_by=self._get_param("startedBy"),
            launch_type=self._get_param("launchType"),
            network_configuration=self._get_param("networkConfiguration"),
            group=self._get_param("group"),
            overrides=self._get_param("overrides"),
        )
        return ActionResult({"tasks": tasks, "failures": []})
