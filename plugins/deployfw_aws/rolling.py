"""``ecs-rolling``: an ECS rolling update that watches its own deployment.

The ServicesStable waiter answers "is the service steady?", which is the wrong
question: it returns early after a forced deployment and calls a circuit-breaker
rollback a success, because the rolled-back service *is* steady. This deployer
instead remembers the id of the PRIMARY deployment its UpdateService created and
follows that deployment's ``rolloutState`` in DescribeServices:

- ``COMPLETED`` - succeeded;
- ``FAILED`` - the circuit breaker gave up; with rollback on, ECS starts a new
  deployment of the previous task definition: failed, ``rolled_back`` true;
- gone from the list - replaced: by a deployment of the previous task definition
  (the rollback finished first) or by someone else's (superseded): failed either way.

The circuit breaker is switched on (enable + rollback) on every update, keeping the
service's other deployment settings. On cancel or timeout the service is updated
back to the task definition it ran before, and the deploy is reported failed.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from deployfw.aws.clients import Aws, AwsError, aws_for
from deployfw.backends import DeployOutcome, ModuleJob, StageResult
from deployfw_aws.deploy_common import (
    Target,
    Wait,
    describe_service,
    minutes,
    short_arn,
    target_of,
    task_definition_image,
)
from deployfw_aws.ecs_deployer import NO_RESOURCE, EcsDeployer, to_outcome
from deployfw_aws.render import Rendered

if TYPE_CHECKING:
    from deployfw.config import Config, Module
    from deployfw.iam.needs import IamNeed, IamScope

DEFAULT_TIMEOUT_MINUTES = 30
ROLLBACK_WAIT_SECONDS = 300.0  # how long a cancelled or timed-out rollout waits for its rollback
CIRCUIT_BREAKER = {"enable": True, "rollback": True}


class RollingDeploy(EcsDeployer):
    """UpdateService with the deployment circuit breaker, tracked by deployment id."""

    backend_id = "ecs-rolling"


    def steps(self, module: Module, config: Config) -> Sequence[str]:
        target = target_of(config, module)
        timeout = target.timeout_minutes or DEFAULT_TIMEOUT_MINUTES
        return [
            f"render {target.taskdef} with the image by digest",
            f"register task definition from {target.taskdef}",
            f"update service {target.cluster}/{target.service} with the deployment circuit breaker (rollback on)",
            f"wait up to {timeout:g} min for that deployment to complete; a circuit-breaker rollback is a failure; "
            "roll back to the previous task definition on cancel or timeout",
        ]

    def _target_details(self, target: Target) -> dict[str, Any]:
        return {"cluster": target.cluster, "service": target.service, "previous_task_definition": None}

    def _iam_needs(
        self, scope: IamScope, target: Target, family_arn: str, service_arn: str, roles: tuple[str, ...]
    ) -> list[IamNeed]:
        """UpdateService to the new revision (and back to the previous one on failure or cancel).

        ``pipeline``: what CodePipeline's "Amazon ECS" deploy action needs for imagedefinitions.json.
        """
        from deployfw.iam.needs import IamNeed, passed_to

        where = f"{target.cluster}/{target.service}"
        return [
            IamNeed("EcsUpdateService", ("ecs:UpdateService",), (service_arn,),
                    f"roll {where} to the new task definition, or back"),
            IamNeed("PipelineEcsService", ("ecs:DescribeServices", "ecs:UpdateService"), (service_arn,),
                    f"CodePipeline's ECS action updates {where}", principal="pipeline"),
            IamNeed("PipelineEcsRegister", ("ecs:RegisterTaskDefinition",), (family_arn,),
                    "CodePipeline registers the new revision", principal="pipeline"),
            IamNeed("PipelineEcsReadTaskDefinition", ("ecs:DescribeTaskDefinition",), ("*",),
                    "CodePipeline reads the service's task definition", principal="pipeline", wildcard=NO_RESOURCE),
            *([IamNeed("PipelinePassTaskRoles", ("iam:PassRole",), roles, "CodePipeline hands the task roles to ECS",
                       principal="pipeline", conditions=passed_to("ecs-tasks.amazonaws.com"))] if roles else []),
        ]

    def _deploy(
        self,
        job: ModuleJob,
        aws: Aws,
        target: Target,
        rendered: Rendered | None,
        details: dict[str, Any],
        registered: str | None = None,
    ) -> StageResult:
        """Update the service and follow its deployment; ``registered`` (a rollback) skips registration."""
        service = describe_service(aws, target)
        if service is None:
            return StageResult(False, f"service {target.cluster}/{target.service} does not exist", details)
        controller = (service.get("deploymentController") or {}).get("type", "ECS")
        if controller != "ECS":
            return StageResult(
                False,
                f"service {target.cluster}/{target.service} uses the {controller} deployment controller; "
                "use the ecs-bluegreen backend for CODE_DEPLOY services",
                details,
            )
        busy = self._wait_for_others(job, aws, target, service)
        if isinstance(busy, str):
            return StageResult(False, busy, details)
        service = busy
        previous = service.get("taskDefinition")
        details["previous_task_definition"] = previous
        old_events = {e.get("id") for e in service.get("events") or []}
        if job.ctx.cancel.is_set():
            return StageResult(False, "cancelled before deploying; nothing changed", details)
        if registered:
            arn = registered
        else:
            taskdef = rendered.taskdef if rendered else {}
            arn = aws.call("ecs", "register_task_definition", **taskdef)["taskDefinition"]["taskDefinitionArn"]
            job.log(f"registered task definition {arn.rsplit('/', 1)[-1]}")
        details["task_definition"] = arn
        job.progress(task_definition=arn)
        if job.ctx.cancel.is_set():
            return StageResult(False, "cancelled before deploying; the service was not changed", details)
        configuration = {**(service.get("deploymentConfiguration") or {}), "deploymentCircuitBreaker": CIRCUIT_BREAKER}
        updated = aws.call("ecs", "update_service", cluster=target.cluster, service=target.service,
                           taskDefinition=arn, deploymentConfiguration=configuration)["service"]
        primary = next((d for d in updated.get("deployments") or [] if d.get("status") == "PRIMARY"), None)
        if primary is None or primary.get("taskDefinition") != arn:
            return StageResult(False, "UpdateService started no deployment of the new task definition", details)
        deployment_id = primary["id"]
        details["id"] = deployment_id
        # Recorded at once: a run killed from here on leaves a deployment its successor can find.
        job.progress(deployment_id=deployment_id, task_definition=arn)
        seconds = float(target.timeout_minutes or DEFAULT_TIMEOUT_MINUTES) * 60
        job.log(f"deployment {deployment_id} of {target.cluster}/{target.service} started; "
                f"waiting up to {minutes(seconds)}")
        return self._track(job, aws, target, deployment_id, arn, previous, old_events, seconds, details)

    def _wait_for_others(
        self, job: ModuleJob, aws: Aws, target: Target, service: dict[str, Any]
    ) -> dict[str, Any] | str:
        """Never two rollouts of one service: let one still in progress (started elsewhere) finish first.

        Returns the service as last described, or why this deploy must not go ahead.
        """
        deployments = service.get("deployments") or []
        primary = next((d for d in deployments if d.get("status") == "PRIMARY"), None)
        if primary is None or _rollout_state(primary, deployments) != "IN_PROGRESS":
            return service
        other = primary.get("id")
        job.log(f"deployment {other} of {target.cluster}/{target.service} is still in progress "
                "(started outside this run); waiting for it to finish before deploying")
        wait = Wait(float(target.timeout_minutes or DEFAULT_TIMEOUT_MINUTES) * 60, cancel=job.ctx.cancel,
                    sleep=self._sleep, clock=self._clock, backoff=self._backoff)  # fmt: skip
        while True:
            wait.pause()
            service = describe_service(aws, target) or {}
            deployments = service.get("deployments") or []
            current = next((d for d in deployments if d.get("id") == other), None)
            if current is None or _rollout_state(current, deployments) != "IN_PROGRESS":
                job.log(f"deployment {other} finished; deploying now")
                job.mark("waited", seconds=round(wait.elapsed, 3), reason=f"deployment {other} (not this run)")
                return service
            if wait.cancelled:
                return f"cancelled while waiting for deployment {other}; nothing changed"
            if wait.expired:
                return f"deployment {other} was still in progress after {minutes(wait.seconds)}; nothing changed"

    # -- recovery, rollback, status ---------------------------------------------------------

    def recover(self, job: ModuleJob, deployment_id: str) -> DeployOutcome:
        """Conclude a rolling deployment a killed run left behind, without updating the service again.

        Still listed: followed like deploy follows it (cancel or timeout roll back to the
        deployment it replaced). Gone: replaced since; the service's events say whether it
        completed or the circuit breaker rolled it back, else it is not counted as deployed.
        """
        target = target_of(job.ctx.config, job.module)
        details = self._details(target)
        details["id"] = deployment_id
        aws = aws_for(job.ctx)
        service = describe_service(aws, target)
        if service is None:
            return DeployOutcome(False, f"service {target.cluster}/{target.service} does not exist", deployment_id)
        deployments = service.get("deployments") or []
        ours = next((d for d in deployments if d.get("id") == deployment_id), None)
        if ours is None:
            return _concluded_from_events(service, deployment_id)
        arn = str(ours.get("taskDefinition"))
        others = [d.get("taskDefinition") for d in deployments if d.get("id") != deployment_id]
        previous = next((t for t in others if t and t != arn), None)  # what a rollback returns to
        details.update(task_definition=arn, previous_task_definition=previous)
        seconds = float(target.timeout_minutes or DEFAULT_TIMEOUT_MINUTES) * 60
        job.log(f"deployment {deployment_id} is {_rollout_state(ours, deployments)}; waiting up to {minutes(seconds)}")
        seen = {e.get("id") for e in service.get("events") or []}
        return to_outcome(self._track(job, aws, target, deployment_id, arn, previous, seen, seconds, details))

    def locate(self, job: ModuleJob, run_id: str, task_definition: str | None) -> str | None:
        """The deployment run ``run_id`` started but was killed before recording: the one of its task definition.

        The run records the task definition before UpdateService, and ECS keeps the deployment of
        each task definition in the service until a later one replaces it.
        """
        if not task_definition:
            return None
        service = describe_service(aws_for(job.ctx), target_of(job.ctx.config, job.module))
        found = [d for d in (service or {}).get("deployments") or [] if d.get("taskDefinition") == task_definition]
        return str(found[0]["id"]) if found else None

    def _redeploy(
        self, job: ModuleJob, aws: Aws, target: Target, arn: str, image: str, details: dict[str, Any]
    ) -> StageResult:
        """UpdateService to the recorded ARN, followed like deploy."""
        return self._deploy(job, aws, target, None, details, registered=arn)

    def _describe_live(self, aws: Aws, target: Target, service: dict[str, Any], live: dict[str, Any]) -> None:
        """What runs now: the PRIMARY deployment's task definition, image and rolloutState."""
        deployments = service.get("deployments") or []
        primary = next((d for d in deployments if d.get("status") == "PRIMARY"), None)
        arn = primary.get("taskDefinition") if primary else service.get("taskDefinition")
        image, _ = task_definition_image(aws, arn, target.container)
        state = _rollout_state(primary, deployments) if primary else None
        live.update(exists=True, task_definition=arn, image=image, running=service.get("runningCount"),
                    desired=service.get("desiredCount"), rollout_state=state,
                    last_deployment={"id": primary.get("id"), "status": state} if primary else None,
                    in_progress=state == "IN_PROGRESS")

    def _track(
        self,
        job: ModuleJob,
        aws: Aws,
        target: Target,
        deployment_id: str,
        arn: str,
        previous: str | None,
        seen_events: set[Any],
        seconds: float,
        details: dict[str, Any],
    ) -> StageResult:
        wait = Wait(seconds, cancel=job.ctx.cancel, sleep=self._sleep, clock=self._clock, backoff=self._backoff)
        shown: tuple[Any, ...] | None = None
        while True:
            wait.pause()  # first: no rollout is over the moment it starts
            service = describe_service(aws, target)
            if service is None:
                return StageResult(False, f"service {target.cluster}/{target.service} disappeared", details)
            for event in reversed(service.get("events") or []):  # ECS lists newest first
                if event.get("id") not in seen_events:
                    seen_events.add(event.get("id"))
                    job.log(f"event: {event.get('message')}")
            deployments = service.get("deployments") or []
            ours = next((d for d in deployments if d.get("id") == deployment_id), None)
            if ours is None:
                return self._replaced(job, deployments, previous, details)
            state = _rollout_state(ours, deployments)
            now = (state, ours.get("runningCount"), ours.get("pendingCount"), ours.get("failedTasks"))
            if now != shown:
                if shown is None or now[0] != shown[0]:
                    wait.changed()
                shown = now
                job.log(f"deployment {deployment_id}: {state}, running {now[1]}, pending {now[2]}, failed {now[3]}")
                job.mark("rollout", state=state, running=now[1], pending=now[2], failed=now[3])
            details["status"] = state
            if state == "COMPLETED":
                job.log(f"deployment {deployment_id} completed")
                return StageResult(True, None, details)
            if state == "FAILED":
                return self._failed(job, ours, deployments, previous, details)
            if job.ctx.cancel.is_set():
                return self._roll_back(job, aws, target, previous, details, "cancelled")
            if wait.expired:
                return self._roll_back(job, aws, target, previous, details, f"timed out after {minutes(seconds)}")

    def _failed(
        self,
        job: ModuleJob,
        ours: dict[str, Any],
        deployments: list[dict[str, Any]],
        previous: str | None,
        details: dict[str, Any],
    ) -> StageResult:
        rollback = next(
            (d for d in deployments if d.get("id") != ours.get("id") and d.get("taskDefinition") == previous
             and d.get("status") == "PRIMARY"),
            None,
        )
        details["rolled_back"] = rollback is not None
        if rollback is not None:
            details["rollback_deployment_id"] = rollback.get("id")
        reason = ours.get("rolloutStateReason") or "the deployment failed"
        message = f"deployment {ours.get('id')} FAILED: {reason}"
        if rollback is not None:
            message += f"; circuit breaker rolled back to {str(previous).rsplit('/', 1)[-1]}"
            job.mark("rolled_back", deployment=rollback.get("id"), by="circuit breaker")
        job.log(message)
        return StageResult(False, message, details)

    def _replaced(
        self, job: ModuleJob, deployments: list[dict[str, Any]], previous: str | None, details: dict[str, Any]
    ) -> StageResult:
        primary: dict[str, Any] = next((d for d in deployments if d.get("status") == "PRIMARY"), {})
        running = primary.get("taskDefinition")
        if previous and running == previous:
            details.update(rolled_back=True, status="FAILED", rollback_deployment_id=primary.get("id"))
            message = (f"deployment {details['id']} was replaced by a rollback to "
                       f"{previous.rsplit('/', 1)[-1]} (circuit breaker)")
        else:
            details["status"] = "SUPERSEDED"
            message = f"deployment {details['id']} was superseded by another deployment ({running})"
        job.log(message)
        return StageResult(False, message, details)

    def _roll_back(
        self, job: ModuleJob, aws: Aws, target: Target, previous: str | None, details: dict[str, Any], reason: str
    ) -> StageResult:
        if not previous:
            return StageResult(False, f"{reason}; no previous task definition to roll back to", details)
        job.log(f"{reason}: rolling {target.cluster}/{target.service} back to {previous.rsplit('/', 1)[-1]}")
        job.mark("rollback", reason=reason)
        try:
            updated = aws.call("ecs", "update_service", cluster=target.cluster, service=target.service,
                               taskDefinition=previous)["service"]
        except AwsError as exc:
            return StageResult(False, f"{reason}; rolling back failed: {exc}", details)
        deployments = updated.get("deployments") or []
        primary: dict[str, Any] = next((d for d in deployments if d.get("status") == "PRIMARY"), {})
        details.update(rolled_back=True, rollback_deployment_id=primary.get("id"))
        outcome = self._await_rollback(job, aws, target, primary.get("id"))
        details["rollback_state"] = outcome
        return StageResult(False, f"{reason}; rolled back to {previous.rsplit('/', 1)[-1]} ({outcome})", details)

    def _await_rollback(self, job: ModuleJob, aws: Aws, target: Target, deployment_id: str | None) -> str:
        """Follow the rollback deployment to its end, so nothing is left half-rolled without saying so.

        The run may already be cancelled, so this wait ignores cancel; it is bounded by
        ``ROLLBACK_WAIT_SECONDS`` and a second Ctrl-C still ends the process.
        """
        if not deployment_id:
            return "rollback deployment not reported by ECS"
        wait = Wait(ROLLBACK_WAIT_SECONDS, cancel=threading.Event(), sleep=self._sleep, clock=self._clock,
                    backoff=self._backoff)  # fmt: skip
        while True:
            service = describe_service(aws, target) or {}
            deployments = service.get("deployments") or []
            ours = next((d for d in deployments if d.get("id") == deployment_id), None)
            state = _rollout_state(ours, deployments) if ours else "GONE"
            if state == "GONE":
                job.log(f"rollback deployment {deployment_id} is no longer listed by ECS")
                return "rollback deployment gone"
            if state in ("COMPLETED", "FAILED"):
                job.log(f"rollback deployment {deployment_id}: {state}")
                job.mark("rolled_back" if state == "COMPLETED" else "rollback_failed", deployment=deployment_id)
                return f"rollback {state.lower()}"
            if wait.expired:
                job.log(f"rollback deployment {deployment_id} still {state} after {minutes(ROLLBACK_WAIT_SECONDS)}")
                return f"rollback still {state.lower()}"
            wait.pause()


def _rollout_state(ours: dict[str, Any], deployments: list[dict[str, Any]]) -> str:
    """``rolloutState``, or - for an ECS that does not report it - COMPLETED once ours is alone and full."""
    state = ours.get("rolloutState")
    if state:
        return str(state)
    if len(deployments) == 1 and ours.get("runningCount") == ours.get("desiredCount"):
        return "COMPLETED"
    return "IN_PROGRESS"


def _concluded_from_events(service: dict[str, Any], deployment_id: str) -> DeployOutcome:
    """A deployment no longer listed: ECS's events name it when it completed or failed."""
    for event in service.get("events") or []:  # newest first
        message = str(event.get("message") or "")
        if deployment_id not in message:
            continue
        if "failed" in message:
            return DeployOutcome(False, f"deployment {deployment_id}: {message}", deployment_id, rolled_back=True)
        if "completed" in message:
            return DeployOutcome(True, None, deployment_id)
    primary: dict[str, Any] = next((d for d in service.get("deployments") or [] if d.get("status") == "PRIMARY"), {})
    message = (
        f"deployment {deployment_id} was replaced by {primary.get('id') or 'another deployment'} "
        f"({short_arn(primary.get('taskDefinition'))}) before its outcome was seen; not counted as deployed"
    )
    return DeployOutcome(False, message, deployment_id)
