"""``ecs-native``: blue/green, linear and canary deployments that ECS runs itself.

Since July 2025 the ECS deployment controller shifts traffic itself (``deploymentConfiguration
.strategy`` BLUE_GREEN, LINEAR or CANARY, with bake times and alarms); AWS's ECS guide now
recommends it over CodeDeploy. One deploy, in order:

1. render and check the task definition (:mod:`deployfw_aws.render`) and the strategy's
   numbers (:mod:`deployfw_aws.native_settings`) - bad input stops here, before AWS;
2. DescribeServices, and the live checks of :mod:`deployfw_aws.native_checks` (ECS
   controller, alternate target group, rules forwarding to both groups, role) - a service that
   cannot take the strategy fails here with its fix, unchanged; a service deployment still in
   progress (started elsewhere) is waited for, never overlapped;
3. RegisterTaskDefinition with the image by digest, tagged with the run id (``deployfw:run``);
4. UpdateService with the task definition and the deploymentConfiguration of the strategy -
   made once: when its answer is lost, the deployment it may have started is looked for first
   (ListServiceDeployments since the call, matched by the task definition of its target
   service revision);
5. follow that service deployment (:mod:`deployfw_aws.native_follow`) to SUCCESSFUL, or to a
   rollback or stop, which is a failure; on cancel or timeout StopServiceDeployment(ROLLBACK).

A service deployment carries no description or tag of its own. What ties one to a run is its
target service revision's task definition: registered by that run (and tagged with its id),
recorded in the state store before UpdateService, found again by :meth:`NativeDeploy.locate`
after a kill.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from deployfw.aws.clients import RETRYABLE_CODES, Aws, AwsError, aws_for
from deployfw.backends import DeployOutcome, LiveCheck, ModuleJob, StageResult
from deployfw.errors import ExternalError, Problem
from deployfw_aws.deploy_common import Target, Wait, describe_service, minutes, short_arn, target_of
from deployfw_aws.deploy_common import task_definition_image as image_of
from deployfw_aws.ecs_deployer import EcsDeployer, to_outcome
from deployfw_aws.native_checks import check
from deployfw_aws.native_follow import ONGOING, Followed, Follower, describe
from deployfw_aws.native_settings import NativeSettings, static_problems, steps_text
from deployfw_aws.render import Rendered

if TYPE_CHECKING:
    from deployfw.config import Config, Module
    from deployfw.iam.needs import IamNeed, IamScope

MIN_WAIT_MINUTES, MAX_WAIT_MINUTES, MARGIN_MINUTES = 30.0, 360.0, 15.0
RUN_TAG = "deployfw:run"
MODULE_TAG = "deployfw:module"
LOOKBACK = dt.timedelta(minutes=2)  # clock skew allowance when looking for a deployment by its creation time


def settings_of(module: Module) -> NativeSettings:
    return NativeSettings.of(module.deploy.options if module.deploy else {})


class NativeDeploy(EcsDeployer):
    """UpdateService with an ECS-native strategy, followed through DescribeServiceDeployments."""

    backend_id = "ecs-native"

    # -- plan ------------------------------------------------------------------------------

    def preflight(self, module: Module, config: Config) -> Sequence[Problem]:
        return [*super().preflight(module, config), *static_problems(config, module, settings_of(module))]

    def steps(self, module: Module, config: Config) -> Sequence[str]:
        target = target_of(config, module)
        settings = settings_of(module)
        limits = f"{MIN_WAIT_MINUTES:g}..{MAX_WAIT_MINUTES:g} min"
        wait = (
            f"{target.timeout_minutes:g} min"
            if target.timeout_minutes
            else f"the strategy's waits + {MARGIN_MINUTES:g} min ({limits})"
        )
        return [
            f"render {target.taskdef} with the image by digest",
            f"register task definition from {target.taskdef} (tagged {RUN_TAG})",
            f"update service {target.cluster}/{target.service} (ECS controller) to it, strategy {settings.strategy}",
            *steps_text(settings),
            f"follow the service deployment up to {wait}; a rollback or stop is a failure; "
            "stop it with rollback on cancel or timeout",
        ]

    def live_checks(self, job: ModuleJob) -> list[LiveCheck]:
        """Cluster and service (as every ECS backend), then the service against what the strategy needs:
        its controller (for CODE_DEPLOY the fix is ``deployfw migrate``), alternate target group, listener
        rules and infrastructure role (read-only; ``plan`` and ``deployfw doctor`` show them)."""
        from deployfw_aws import live_checks as live

        target = target_of(job.ctx.config, job.module)
        aws = aws_for(job.ctx)
        rows = [live.cluster(aws, target.cluster)]
        row, service = live.service(aws, target.cluster, target.service)
        rows.append(row)
        if service is None:
            return rows
        # A listener rule that cannot be read is a failed row of its own (check() catches the AwsError).
        findings, _ = check(aws, target, settings_of(job.module), service, job.module.name)
        return [*rows, *(f.row() for f in findings)]

    # -- IAM ---------------------------------------------------------------------------------

    def _iam_needs(
        self, scope: IamScope, target: Target, family_arn: str, service_arn: str, roles: tuple[str, ...]
    ) -> list[IamNeed]:
        """UpdateService with the strategy; follow, find (after a kill) and stop its service deployment.

        The task definition is registered with tags (the run that registered it), which ECS
        authorises as ``ecs:TagResource`` with ``ecs:CreateAction``. The listener rules are read
        before the update (the service's rules must forward to both target groups); ECS itself moves
        them, as the service's infrastructure role, so the deploying principal needs no ELB write.
        """
        from deployfw.iam.needs import IamNeed, passed_to
        from deployfw_aws.ecs_deployer import NO_RESOURCE

        where = f"{target.cluster}/{target.service}"
        deployments = scope.arn("ecs", f"service-deployment/{target.cluster}/{target.service}/*")
        revisions = scope.arn("ecs", f"service-revision/{target.cluster}/{target.service}/*")
        return [
            IamNeed("EcsNativeUpdate", ("ecs:UpdateService", "ecs:ListServiceDeployments"), (service_arn,),
                    f"update {where} with the deployment strategy; list its service deployments to find the one "
                    "an update started when its answer was lost, or a killed run left"),
            IamNeed("EcsTagTaskDefinition", ("ecs:TagResource",), (family_arn,),
                    f"tag the registered task definition with the run id ({RUN_TAG}), found again after a kill",
                    conditions={"StringEquals": {"ecs:CreateAction": "RegisterTaskDefinition"}}),
            IamNeed("EcsServiceDeployments", ("ecs:DescribeServiceDeployments", "ecs:StopServiceDeployment"),
                    (deployments,), "follow the service deployment; stop it with rollback on cancel or timeout"),
            IamNeed("EcsServiceRevisions", ("ecs:DescribeServiceRevisions",), (revisions,),
                    "check that the deployment UpdateService started puts this run's task definition in place"),
            IamNeed("ElbReadListenerRules",
                    ("elasticloadbalancing:DescribeRules", "elasticloadbalancing:DescribeListeners"), ("*",),
                    "check that the production listener rule forwards to both target groups", wildcard=NO_RESOURCE),
            # CodePipeline's "Amazon ECS" action deploys imagedefinitions.json (run --artifacts-dir) with
            # UpdateService: ECS then deploys with the strategy the service has.
            IamNeed("PipelineEcsService", ("ecs:DescribeServices", "ecs:UpdateService"), (service_arn,),
                    f"CodePipeline's ECS action updates {where}", principal="pipeline"),
            IamNeed("PipelineEcsRegister", ("ecs:RegisterTaskDefinition",), (family_arn,),
                    "CodePipeline registers the new revision", principal="pipeline"),
            IamNeed("PipelineEcsReadTaskDefinition", ("ecs:DescribeTaskDefinition",), ("*",),
                    "CodePipeline reads the service's task definition", principal="pipeline", wildcard=NO_RESOURCE),
            *([IamNeed("PipelinePassTaskRoles", ("iam:PassRole",), roles, "CodePipeline hands the task roles to ECS",
                       principal="pipeline", conditions=passed_to("ecs-tasks.amazonaws.com"))] if roles else []),
        ]  # fmt: skip

    # -- run -------------------------------------------------------------------------------

    def _target_details(self, target: Target) -> dict[str, Any]:
        return {
            "cluster": target.cluster,
            "service": target.service,
            "strategy": None,
            "previous_task_definition": None,
            "lifecycle_stage": None,
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
        """Update the service with the strategy and follow its deployment; ``registered`` skips registering."""
        settings = settings_of(job.module)
        details["strategy"] = settings.strategy
        service = describe_service(aws, target)
        findings, setup = check(aws, target, settings, service, job.module.name)
        blocking = [f.text for f in findings if f.blocking]
        if blocking or service is None:
            return StageResult(False, "; ".join(blocking) + "; nothing changed", details)
        busy = self._wait_for_others(job, aws, target, service, settings, setup.network)
        if isinstance(busy, str):
            return StageResult(False, busy, details)
        service = busy
        details["previous_task_definition"] = service.get("taskDefinition")
        if job.ctx.cancel.is_set():
            return StageResult(False, "cancelled before deploying; nothing changed", details)
        if registered:
            arn = registered
        else:
            taskdef = dict(rendered.taskdef) if rendered else {}
            taskdef["tags"] = [
                *(taskdef.get("tags") or []),
                {"key": RUN_TAG, "value": job.ctx.run_id},
                {"key": MODULE_TAG, "value": job.module.name},
            ]
            arn = aws.call("ecs", "register_task_definition", **taskdef)["taskDefinition"]["taskDefinitionArn"]
            job.log(f"registered task definition {short_arn(arn)}")
        details["task_definition"] = arn
        job.progress(task_definition=arn)
        if job.ctx.cancel.is_set():
            return StageResult(False, "cancelled before deploying; the service was not changed", details)
        configuration = settings.deployment_configuration(service.get("deploymentConfiguration") or {})
        deployment = self._update(job, aws, target, arn, configuration)
        details["id"] = deployment
        # Recorded at once: a run killed from here on leaves a deployment its successor can find.
        job.progress(deployment_id=deployment, task_definition=arn)
        seconds = self.deadline(target, settings, setup.network)
        job.log(
            f"service deployment {deployment.rsplit('/', 1)[-1]} of {target.cluster}/{target.service} started "
            f"({settings.describe()}{', behind an NLB' if setup.network else ''}); "
            f"waiting up to {minutes(seconds)}"
        )
        return self._result(job, self.follower(job, aws).follow(deployment, seconds), details)

    def follower(self, job: ModuleJob, aws: Aws) -> Follower:
        return Follower(job, aws, sleep=self._sleep, clock=self._clock, backoff=self._backoff, mark=job.mark)

    def deadline(self, target: Target, settings: NativeSettings, network: bool) -> float:
        """``timeout_minutes``, else the strategy's own waits plus a margin, within 30..360 minutes."""
        if target.timeout_minutes:
            return float(target.timeout_minutes) * 60
        wanted = settings.expected_minutes(network) + MARGIN_MINUTES
        return min(MAX_WAIT_MINUTES, max(MIN_WAIT_MINUTES, wanted)) * 60

    def _result(self, job: ModuleJob, followed: Followed, details: dict[str, Any]) -> StageResult:
        details.update(
            status=followed.status,
            lifecycle_stage=followed.stage,
            rolled_back=followed.rolled_back,
            production_traffic=followed.traffic,
            status_reason=followed.reason,
            **followed.details,
        )
        if followed.live:
            details["deployed"] = True
        if followed.ok:
            job.log(f"service deployment {str(details['id']).rsplit('/', 1)[-1]} succeeded")
        else:
            job.log(str(followed.error))
        return StageResult(followed.ok, followed.error, details)

    def _update(self, job: ModuleJob, aws: Aws, target: Target, arn: str, configuration: dict[str, Any]) -> str:
        """UpdateService, exactly once; its service deployment's ARN.

        An answer lost to a timeout, reset or 5xx may still have started the deployment: it is
        looked for (by creation time and target task definition) before the call is repeated.
        """
        since = dt.datetime.now(dt.UTC) - LOOKBACK
        params: dict[str, Any] = {
            "cluster": target.cluster,
            "service": target.service,
            "taskDefinition": arn,
            "deploymentConfiguration": configuration,
        }
        give_up = self._clock() + aws.deadline
        attempt = 0
        while True:
            attempt += 1
            try:
                updated = aws.call("ecs", "update_service", deadline=0, **params)["service"]
            except AwsError as exc:
                ambiguous = exc.code is None or exc.code in RETRYABLE_CODES
                if not ambiguous or self._clock() >= give_up:
                    raise
                job.log(
                    f"UpdateService got no clear answer ({exc.code or 'connection'}); looking for the "
                    "service deployment this run may have started"
                )
                found = self.find_deployment(aws, target, arn, since=since)
                if found:
                    return found
                if job.ctx.cancel.is_set():
                    raise
                (self._sleep or job.ctx.cancel.wait)(min(self._backoff.first * attempt, self._backoff.cap))
                continue
            # The service's current deployment is this update's - unless another update came right after;
            # its target revision says (a deployment carries no tag or description of its own).
            current = updated.get("currentServiceDeployment")
            if not current or self._target_taskdef(aws, describe(aws, str(current)) or {}) != arn:
                current = self.find_deployment(aws, target, arn, since=since)
            if not current:
                raise ExternalError(f"UpdateService of {target.cluster}/{target.service} started no service deployment")
            return str(current)

    def find_deployment(self, aws: Aws, target: Target, taskdef: str, *, since: dt.datetime | None) -> str | None:
        """The service deployment whose target revision runs ``taskdef`` (newest first, 20 at most)."""
        query: dict[str, Any] = {"cluster": target.cluster, "service": target.service}
        if since is not None:
            query["createdAt"] = {"after": since}
        listed = aws.call("ecs", "list_service_deployments", **query).get("serviceDeployments") or []
        by_revision = {
            d.get("targetServiceRevisionArn"): d["serviceDeploymentArn"]
            for d in listed
            if d.get("targetServiceRevisionArn")
        }
        if not by_revision:
            return None
        revisions = aws.call("ecs", "describe_service_revisions", serviceRevisionArns=list(by_revision)[:20])
        for revision in revisions.get("serviceRevisions") or []:
            if revision.get("taskDefinition") == taskdef:
                return str(by_revision[revision["serviceRevisionArn"]])
        return None

    def _wait_for_others(
        self,
        job: ModuleJob,
        aws: Aws,
        target: Target,
        service: dict[str, Any],
        settings: NativeSettings,
        network: bool,
    ) -> dict[str, Any] | str:
        """Never two deployments of one service: let one still in progress (started elsewhere) finish first."""
        current = service.get("currentServiceDeployment")
        other = describe(aws, current) if current else None
        if other is None or other.get("status") not in ONGOING:
            return service
        short = str(current).rsplit("/", 1)[-1]
        job.log(
            f"service deployment {short} of {target.cluster}/{target.service} is {other.get('status')} "
            "(started outside this run); waiting for it to finish before deploying"
        )
        wait = Wait(
            self.deadline(target, settings, network),
            cancel=job.ctx.cancel,
            sleep=self._sleep,
            clock=self._clock,
            backoff=self._backoff,
        )
        while True:
            wait.pause()
            other = describe(aws, str(current))
            if other is None or other.get("status") not in ONGOING:
                job.log(f"service deployment {short}: {(other or {}).get('status', 'gone')}; deploying now")
                return describe_service(aws, target) or service
            if wait.cancelled:
                return f"cancelled while waiting for service deployment {short}; nothing changed"
            if wait.expired:
                return f"service deployment {short} still in progress after {minutes(wait.seconds)}; nothing changed"

    # -- recovery, rollback, status ---------------------------------------------------------

    def recover(self, job: ModuleJob, deployment_id: str) -> DeployOutcome:
        """Conclude a service deployment a killed run left behind, without updating the service again."""
        target = target_of(job.ctx.config, job.module)
        details = self._details(target)
        details.update(id=deployment_id, strategy=settings_of(job.module).strategy)
        aws = aws_for(job.ctx)
        deployment = describe(aws, deployment_id)
        if deployment is None:
            return DeployOutcome(
                False, f"service deployment {deployment_id} no longer exists in ECS", deployment_id, gone=True
            )
        details["task_definition"] = self._target_taskdef(aws, deployment)
        follower = self.follower(job, aws)
        if deployment.get("status") in ONGOING:
            seconds = self.deadline(target, settings_of(job.module), False)
            job.log(
                f"service deployment {deployment_id.rsplit('/', 1)[-1]} is {deployment.get('status')}; "
                f"waiting up to {minutes(seconds)}"
            )
            followed = follower.follow(deployment_id, seconds)
        else:
            followed = follower._ended(deployment)
        return to_outcome(self._result(job, followed, details))

    def locate(self, job: ModuleJob, run_id: str, task_definition: str | None) -> str | None:
        """The service deployment run ``run_id`` started but did not live to record: its task definition's.

        Nothing can exist before the task definition was registered (and recorded). Since then the
        run's deployment is the one whose target service revision runs that task definition.
        """
        if not task_definition:
            return None
        return self.find_deployment(
            aws_for(job.ctx), target_of(job.ctx.config, job.module), task_definition, since=None
        )

    def _target_taskdef(self, aws: Aws, deployment: dict[str, Any]) -> str | None:
        revision = (deployment.get("targetServiceRevision") or {}).get("arn")
        if not revision:
            return None
        found = aws.call("ecs", "describe_service_revisions", serviceRevisionArns=[revision])
        revisions = found.get("serviceRevisions") or []
        return str(revisions[0]["taskDefinition"]) if revisions else None

    def _redeploy(
        self, job: ModuleJob, aws: Aws, target: Target, arn: str, image: str, details: dict[str, Any]
    ) -> StageResult:
        """UpdateService to the recorded task definition, with the strategy: ``rollback`` deploys like ``run``."""
        return self._deploy(job, aws, target, None, details, registered=arn)

    def _describe_live(self, aws: Aws, target: Target, service: dict[str, Any], live: dict[str, Any]) -> None:
        """What runs now: the service's task definition and image, and its current service deployment."""
        arn = service.get("taskDefinition")
        image, _ = image_of(aws, arn, target.container)
        current = service.get("currentServiceDeployment")
        deployment = describe(aws, current) if current else None
        status = (deployment or {}).get("status")
        live.update(
            exists=True,
            task_definition=arn,
            image=image,
            running=service.get("runningCount"),
            desired=service.get("desiredCount"),
            strategy=(service.get("deploymentConfiguration") or {}).get("strategy") or "ROLLING",
            last_deployment={"id": current, "status": status, "stage": (deployment or {}).get("lifecycleStage")}
            if current
            else None,
            in_progress=status in ONGOING,
        )
