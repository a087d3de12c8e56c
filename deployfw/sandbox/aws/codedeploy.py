"""CodeDeploy backend: deployments that actually progress, with AWS's refusals.

moto's CodeDeploy records deployments and leaves them ``Created`` forever. This
subclass adds the state machine (Created -> InProgress -> [traffic shifts] ->
Succeeded, or Failed/Stopped with rollback), predefined and custom deployment
configs, stop/continue, deployment targets, and the checks AWS makes on deployment
groups. The ECS blue/green mechanics live in :mod:`.codedeploy_ecs`; this module owns
bookkeeping and timing. Progress is a function of time, advanced both by the
sandbox's ticker and on every read, so a client that polls rarely (awscli: 15 s)
and one that never polls see the same outcome.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from moto.codedeploy import urls as moto_urls
from moto.codedeploy.models import CodeDeployBackend, DeploymentInfo
from moto.core.utils import utcnow

from deployfw.sandbox.aws import codedeploy_ecs, codedeploy_server, context
from deployfw.sandbox.aws import codedeploy_errors as errors
from deployfw.sandbox.aws.codedeploy_progress import Progress
from deployfw.sandbox.aws.codedeploy_records import of_deployment, of_group
from deployfw.sandbox.aws.deployment_configs import (
    DEFAULT_FOR_PLATFORM,
    DeploymentConfig,
    predefined,
)
from deployfw.sandbox.aws.urls import url_module
from deployfw.sandbox.clock import MIN_POLL

ACTIVE = ("Created", "Queued", "InProgress", "Baking", "Ready")
NOT_ENABLED = "Automatic rollback is not enabled for this deployment."
NO_PREVIOUS_REVISION = "Automatic rollback did not run: the deployment group has no previous successful revision."

_ECS_BLUE_GREEN_DEFAULTS: dict[str, Any] = {
    "terminateBlueInstancesOnDeploymentSuccess": {
        "action": "TERMINATE",
        "terminationWaitTimeInMinutes": 0,
    },
    "deploymentReadyOption": {"actionOnTimeout": "CONTINUE_DEPLOYMENT", "waitTimeInMinutes": 0},
}


def _merge(defaults: dict[str, Any], given: dict[str, Any] | None) -> dict[str, Any]:
    merged = {k: (dict(v) if isinstance(v, dict) else v) for k, v in defaults.items()}
    for key, value in (given or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


class SandboxCodeDeployBackend(CodeDeployBackend):
    """moto's CodeDeploy plus lifecycles; swapped in by :mod:`.install`."""

    sandbox_response: type | None = None
    """Set by :mod:`.install` (the response class imports this module, not the other way round)."""

    def __init__(self, region_name: str, account_id: str) -> None:
        super().__init__(region_name, account_id)
        self.configs: dict[str, DeploymentConfig] = predefined()
        self.progress: dict[str, Progress] = {}

    @property
    def _url_module(self) -> Any:
        return url_module(moto_urls, self.sandbox_response)

    # -- deployment configs ------------------------------------------------------------

    def get_deployment_config(self, name: str) -> DeploymentConfig:
        if name not in self.configs:
            raise errors.config_missing(name)
        return self.configs[name]

    def create_deployment_config(
        self,
        name: str,
        compute_platform: str | None,
        minimum_healthy_hosts: dict[str, Any] | None,
        traffic_routing: dict[str, Any] | None,
    ) -> str:
        if name in self.configs:
            raise errors.CodeDeployError(
                "DeploymentConfigAlreadyExistsException",
                f"A deployment configuration with the name {name} already exists",
            )
        config = DeploymentConfig(
            name,
            compute_platform or "Server",
            traffic_routing or {"type": "AllAtOnce"},
            minimum_healthy_hosts,
            create_time=utcnow(),
        )
        self.configs[name] = config
        return config.config_id

    def delete_deployment_config(self, name: str) -> None:
        if name.startswith("CodeDeployDefault."):
            raise errors.CodeDeployError("InvalidOperationException", "Predefined configurations cannot be deleted")
        self.configs.pop(name, None)

    # -- deployment groups -------------------------------------------------------------

    def create_deployment_group(
        self, application_name: str, deployment_group_name: str, *args: Any, **kwargs: Any
    ) -> str:
        application = self.get_application(application_name)
        platform = application.compute_platform or "Server"
        config_name = kwargs.get("deployment_config_name") or DEFAULT_FOR_PLATFORM.get(platform)
        kwargs["deployment_config_name"] = config_name
        if config_name:
            self._config_for(platform, config_name)
        if platform == "ECS":
            kwargs["deployment_style"] = kwargs.get("deployment_style") or {
                "deploymentType": "BLUE_GREEN",
                "deploymentOption": "WITH_TRAFFIC_CONTROL",
            }
            kwargs["blue_green_deployment_configuration"] = _merge(
                _ECS_BLUE_GREEN_DEFAULTS, kwargs.get("blue_green_deployment_configuration")
            )
            codedeploy_ecs.validate_group(self, kwargs, str(config_name), current=None)
        kwargs["auto_rollback_configuration"] = kwargs.get("auto_rollback_configuration") or {
            "enabled": False,
            "events": [],
        }
        return super().create_deployment_group(application_name, deployment_group_name, *args, **kwargs)

    def _config_for(self, platform: str, name: str) -> DeploymentConfig:
        """The config, which must exist and be one of the group's compute platform (no EC2 config on ECS)."""
        config = self.get_deployment_config(name)
        if config.compute_platform != platform:
            raise errors.invalid_config_name(
                f"The deployment configuration {name} is for the {config.compute_platform} compute platform;"
                f" it cannot be used with a deployment group of the {platform} compute platform."
            )
        return config

    def update_deployment_group(self, application_name: str, current_name: str, changes: dict[str, Any]) -> None:
        """Validate the whole result first, then apply it: a refused update changes nothing (as in AWS)."""
        group = self.get_deployment_group(application_name, current_name)
        platform = group.application.compute_platform or "Server"
        new_name = changes.get("newDeploymentGroupName")
        if new_name and new_name != current_name and new_name in self.deployment_groups.get(application_name, {}):
            raise errors.CodeDeployError(
                "DeploymentGroupAlreadyExistsException",
                f"A deployment group named {new_name} already exists for application {application_name}",
            )
        config_name = changes.get("deploymentConfigName") or group.deployment_config_name
        if config_name:
            self._config_for(platform, str(config_name))
        if platform == "ECS":
            codedeploy_ecs.validate_group(
                self,
                {
                    "ecs_services": changes.get("ecsServices") or group.ecs_services,
                    "load_balancer_info": changes.get("loadBalancerInfo") or group.load_balancer_info,
                },
                str(config_name),
                current=(application_name, current_name),
            )
        self._apply_group_changes(group, changes)
        if new_name and new_name != current_name:
            groups = self.deployment_groups[application_name]
            groups[new_name] = groups.pop(current_name)
            group.deployment_group_name = new_name

    @staticmethod
    def _apply_group_changes(group: Any, changes: dict[str, Any]) -> None:
        attribute = {
            "deploymentConfigName": "deployment_config_name",
            "serviceRoleArn": "service_role_arn",
            "autoRollbackConfiguration": "auto_rollback_configuration",
            "deploymentStyle": "deployment_style",
            "loadBalancerInfo": "load_balancer_info",
            "ecsServices": "ecs_services",
            "ec2TagFilters": "ec2_tag_filters",
            "onPremisesInstanceTagFilters": "on_premises_instance_tag_filters",
            "autoScalingGroups": "auto_scaling_groups",
        }
        for key, attr in attribute.items():
            if changes.get(key) is not None:
                setattr(group, attr, changes[key])
        if changes.get("blueGreenDeploymentConfiguration") is not None:
            group.blue_green_deployment_configuration = _merge(
                group.blue_green_deployment_configuration,
                changes["blueGreenDeploymentConfiguration"],
            )

    def delete_deployment_group(self, application_name: str, name: str) -> None:
        self.get_deployment_group(application_name, name)
        del self.deployment_groups[application_name][name]

    def delete_application(self, application_name: str) -> None:
        self.get_application(application_name)
        self.applications.pop(application_name)
        self.deployment_groups.pop(application_name, None)

    # -- deployments -------------------------------------------------------------------

    def active_deployment(self, application_name: str, group_name: str) -> DeploymentInfo | None:
        for deployment in self.deployments.values():
            if (
                deployment.application_name == application_name
                and deployment.deployment_group_name == group_name
                and deployment.status in ACTIVE
            ):
                return deployment
        return None

    def create_deployment(
        self,
        application_name: str,
        deployment_group_name: str,
        revision: dict[str, Any],
        deployment_config_name: str | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> str:
        ctx = context.current()
        with ctx.lock:
            self.advance()
            group = self.get_deployment_group(application_name, deployment_group_name or "")
            active = self.active_deployment(application_name, deployment_group_name)
            if active is not None:
                raise errors.limit_exceeded(deployment_group_name, active.deployment_id)
            platform = group.application.compute_platform or "Server"
            config_name = deployment_config_name or group.deployment_config_name or DEFAULT_FOR_PLATFORM.get(platform)
            config = self._config_for(platform, str(config_name))
            if platform == "ECS":
                codedeploy_ecs.check_nlb_config(self, group, config.name)
            if not revision or not revision.get("revisionType"):
                raise errors.invalid_revision("The revision is missing or has no revisionType")
            deployment_id = super().create_deployment(
                application_name, deployment_group_name, revision, config.name, *args, **kwargs
            )
            deployment = self.deployments.pop(deployment_id)
            # AWS deployment ids look like d-XXXXXXXXX; some tools parse them.
            deployment.deployment_id = "d-" + uuid.uuid4().hex[:9].upper()
            self.deployments[deployment.deployment_id] = deployment
            of_deployment(deployment).previous_revision = of_group(group).last_successful_revision
            deployment.deployment_overview["Pending"] = 1
            progress = Progress(time.monotonic() + ctx.timings.deploy_step)
            progress.steps = config.shift_steps()
            progress.interval_minutes = config.interval_minutes()
            progress.module = ctx.registry.module_for_group(application_name, deployment_group_name)
            self.progress[deployment.deployment_id] = progress
            of_group(group).last_attempted = deployment
            return deployment.deployment_id

    def list_deployments(self, *args: Any, **kwargs: Any) -> list[str]:
        """Newest first, as CodeDeploy lists them."""
        with context.current().lock:
            self.advance()
            ids = super().list_deployments(*args, **kwargs)
            order = {d_id: n for n, d_id in enumerate(self.deployments)}
            return sorted(ids, key=lambda d_id: order.get(d_id, -1), reverse=True)

    def get_deployment(self, deployment_id: str) -> DeploymentInfo:
        with context.current().lock:
            self.advance()
            if deployment_id not in self.deployments:
                raise errors.deployment_missing(deployment_id)
            return self.deployments[deployment_id]

    def batch_get_deployments(self, deployment_ids: list[str]) -> list[DeploymentInfo]:
        with context.current().lock:
            self.advance()
            return super().batch_get_deployments(deployment_ids)

    def stop_deployment(self, deployment_id: str, auto_rollback: bool) -> tuple[str, str]:
        with context.current().lock:
            self.advance()
            deployment = self.get_deployment(deployment_id)
            if deployment.status not in ACTIVE:
                raise errors.already_completed(deployment_id)
            progress = self.progress[deployment_id]
            self._finish(
                deployment,
                "Stopped",
                {"code": "MANUAL_STOP", "message": "The deployment was stopped by request."},
                rollback=auto_rollback,
                reason="DEPLOYMENT_STOP_ON_REQUEST",
                progress=progress,
            )
            return "Succeeded", "Deployment stopped" + (" and rolled back" if auto_rollback else "")

    def continue_deployment(self, deployment_id: str, wait_type: str | None) -> None:
        with context.current().lock:
            deployment = self.get_deployment(deployment_id)
            if deployment.status not in ACTIVE:
                raise errors.already_completed(deployment_id)
            progress = self.progress.get(deployment_id)
            kind = wait_type or "READY_WAIT"
            if progress is None or (kind == "READY_WAIT" and deployment.status != "Ready"):
                raise errors.CodeDeployError(
                    "DeploymentIsNotInReadyStateException",
                    f"The deployment {deployment_id} is not in a ready state.",
                )
            progress.continued.add(kind)
            progress.due = time.monotonic()
            self.advance()

    def put_hook_status(self, deployment_id: str, execution_id: str, status: str) -> str:
        """PutLifecycleEventHookExecutionStatus: a hook's Lambda function reports Succeeded or Failed."""
        with context.current().lock:
            self.get_deployment(deployment_id)
            progress = self.progress.get(deployment_id)
            execution = progress.executions.get(execution_id) if progress else None
            if execution is None:
                raise errors.CodeDeployError(
                    "InvalidLifecycleEventHookExecutionIdException",
                    f"The lifecycle event hook execution ID {execution_id} is not valid.",
                )
            if execution.status in ("Succeeded", "Failed"):
                raise errors.CodeDeployError(
                    "LifecycleEventAlreadyCompletedException",
                    f"The lifecycle event {execution.event} has already completed.",
                )
            if status not in ("Succeeded", "Failed"):
                raise errors.CodeDeployError(
                    "InvalidLifecycleEventHookExecutionStatusException",
                    f"The lifecycle event hook execution status {status} is not valid.",
                )
            execution.status = status
            assert progress is not None
            progress.due = time.monotonic()
            self.advance()
            return execution_id

    def pending_hooks(self) -> list[dict[str, Any]]:
        """``GET /_sandbox/hooks``: hook executions waiting for their status."""
        rows = []
        for progress in self.progress.values():
            for execution in progress.executions.values():
                rows.append({
                    "deployment_id": execution.deployment_id,
                    "lifecycle_event": execution.event,
                    "function": execution.function,
                    "execution_id": execution.execution_id,
                    "status": execution.status,
                })  # fmt: skip
        return rows

    # -- progression ---------------------------------------------------------------------

    def advance(self) -> None:
        """Run every lifecycle step whose time has come (caller holds the sandbox lock).

        Each step sets when the next one is due: at once (the loop goes on), after a
        sandbox-clock wait, or after one poll while it waits for a condition.
        """
        now = time.monotonic()
        for deployment_id, progress in list(self.progress.items()):
            deployment = self.deployments.get(deployment_id)
            for _ in range(100):
                if deployment is None or deployment.status not in ACTIVE or progress.due > now:
                    break
                before = (progress.stage, progress.due)
                self._step(deployment, progress)
                if (progress.stage, progress.due) == before:
                    progress.due = now + MIN_POLL

    def sandbox_advance(self) -> None:
        self.advance()

    def _step(self, deployment: DeploymentInfo, progress: Progress) -> None:
        platform = deployment.application.compute_platform or "Server"
        lifecycle: Any = codedeploy_ecs if platform == "ECS" else codedeploy_server
        if progress.rollback_of is not None and platform == "ECS":
            self._rollback_step(deployment, progress)
            return
        if progress.stage == "start":
            deployment.status = "InProgress"
            deployment.start_time = utcnow()
            deployment.deployment_overview["Pending"] = 0
            deployment.deployment_overview["InProgress"] = 1
            progress.fail_health = context.current().faults.take_deploy(progress.module)
        failure = lifecycle.step(self, deployment, progress)
        if failure is not None:
            self._finish(
                deployment,
                "Failed",
                failure,
                rollback=self._auto_rollback(deployment),
                reason="DEPLOYMENT_FAILURE",
                progress=progress,
            )
        elif progress.stage == "done":
            self._finish(deployment, "Succeeded", None, rollback=False, reason="", progress=progress)

    def _auto_rollback(self, deployment: DeploymentInfo) -> bool:
        config = deployment.auto_rollback_configuration or (deployment.deployment_group.auto_rollback_configuration)
        return bool(config and config.get("enabled") and "DEPLOYMENT_FAILURE" in config.get("events", []))

    def _finish(
        self,
        deployment: DeploymentInfo,
        status: str,
        error: dict[str, str] | None,
        *,
        rollback: bool,
        reason: str,
        progress: Progress,
    ) -> None:
        platform = deployment.application.compute_platform or "Server"
        # Ended before its rollback starts: the rollback deployment begins when this one completes.
        deployment.complete_time = utcnow()
        overview = deployment.deployment_overview
        overview.update({"Pending": 0, "InProgress": 0, "Ready": 0})
        group = deployment.deployment_group
        if status == "Succeeded":
            overview["Succeeded"] = 1
            history = of_group(group)
            history.last_successful_revision = deployment.revision
            history.last_successful = deployment
        else:
            overview["Failed"] = 1
            of_deployment(deployment).error_information = error or {}
            progress.close_open_events("Failed")
            if platform == "ECS" and (rollback or status == "Failed"):
                codedeploy_ecs.restore(self, deployment, progress)
            if not (rollback and self._record_rollback(deployment, reason)):
                of_deployment(deployment).rollback_info = {
                    "rollbackMessage": NO_PREVIOUS_REVISION if rollback else NOT_ENABLED
                }
        if platform == "Server":
            codedeploy_server.finish(self, deployment, status)  # per-instance counts; stop what has not begun
        deployment.status = status
        progress.stage = "finished"

    def _rollback_step(self, rollback: DeploymentInfo, progress: Progress) -> None:
        """A rollback deployment runs for real: traffic back, then the replacement drained away."""
        if progress.stage == "reroute":
            progress.stage = "drain"
            progress.start_events(("BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"))
            progress.end("BeforeAllowTraffic")
            progress.end("AllowTraffic")
            progress.end("AfterAllowTraffic")
            progress.due = time.monotonic() + max(context.current().timings.deploy_step, MIN_POLL)
            return
        if progress.stage == "drain" and not codedeploy_ecs.replacement_gone(self, progress):
            progress.due = time.monotonic() + MIN_POLL
            return
        rollback.status = "Succeeded"
        rollback.complete_time = utcnow()
        rollback.deployment_overview.update({"InProgress": 0, "Succeeded": 1})
        progress.stage = "finished"

    def _record_rollback(self, failed: DeploymentInfo, reason: str) -> bool:
        """A rollback is a new deployment of the last good revision, as CodeDeploy does it; False when there is
        none to deploy (a Server group's first deployment)."""
        group = failed.deployment_group
        server = (failed.application.compute_platform or "Server") == "Server"
        last_good = of_group(group).last_successful_revision
        if server and last_good is None:
            return False
        rollback = DeploymentInfo(
            failed.application,
            group,
            last_good or failed.revision,
            failed.deployment_config_name,
            f"Rollback of {failed.deployment_id}",
            None,
            None,
            None,
            None,
            None,
            None,
            "codeDeployRollback",
        )
        rollback.deployment_id = "d-" + uuid.uuid4().hex[:9].upper()
        rollback.status = "InProgress"
        rollback.start_time = failed.complete_time or utcnow()
        rollback.deployment_overview["InProgress"] = 1
        progress = Progress(time.monotonic(), stage="start" if server else "reroute", rollback_of=failed.deployment_id)
        progress.ecs = dict(self.progress[failed.deployment_id].ecs) if failed.deployment_id in self.progress else {}
        self.progress[rollback.deployment_id] = progress
        of_deployment(rollback).previous_revision = failed.revision
        of_deployment(rollback).rollback_info = {
            "rollbackTriggeringDeploymentId": failed.deployment_id,
            "rollbackMessage": f"Rollback of deployment {failed.deployment_id} ({reason})",
        }
        self.deployments[rollback.deployment_id] = rollback
        after = "the last successful revision is deployed again" if server else "traffic is on the original task set"
        of_deployment(failed).rollback_info = {
            "rollbackDeploymentId": rollback.deployment_id,
            "rollbackMessage": (
                f"Deployment {failed.deployment_id} rolled back by {rollback.deployment_id} ({reason}); {after}."
            ),
        }
        return True
