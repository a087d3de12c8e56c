"""CodeDeploy response handlers: moto's, plus the operations and fields it lacks.

moto dispatches by operation name to methods of the response class, so the missing
operations (StopDeployment, deployment configs, targets, UpdateDeploymentGroup...)
are simply methods here, and the serialisers are extended with the fields tools
read (errorInformation, rollbackInfo, previousRevision, lastSuccessfulDeployment).
"""

from __future__ import annotations

from typing import Any

from moto.codedeploy import responses as moto_responses
from moto.codedeploy.responses import CodeDeployResponse
from moto.core.responses import ActionResult, EmptyResult

from deployfw.sandbox.aws import codedeploy_errors as errors
from deployfw.sandbox.aws.codedeploy import SandboxCodeDeployBackend
from deployfw.sandbox.aws.codedeploy_ecs import target_info
from deployfw.sandbox.aws.codedeploy_records import of_deployment, of_group
from deployfw.sandbox.aws.codedeploy_server_api import ServerResponses, is_server


def _deployment_info(deployment: Any) -> dict[str, Any]:
    info = moto_responses._deployment_info(deployment)
    record = of_deployment(deployment)
    info["errorInformation"] = record.error_information or None
    info["rollbackInfo"] = record.rollback_info or None
    info["previousRevision"] = record.previous_revision or None
    for key in (
        "startTime",
        "completeTime",
        "errorInformation",
        "rollbackInfo",
        "previousRevision",
        "targetInstances",
        "overrideAlarmConfiguration",
    ):
        if info.get(key) in (None, {}):
            info.pop(key, None)
    return info


def _summary(deployment: Any) -> dict[str, Any] | None:
    if deployment is None:
        return None
    return {
        "deploymentId": deployment.deployment_id,
        "status": deployment.status,
        "endTime": deployment.complete_time,
        "createTime": deployment.create_time,
    }


def _group_info(group: Any) -> dict[str, Any]:
    info = moto_responses._deployment_group_info(group)
    history = of_group(group)
    info["lastSuccessfulDeployment"] = _summary(history.last_successful)
    info["lastAttemptedDeployment"] = _summary(history.last_attempted)
    info["targetRevision"] = history.last_successful_revision
    alarm = group.alarm_configuration
    info["alarmConfiguration"] = alarm if isinstance(alarm, dict) else {"enabled": False, "alarms": []}
    return {k: v for k, v in info.items() if v not in (None, {})}


class SandboxCodeDeployResponse(ServerResponses, CodeDeployResponse):
    """Routes to :class:`SandboxCodeDeployBackend` and serves the added operations."""

    @property
    def backend(self) -> SandboxCodeDeployBackend:
        return self.codedeploy_backend  # type: ignore[return-value]

    # -- richer reads ----------------------------------------------------------------------

    def get_deployment(self) -> ActionResult:
        deployment = self.backend.get_deployment(self._get_param("deploymentId"))
        return ActionResult({"deploymentInfo": _deployment_info(deployment)})

    def batch_get_deployments(self) -> ActionResult:
        deployments = self.backend.batch_get_deployments(self._get_param("deploymentIds") or [])
        return ActionResult({"deploymentsInfo": [_deployment_info(d) for d in deployments]})

    def get_deployment_group(self) -> ActionResult:
        group = self.backend.get_deployment_group(
            self._get_param("applicationName"), self._get_param("deploymentGroupName")
        )
        return ActionResult({"deploymentGroupInfo": _group_info(group)})

    def batch_get_deployment_groups(self) -> ActionResult:
        app = self._get_param("applicationName")
        infos, missing = [], []
        for name in self._get_param("deploymentGroupNames") or []:
            try:
                infos.append(_group_info(self.backend.get_deployment_group(app, name)))
            except Exception:
                missing.append(name)
        result: dict[str, Any] = {"deploymentGroupsInfo": infos}
        if missing:
            result["errorMessage"] = f"Deployment groups not found: {', '.join(missing)}"
        return ActionResult(result)

    # -- added operations ------------------------------------------------------------------

    def stop_deployment(self) -> ActionResult:
        status, message = self.backend.stop_deployment(
            self._get_param("deploymentId"), bool(self._get_param("autoRollbackEnabled"))
        )
        return ActionResult({"status": status, "statusMessage": message})

    def continue_deployment(self) -> EmptyResult:
        self.backend.continue_deployment(self._get_param("deploymentId"), self._get_param("deploymentWaitType"))
        return EmptyResult()

    def get_deployment_config(self) -> ActionResult:
        config = self.backend.get_deployment_config(self._get_param("deploymentConfigName"))
        return ActionResult({"deploymentConfigInfo": config.info()})

    def list_deployment_configs(self) -> ActionResult:
        return ActionResult({"deploymentConfigsList": sorted(self.backend.configs)})

    def create_deployment_config(self) -> ActionResult:
        config_id = self.backend.create_deployment_config(
            self._get_param("deploymentConfigName"),
            self._get_param("computePlatform"),
            self._get_param("minimumHealthyHosts"),
            self._get_param("trafficRoutingConfig"),
        )
        return ActionResult({"deploymentConfigId": config_id})

    def delete_deployment_config(self) -> EmptyResult:
        self.backend.delete_deployment_config(self._get_param("deploymentConfigName"))
        return EmptyResult()

    def update_deployment_group(self) -> ActionResult:
        params = self._get_params()
        self.backend.update_deployment_group(params["applicationName"], params["currentDeploymentGroupName"], params)
        return ActionResult({"hooksNotCleanedUp": []})

    def delete_deployment_group(self) -> ActionResult:
        self.backend.delete_deployment_group(self._get_param("applicationName"), self._get_param("deploymentGroupName"))
        return ActionResult({"hooksNotCleanedUp": []})

    def delete_application(self) -> EmptyResult:
        self.backend.delete_application(self._get_param("applicationName"))
        return EmptyResult()

    def list_deployment_targets(self) -> ActionResult:
        deployment = self.backend.get_deployment(self._get_param("deploymentId"))
        if is_server(deployment):
            return ActionResult({"targetIds": self._server_target_ids(deployment)})
        return ActionResult({"targetIds": [self._target(deployment)["ecsTarget"]["targetId"]]})

    def get_deployment_target(self) -> ActionResult:
        deployment = self.backend.get_deployment(self._get_param("deploymentId"))
        if is_server(deployment):
            return ActionResult({"deploymentTarget": self._server_target(deployment, self._get_param("targetId"))})
        return ActionResult({"deploymentTarget": self._target(deployment)})

    def batch_get_deployment_targets(self) -> ActionResult:
        deployment = self.backend.get_deployment(self._get_param("deploymentId"))
        if is_server(deployment):
            ids = self._get_param("targetIds") or []
            if len(ids) > 25:
                raise errors.CodeDeployError("DeploymentTargetListSizeExceededException",
                                             "The maximum number of targets that can be requested is 25.")  # fmt: skip
            return ActionResult({"deploymentTargets": [self._server_target(deployment, t) for t in ids]})
        return ActionResult({"deploymentTargets": [self._target(deployment)]})

    def put_lifecycle_event_hook_execution_status(self) -> ActionResult:
        execution = self.backend.put_hook_status(
            self._get_param("deploymentId"), self._get_param("lifecycleEventHookExecutionId"), self._get_param("status")
        )
        return ActionResult({"lifecycleEventHookExecutionId": execution})

    def _target(self, deployment: Any) -> dict[str, Any]:
        if (deployment.application.compute_platform or "Server") != "ECS":
            raise errors.CodeDeployError(
                "InstanceDoesNotExistException",
                "The sandbox has no instances for Server deployments",
            )
        return target_info(
            deployment,
            self.backend.progress.get(deployment.deployment_id),
            self.backend.region_name,
            self.backend.account_id,
        )
