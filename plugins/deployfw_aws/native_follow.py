"""Follow one ECS service deployment to its end through DescribeServiceDeployments.

There is no SDK waiter for service deployments. This one polls the deployment by ARN - soon
at first, backing off to a cap, soon again after every change - and logs the status, the
lifecycle stage and the production traffic split whenever they change. The end decides the
outcome, and a deployment that rolled back is a failure, always:

- SUCCESSFUL - succeeded;
- ROLLBACK_SUCCESSFUL - failed, rolled back (the ``statusReason`` says why: circuit breaker,
  alarm, invalid networking, a stop);
- ROLLBACK_FAILED, STOPPED - failed, not rolled back;
- gone (DescribeServiceDeployments reports it MISSING) - failed.

On cancel or at the deadline it stops the deployment with StopServiceDeployment(ROLLBACK) and
follows the rollback to its end (bounded, and no longer interruptible by the cancel that
caused it), so a run never leaves a half-shifted service without saying so. A deployment that
completed before the stop arrived stays deployed and is reported as such.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from deployfw.aws.clients import Aws, AwsError
from deployfw.backends import ModuleJob
from deployfw_aws.deploy_common import Backoff, Wait, minutes

ONGOING = ("PENDING", "IN_PROGRESS", "STOP_REQUESTED", "ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS")
ROLLBACK_WAIT_SECONDS = 600.0


@dataclass
class Followed:
    """How a followed service deployment ended."""

    ok: bool
    status: str
    error: str | None = None
    rolled_back: bool = False
    live: bool = False
    stage: str | None = None
    reason: str | None = None
    traffic: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


def describe(aws: Aws, arn: str) -> dict[str, Any] | None:
    """The deployment as DescribeServiceDeployments returns it; None when ECS no longer knows it."""
    answer = aws.call("ecs", "describe_service_deployments", serviceDeploymentArns=[arn])
    found = answer.get("serviceDeployments") or []
    return found[0] if found else None


def split(deployment: dict[str, Any]) -> float | None:
    """The new revision's share of production traffic, when ECS reports one (not for ROLLING)."""
    weight = (deployment.get("targetServiceRevision") or {}).get("requestedProductionTrafficWeight")
    return float(weight) if weight is not None else None


class Follower:
    """Poll one service deployment; see the module docstring."""

    def __init__(
        self,
        job: ModuleJob,
        aws: Aws,
        *,
        sleep: Callable[[float], Any] | None = None,
        clock: Callable[[], float],
        backoff: Backoff,
        mark: Callable[..., None] | None = None,
    ) -> None:
        self.job, self.aws = job, aws
        self._sleep, self._clock, self._backoff = sleep, clock, backoff
        self._mark = mark or (lambda kind, **fields: None)
        self._shown: tuple[Any, ...] | None = None
        self._traffic: float | None = None

    def follow(self, arn: str, seconds: float) -> Followed:
        job = self.job
        wait = Wait(seconds, cancel=job.ctx.cancel, sleep=self._sleep, clock=self._clock, backoff=self._backoff)
        while True:
            wait.pause()  # first: no deployment is over the moment it is created
            deployment = describe(self.aws, arn)
            if deployment is None:
                return Followed(False, "MISSING", f"service deployment {arn} no longer exists in ECS")
            if self._show(deployment):
                wait.changed()  # the end may follow soon: poll short again
            status = str(deployment.get("status"))
            if status not in ONGOING:
                return self._ended(deployment)
            if job.ctx.cancel.is_set():
                return self._stop(arn, "cancelled")
            if wait.expired:
                return self._stop(arn, f"timed out after {minutes(seconds)}")

    def _show(self, deployment: dict[str, Any]) -> bool:
        """Log what changed (status, stage, traffic split); True when the end may now come soon.

        That is a new status, or the CLEAN_UP stage (what remains is draining the previous
        revision's tasks): polling starts short again. The other stages of a traffic-shifting
        deployment come and go by the dozen and mostly last minutes (scale-up, bakes, an NLB's
        ten-minute delays), so they only get logged - resetting the backoff on each would
        multiply the calls without noticing the end any sooner.
        """
        status, stage = deployment.get("status"), deployment.get("lifecycleStage")
        traffic = split(deployment)
        now = (status, stage, traffic)
        if now == self._shown:
            return False
        before = self._shown or (None, None, None)
        arn = str(deployment.get("serviceDeploymentArn"))
        line = f"service deployment {arn.rsplit('/', 1)[-1]}: {status}" + (f", {stage}" if stage else "")
        if traffic is not None:
            line += f", production traffic {traffic:g}% new / {100 - traffic:g}% previous"
        if status != before[0] and deployment.get("statusReason"):
            line += f" ({deployment['statusReason']})"
        self.job.log(line)
        if status != before[0]:
            self._mark("status", status=status)
        if stage != before[1] and stage:
            self._mark("stage", stage=stage)
        if traffic is not None and traffic != self._traffic:
            self._traffic = traffic
            self._mark("traffic", percent=traffic)
        self._shown = now
        return status != before[0] or (stage == "CLEAN_UP" and before[1] != "CLEAN_UP")

    def _ended(self, deployment: dict[str, Any], *, reason: str | None = None) -> Followed:
        status = str(deployment.get("status"))
        why = deployment.get("statusReason")
        stage = deployment.get("lifecycleStage")
        rollback = deployment.get("rollback") or {}
        details: dict[str, Any] = {}
        alarms = deployment.get("alarms") or {}
        if alarms.get("triggeredAlarmNames"):
            details["triggered_alarms"] = list(alarms["triggeredAlarmNames"])
        breaker = deployment.get("deploymentCircuitBreaker") or {}
        if breaker.get("status") == "TRIGGERED":
            details["circuit_breaker_failures"] = breaker.get("failureCount")
        if rollback:
            details["rollback_reason"] = rollback.get("reason")
            details["rollback_revision"] = rollback.get("serviceRevisionArn")
        followed = Followed(False, status, stage=stage, reason=why, traffic=split(deployment), details=details)
        if status == "SUCCESSFUL":
            if reason is None:
                followed.ok = True
            else:  # it completed before our stop arrived: deployed after all
                followed.live = True
                followed.error = f"{reason} after the service deployment had already succeeded; it stays deployed"
            return followed
        parts = [reason] if reason else []
        parts.append(f"service deployment {status}" + (f": {why}" if why else ""))
        if status == "ROLLBACK_SUCCESSFUL":
            followed.rolled_back = True
            parts.append("rolled back; production traffic is on the previous service revision")
        followed.error = "; ".join(parts)
        return followed

    def _stop(self, arn: str, reason: str) -> Followed:
        self.job.log(f"{reason}: stopping service deployment {arn.rsplit('/', 1)[-1]} with rollback")
        self._mark("rollback", reason=reason)
        try:
            self.aws.call("ecs", "stop_service_deployment", serviceDeploymentArn=arn, stopType="ROLLBACK")
        except AwsError as exc:
            if exc.code not in ("ConflictException",):  # Conflict: it completed meanwhile; read how
                return Followed(False, "UNKNOWN", f"{reason}; stopping service deployment {arn} failed: {exc}")
        never = threading.Event()
        follow = Wait(ROLLBACK_WAIT_SECONDS, cancel=never, sleep=self._sleep, clock=self._clock, backoff=self._backoff)
        while True:
            deployment = describe(self.aws, arn)
            if deployment is None:
                return Followed(False, "MISSING", f"{reason}; service deployment {arn} no longer exists in ECS")
            self._show(deployment)
            if deployment.get("status") not in ONGOING:
                return self._ended(deployment, reason=reason)
            if follow.expired:
                followed = self._ended(deployment, reason=reason)
                followed.error = (
                    f"{reason}; the rollback was still {deployment.get('status')} after "
                    f"{minutes(ROLLBACK_WAIT_SECONDS)}"
                )
                return followed
            follow.pause()
