"""CodeDeploy ECS blue/green (``ecs-bluegreen``) and its NLB variant (``ecs-nlb``).

One deploy, in order:

1. render and check the templates (:mod:`deployfw_aws.render`) - bad input stops
   here, before AWS is touched;
2. GetDeploymentGroup: its wait settings give the deadline, its service must be the
   module's, its last attempted deployment may be this run's own (a retried run);
3. RegisterTaskDefinition with the image by digest;
4. CreateDeployment with the AppSpec inline (content + sha256), the deployment config
   from modules.yaml, auto-rollback on failure and on stop, and a description that
   carries the run id. The call is made exactly once: when its answer is lost
   (timeout, reset, 5xx) the group's active deployments are searched for that run id
   before another attempt, because a blind retry would start a second deployment;
5. GetDeployment until a terminal state, polling soon and then less often up to a
   cap, with every change logged (and the traffic split, for canary/linear configs);
6. on failure, timeout or cancel: StopDeployment with auto-rollback. A deployment
   that rolled back is reported failed, always.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import yaml

from deployfw.aws.clients import Aws, AwsError, aws_for
from deployfw.backends import DeployOutcome, LiveCheck, ModuleJob, StageResult
from deployfw_aws import codedeploy_calls as calls
from deployfw_aws.deploy_common import (
    ECS_ALL_AT_ONCE,
    Target,
    Wait,
    minutes,
    target_of,
    task_definition_image,
)
from deployfw_aws.ecs_deployer import NO_RESOURCE, EcsDeployer, to_outcome
from deployfw_aws.render import (
    Rendered,
    needs_account_id,
    render_module,
)

if TYPE_CHECKING:
    from deployfw.config import Config, Module
    from deployfw.iam.needs import IamNeed, IamScope

MAX_WAIT_MINUTES = 360  # CodeDeploy's own cap on the ready and termination waits
# Minutes of traffic shifting of the predefined ECS configs (custom ones count 0).
SHIFT_MINUTES = {
    "CodeDeployDefault.ECSCanary10Percent5Minutes": 5,
    "CodeDeployDefault.ECSCanary10Percent15Minutes": 15,
    "CodeDeployDefault.ECSLinear10PercentEvery1Minutes": 10,
    "CodeDeployDefault.ECSLinear10PercentEvery3Minutes": 30,
}


class BlueGreenDeploy(EcsDeployer):
    """``ecs-bluegreen``: a CodeDeploy ECS deployment with canary, linear or all-at-once traffic."""

    backend_id = "ecs-bluegreen"


    # -- plan ------------------------------------------------------------------------------

    def steps(self, module: Module, config: Config) -> Sequence[str]:
        target = target_of(config, module)
        config_name = self._forced_config() or target.deployment_config or "the group's deployment config"
        wait = (
            f"{target.timeout_minutes:g} min" if target.timeout_minutes
            else "the group's ready + termination waits + traffic shifting + 10 min (30..360 min)"
        )
        return [
            f"render {target.taskdef} and {target.appspec} with the image by digest",
            f"register task definition from {target.taskdef}",
            f"create CodeDeploy deployment in {target.application}/{target.deployment_group} "
            f"with {config_name}",
            f"wait up to {wait}; stop and roll back on failure, timeout or cancel",
        ]

    controller_type = "CODE_DEPLOY"

    def _live_checks(self, aws: Aws, target: Target) -> list[LiveCheck]:
        """The CodeDeploy application and group (deploying this service) and the traffic they shift."""
        from deployfw_aws import live_checks as live

        rows, group = live.deployment_group(aws, target.application, target.deployment_group, target.cluster,
                                            target.service)  # fmt: skip
        if group is not None:
            rows += live.traffic(aws, group, self.backend_id, self._forced_config() or target.deployment_config)
        return rows

    # -- IAM ---------------------------------------------------------------------------------

    def _iam_needs(
        self, scope: IamScope, target: Target, family_arn: str, service_arn: str, roles: tuple[str, ...]
    ) -> list[IamNeed]:
        """CodeDeploy: read the group, create and follow the deployment, find a killed run's one, stop it.

        ``pipeline``: what CodePipeline's "Amazon ECS (Blue/Green)" action needs to deploy the files
        ``run --stop-after push --artifacts-dir`` writes (AWS's CodePipeline service-role reference).
        """
        from deployfw.iam.needs import IamNeed, passed_to
        from deployfw_aws.migrate import migration_needs

        group = scope.arn("codedeploy", f"deploymentgroup:{target.application}/{target.deployment_group}")
        application = scope.arn("codedeploy", f"application:{target.application}")
        configs = scope.arn("codedeploy", f"deploymentconfig:{target.deployment_config or '*'}")
        where = f"{target.application}/{target.deployment_group}"
        return [
            IamNeed("CodeDeployDeploy",
                    ("codedeploy:CreateDeployment", "codedeploy:GetDeployment", "codedeploy:GetDeploymentGroup",
                     "codedeploy:ListDeployments"),
                    (group,), f"create and follow deployments in {where}, find one a killed run left"),
            IamNeed("CodeDeployStop", ("codedeploy:StopDeployment",), ("*",),
                    "stop a deployment with rollback on cancel or timeout", wildcard=NO_RESOURCE),
            IamNeed("CodeDeployTraffic", ("codedeploy:GetDeploymentTarget",), ("*",),
                    "log the traffic split of canary and linear deployments", wildcard=NO_RESOURCE,
                    optional="canary and linear deployments are followed without their traffic split"),
            IamNeed("PipelineCodeDeploy",
                    ("codedeploy:CreateDeployment", "codedeploy:GetDeployment"), (group,),
                    f"CodePipeline's ECS blue/green action deploys to {where}", principal="pipeline"),
            IamNeed("PipelineCodeDeployRevision",
                    ("codedeploy:GetApplication", "codedeploy:GetApplicationRevision",
                     "codedeploy:RegisterApplicationRevision"),
                    (application,), "CodePipeline registers the AppSpec revision", principal="pipeline"),
            IamNeed("PipelineCodeDeployConfig", ("codedeploy:GetDeploymentConfig",), (configs,),
                    "CodePipeline reads the deployment config", principal="pipeline"),
            IamNeed("PipelineEcsRegister", ("ecs:RegisterTaskDefinition",), (family_arn,),
                    "CodePipeline registers taskdef.json", principal="pipeline"),
            *([IamNeed("PipelinePassTaskRoles", ("iam:PassRole",), roles, "CodePipeline hands the task roles to ECS",
                       principal="pipeline", conditions=passed_to("ecs-tasks.amazonaws.com"))] if roles else []),
            *migration_needs(scope, service_arn),  # `deployfw migrate --to ecs-native` (setup)
        ]

    # -- run -------------------------------------------------------------------------------

    def _target_details(self, target: Target) -> dict[str, Any]:
        return {
            "application": target.application,
            "deployment_group": target.deployment_group,
            "deployment_config": None,
            "error_information": None,
        }

    def _deploy(
        self,
        job: ModuleJob,
        aws: Aws,
        target: Target,
        rendered: Rendered | None,
        details: dict[str, Any],
        registered: str | None = None,
    ) -> StageResult:
        """Create and follow one deployment; ``registered`` (a rollback) skips RegisterTaskDefinition."""
        assert rendered is not None  # the AppSpec is rendered for a redeploy too
        group = aws.call("codedeploy", "get_deployment_group", applicationName=target.application,
                         deploymentGroupName=target.deployment_group)["deploymentGroupInfo"]
        problem = self._check_group(group, target)
        if problem:
            return StageResult(False, problem, details)
        config_name = self._forced_config() or target.deployment_config or group.get("deploymentConfigName")
        details["deployment_config"] = config_name
        adopted = self._adopt(job, aws, group)
        if adopted is not None:
            deployment_id, taskdef_arn = adopted
            job.log(f"resuming deployment {deployment_id}, which this run ({job.ctx.run_id}) already started")
        else:
            busy = self._wait_for_others(job, aws, target, group)
            if busy is not None:
                return StageResult(False, busy, details)
            if job.ctx.cancel.is_set():
                return StageResult(False, "cancelled before deploying; nothing changed", details)
            if registered:
                taskdef_arn = registered
            else:
                taskdef_arn = aws.call("ecs", "register_task_definition", **rendered.taskdef)["taskDefinition"][
                    "taskDefinitionArn"
                ]
                job.log(f"registered task definition {taskdef_arn.rsplit('/', 1)[-1]} ({rendered.image_uri})")
            details["task_definition"] = taskdef_arn
            job.progress(task_definition=taskdef_arn)
            if job.ctx.cancel.is_set():
                return StageResult(False, "cancelled before deploying; the service was not changed", details)
            deployment_id = self._create(job, aws, target, rendered, taskdef_arn, config_name)
        details.update(id=deployment_id, task_definition=taskdef_arn)
        # Recorded at once: a run killed from here on leaves a deployment its successor can find.
        job.progress(**{k: v for k, v in (("deployment_id", deployment_id), ("task_definition", taskdef_arn)) if v})
        seconds = self._deadline_seconds(target, group, config_name)
        job.log(f"deployment {deployment_id} in {target.application}/{target.deployment_group} with "
                f"{config_name}; waiting up to {minutes(seconds)}")
        return self._track(job, aws, target, deployment_id, config_name, seconds, details)

    # -- recovery, rollback, status ---------------------------------------------------------

    def recover(self, job: ModuleJob, deployment_id: str) -> DeployOutcome:
        """Conclude a deployment a killed run left behind, without ever starting a second one.

        An active deployment is followed with deploy's own deadline and backoff (cancel or
        timeout stop it with rollback); a finished one is read. The answer is the state
        store outcome: "succeeded", "rolled_back", "failed", or "abandoned" when CodeDeploy no
        longer knows the deployment.
        """
        target = target_of(job.ctx.config, job.module)
        details = self._details(target)
        details["id"] = deployment_id
        aws = aws_for(job.ctx)
        try:
            info = aws.call("codedeploy", "get_deployment", deploymentId=deployment_id)["deploymentInfo"]
        except AwsError as exc:
            if exc.code == "DeploymentDoesNotExistException":
                message = f"deployment {deployment_id} no longer exists in CodeDeploy"
                return DeployOutcome(False, message, deployment_id, gone=True)
            raise
        details["task_definition"] = _appspec_task_definition(info)
        if info["status"] in calls.TERMINAL:
            result = self._outcome(job, info, details)
        else:
            group = aws.call("codedeploy", "get_deployment_group", applicationName=target.application,
                             deploymentGroupName=target.deployment_group)["deploymentGroupInfo"]
            config_name = info.get("deploymentConfigName") or group.get("deploymentConfigName")
            seconds = self._deadline_seconds(target, group, config_name)
            job.log(f"deployment {deployment_id} is {info['status']}; waiting up to {minutes(seconds)}")
            result = self._track(job, aws, target, deployment_id, config_name, seconds, details)
        return to_outcome(result)

    def locate(self, job: ModuleJob, run_id: str, task_definition: str | None) -> str | None:
        """The deployment run ``run_id`` created but was killed before recording (its description names the run).

        Nothing can exist before the task definition was registered (and recorded); after that, the
        run's deployment is the group's last attempt or one of its active deployments.
        """
        if not task_definition:
            return None
        target = target_of(job.ctx.config, job.module)
        aws = aws_for(job.ctx)
        group = calls.get_group(aws, target.application, target.deployment_group)
        last = (group.get("lastAttemptedDeployment") or {}).get("deploymentId")
        return calls.find_marked(aws, target.application, target.deployment_group,
                                 calls.marker_of(run_id, job.module.name), last_attempt=last)  # fmt: skip

    def _redeploy(
        self, job: ModuleJob, aws: Aws, target: Target, arn: str, image: str, details: dict[str, Any]
    ) -> StageResult:
        """The AppSpec is the module's template around the recorded ARN; the rest is deploy's."""
        config, module = job.ctx.config, job.module
        account = aws.account_id() if needs_account_id(config, module) else None
        rendered = render_module(config, module, image, account_id=account, region=config.region or job.ctx.region)
        return self._deploy(job, aws, target, rendered, details, registered=arn)

    def _describe_live(self, aws: Aws, target: Target, service: dict[str, Any], live: dict[str, Any]) -> None:
        """What runs now: the service's PRIMARY task set's task definition and image, and the last deployment."""
        primary = next((s for s in service.get("taskSets") or [] if s.get("status") == "PRIMARY"), None)
        arn = primary.get("taskDefinition") if primary else service.get("taskDefinition")
        image, _ = task_definition_image(aws, arn, target.container)
        live.update(exists=True, task_definition=arn, image=image, running=service.get("runningCount"),
                    desired=service.get("desiredCount"))
        try:
            group = aws.call("codedeploy", "get_deployment_group", applicationName=target.application,
                             deploymentGroupName=target.deployment_group)["deploymentGroupInfo"]
        except AwsError:
            group = {}
        last = group.get("lastAttemptedDeployment") or {}
        live["last_deployment"] = {"id": last.get("deploymentId"), "status": last.get("status")} if last else None
        live["in_progress"] = last.get("status") in calls.ACTIVE

    # -- hooks for the NLB variant ---------------------------------------------------------

    def _forced_config(self) -> str | None:
        return None

    def _check_group(self, group: dict[str, Any], target: Target) -> str | None:
        """The group must deploy the module's service (a copy-pasted group name deploys someone else's)."""
        services = group.get("ecsServices") or []
        wanted = (target.cluster.rsplit("/", 1)[-1], target.service.rsplit("/", 1)[-1])
        got = [(s.get("clusterName", ""), s.get("serviceName", "")) for s in services]
        if got and wanted not in got:
            where = ", ".join(f"{c}/{s}" for c, s in got)
            return (f"deployment group {target.application}/{target.deployment_group} deploys {where}, but "
                    f"modules.yaml says {wanted[0]}/{wanted[1]}")
        return None

    # -- creating exactly one deployment ----------------------------------------------------

    def _adopt(self, job: ModuleJob, aws: Aws, group: dict[str, Any]) -> tuple[str, str | None] | None:
        """This run's deployment when the group's latest attempt is ours, running or done (a retried run)."""
        last = group.get("lastAttemptedDeployment") or {}
        if last.get("status") not in (*calls.ACTIVE, "Succeeded") or not last.get("deploymentId"):
            return None  # a failed or stopped attempt is retried with a new deployment
        info = aws.call("codedeploy", "get_deployment", deploymentId=last["deploymentId"])["deploymentInfo"]
        if calls.marker(job.ctx, job.module.name) not in (info.get("description") or ""):
            return None
        return info["deploymentId"], _appspec_task_definition(info)

    def _wait_for_others(self, job: ModuleJob, aws: Aws, target: Target, group: dict[str, Any]) -> str | None:
        """Never two deployments of one service: let an active deployment someone else started finish first.

        Costs no call in the usual case (the group, already read, names its last attempt);
        returns why this deploy must not go ahead, or None.
        """
        wait = self.wait(self._deadline_seconds(target, group, group.get("deploymentConfigName")), job.ctx.cancel)
        return calls.wait_for_others(aws, job, f"{target.application}/{target.deployment_group}", group, wait)

    def _create(
        self, job: ModuleJob, aws: Aws, target: Target, rendered: Rendered, taskdef_arn: str, config_name: str | None
    ) -> str:
        content = rendered.appspec_text(taskdef_arn) or ""
        params: dict[str, Any] = {
            "applicationName": target.application,
            "deploymentGroupName": target.deployment_group,
            "revision": {
                "revisionType": "AppSpecContent",
                "appSpecContent": {"content": content, "sha256": hashlib.sha256(content.encode()).hexdigest()},
            },
            "description": f"{calls.marker(job.ctx, job.module.name)}: {rendered.image_uri}",
            "autoRollbackConfiguration": {"enabled": True, "events": calls.ROLLBACK_EVENTS},
        }
        if config_name and (target.deployment_config or self._forced_config()):
            params["deploymentConfigName"] = config_name
        try:
            return calls.create_once(aws, params, mark=calls.marker(job.ctx, job.module.name), log=job.log,
                                     cancel=job.ctx.cancel, clock=self._clock, sleep=self._sleep,
                                     backoff=self._backoff)  # fmt: skip
        except AwsError as exc:
            if exc.code == "InvalidDeploymentConfigNameException" and "Network Load Balancer" in exc.detail:
                raise AwsError(exc.service, exc.operation, f"{exc.detail} (behind an NLB the ecs-native "
                               "backend deploys canary and linear)", exc.code) from None  # fmt: skip
            raise

    # -- waiting ---------------------------------------------------------------------------

    def _deadline_seconds(self, target: Target, group: dict[str, Any], config_name: str | None) -> float:
        """``timeout_minutes``, else like awscli: the group's ready + termination waits + shifting + 10 min."""
        if target.timeout_minutes:
            return float(target.timeout_minutes) * 60
        bg = group.get("blueGreenDeploymentConfiguration") or {}
        ready = (bg.get("deploymentReadyOption") or {}).get("waitTimeInMinutes") or 0
        termination = (bg.get("terminateBlueInstancesOnDeploymentSuccess") or {}).get(
            "terminationWaitTimeInMinutes"
        ) or 0
        shifting = SHIFT_MINUTES.get(config_name or "", 0)
        return float(min(MAX_WAIT_MINUTES, max(30, ready + termination + shifting + 10))) * 60

    def _track(
        self,
        job: ModuleJob,
        aws: Aws,
        target: Target,
        deployment_id: str,
        config_name: str | None,
        seconds: float,
        details: dict[str, Any],
    ) -> StageResult:
        wait = Wait(seconds, cancel=job.ctx.cancel, sleep=self._sleep, clock=self._clock, backoff=self._backoff)
        shifting = config_name not in (None, ECS_ALL_AT_ONCE)
        status: str | None = None
        messages = 0
        split: str | None = None
        told: list[str] = []
        while True:
            wait.pause()  # first: no deployment is over the moment it is created
            info = aws.call("codedeploy", "get_deployment", deploymentId=deployment_id)["deploymentInfo"]
            for message in (info.get("deploymentStatusMessages") or [])[messages:]:
                job.log(f"deployment {deployment_id}: {message}")
                messages += 1
            if info["status"] != status:
                status = info["status"]
                job.log(f"deployment {deployment_id}: {status}")
                job.mark("status", status=status)
                wait.changed()
            if status in calls.TERMINAL:
                return self._outcome(job, info, details)
            if shifting and status == "InProgress":
                now, percent = self._traffic(job, aws, target, deployment_id, told)
                if now and now != split:
                    split = now
                    job.log(f"deployment {deployment_id}: traffic {now}")
                    job.mark("traffic", percent=percent, split=now)
            if job.ctx.cancel.is_set():
                return self._stop(job, aws, deployment_id, details, "cancelled")
            if wait.expired:
                return self._stop(job, aws, deployment_id, details, f"timed out after {minutes(seconds)}")

    def _traffic(
        self, job: ModuleJob, aws: Aws, target: Target, deployment_id: str, told: list[str]
    ) -> tuple[str | None, float | None]:
        """The current split, e.g. ``blue 90% / green 10%``, and the replacement's (green) share of it."""
        try:
            found = aws.call("codedeploy", "get_deployment_target", deploymentId=deployment_id,
                             targetId=f"{target.cluster.rsplit('/', 1)[-1]}:{target.service.rsplit('/', 1)[-1]}")
        except AwsError as exc:
            if exc.denial is not None and not told:
                told.append(exc.detail)  # once per deployment: why the split is not shown, and the fix
                job.log(f"traffic split not shown: {exc.detail}")
            return None, None  # progress display only; the deployment's own status decides
        sets = ((found.get("deploymentTarget") or {}).get("ecsTarget") or {}).get("taskSetsInfo") or []
        parts = [f"{s.get('taskSetLabel', '?').lower()} {float(s.get('trafficWeight', 0)):g}%" for s in sets]
        green = next((float(s.get("trafficWeight", 0)) for s in sets if s.get("taskSetLabel") == "Green"), None)
        return " / ".join(parts) or None, green

    def _stop(self, job: ModuleJob, aws: Aws, deployment_id: str, details: dict[str, Any], reason: str) -> StageResult:
        follow = self.wait(calls.STOP_WAIT_SECONDS, calls.never())
        info, error = calls.stop_and_follow(aws, job, deployment_id, follow, reason)
        if info is None:
            details["status"] = "Unknown"
            return StageResult(False, error, details)
        if info["status"] == "Succeeded":  # it finished before the stop arrived: say so
            result = self._outcome(job, info, details)
            result.ok = False
            result.error = f"{reason} after deployment {deployment_id} had already succeeded; it stays deployed"
            details["deployed"] = True  # the state store records it as deployed: the next run must not repeat it
            return result
        return self._outcome(job, info, details, reason=reason, stop_requested=True)

    def _outcome(
        self,
        job: ModuleJob,
        info: dict[str, Any],
        details: dict[str, Any],
        *,
        reason: str | None = None,
        stop_requested: bool = False,
    ) -> StageResult:
        status = info["status"]
        error = info.get("errorInformation") or None
        rollback = info.get("rollbackInfo") or {}
        rolled_back = bool(rollback.get("rollbackDeploymentId")) or (stop_requested and status == "Stopped")
        details.update(status=status, error_information=error, rolled_back=rolled_back)
        if rollback.get("rollbackDeploymentId"):
            details["rollback_deployment_id"] = rollback["rollbackDeploymentId"]
            job.mark("rolled_back", deployment=rollback["rollbackDeploymentId"])
        if status == "Succeeded" and reason is None:
            job.log(f"deployment {info['deploymentId']} succeeded")
            return StageResult(True, None, details)
        parts = [reason] if reason else []
        if error:
            parts.append(f"{error.get('code', 'ERROR')}: {error.get('message', '')}".strip())
        if not parts:
            parts.append(f"deployment {info['deploymentId']} ended {status}")
        if rolled_back:
            parts.append("rolled back; traffic is on the original task set")
        message = "; ".join(parts)
        job.log(f"deployment {info['deploymentId']} {status}: {message}")
        return StageResult(False, message, details)


class NlbDeploy(BlueGreenDeploy):
    """``ecs-nlb``: the same deployment behind a Network Load Balancer - all at once, nothing else."""

    backend_id = "ecs-nlb"

    def _forced_config(self) -> str | None:
        return ECS_ALL_AT_ONCE

    def _check_group(self, group: dict[str, Any], target: Target) -> str | None:
        configured = group.get("deploymentConfigName")
        if configured and configured != ECS_ALL_AT_ONCE:
            return (f"deployment group {target.application}/{target.deployment_group} uses {configured}; behind a "
                    f"Network Load Balancer CodeDeploy accepts only {ECS_ALL_AT_ONCE} (the ecs-native backend "
                    "deploys canary and linear behind an NLB)")
        return super()._check_group(group, target)


def _appspec_task_definition(info: dict[str, Any]) -> str | None:
    """The task definition an existing deployment's inline AppSpec names."""
    content = ((info.get("revision") or {}).get("appSpecContent") or {}).get("content")
    try:
        doc = yaml.safe_load(content or "")
        for resource in doc.get("Resources") or []:
            for value in resource.values():
                return str(value["Properties"]["TaskDefinition"])
    except (yaml.YAMLError, AttributeError, KeyError, TypeError):
        pass
    return None
