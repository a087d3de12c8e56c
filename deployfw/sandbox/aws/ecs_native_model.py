"""What ECS records about service deployments and service revisions, in the API's shapes.

Since the ECS deployment controller does blue/green, linear and canary itself, every
UpdateService that needs a deployment creates a *service deployment* (ListServiceDeployments,
DescribeServiceDeployments, StopServiceDeployment) that moves a service from its *source*
service revisions to a *target* revision (DescribeServiceRevisions). These dataclasses are the
sandbox's record of both; :mod:`.ecs_native` moves them through their lifecycle and
:mod:`.ecs_native_api` answers the API from them. Field names follow botocore's ECS model
(``ServiceDeployment``, ``ServiceDeploymentBrief``, ``ServiceRevision``,
``ServiceRevisionSummary``); ARNs follow the forms the ECS guide shows
(``service-deployment/CLUSTER/SERVICE/ID``, ``service-revision/CLUSTER/SERVICE/NUMBER``).
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from moto.core.utils import utcnow

TRAFFIC_STRATEGIES = ("BLUE_GREEN", "LINEAR", "CANARY")
TRAFFIC_STAGES = (
    "PRE_SCALE_UP",
    "SCALE_UP",
    "POST_SCALE_UP",
    "TEST_TRAFFIC_SHIFT",
    "POST_TEST_TRAFFIC_SHIFT",
    "PRODUCTION_TRAFFIC_SHIFT",
    "POST_PRODUCTION_TRAFFIC_SHIFT",
    "BAKE_TIME",
    "CLEAN_UP",
)
"""The lifecycle stages of a blue/green, linear or canary deployment, after RECONCILE_SERVICE (when it happens)."""
ONGOING = ("PENDING", "IN_PROGRESS", "STOP_REQUESTED", "ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS")
COMPLETED = ("SUCCESSFUL", "STOPPED", "ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED")
_ID_CHARS = string.ascii_letters + string.digits + "-_"


def deployment_arn(region: str, account: str, cluster: str, service: str) -> str:
    ident = "".join(secrets.choice(_ID_CHARS) for _ in range(21))
    return f"arn:aws:ecs:{region}:{account}:service-deployment/{cluster}/{service}/{ident}"


def revision_arn(region: str, account: str, cluster: str, service: str) -> str:
    return f"arn:aws:ecs:{region}:{account}:service-revision/{cluster}/{service}/{secrets.randbelow(10**19):019d}"


@dataclass
class Revision:
    """A service revision: the task definition and load balancer settings a deployment puts in place.

    ``owner`` is the id of the ECS deployment (``ecs-svc/...``, DescribeServices' ``deployments``)
    whose tasks run this revision; ``target_group`` the target group its tasks register with.
    """

    arn: str
    service_arn: str
    cluster_arn: str
    task_definition: str
    load_balancers: list[dict[str, Any]]
    launch_type: str | None
    network_configuration: dict[str, Any] | None
    owner: str
    target_group: str | None = None
    container_images: list[dict[str, Any]] = field(default_factory=list)
    created_at: datetime = field(default_factory=utcnow)

    def describe(self) -> dict[str, Any]:
        """``ServiceRevision``."""
        doc: dict[str, Any] = {
            "serviceRevisionArn": self.arn,
            "serviceArn": self.service_arn,
            "clusterArn": self.cluster_arn,
            "taskDefinition": self.task_definition,
            "launchType": self.launch_type,
            "platformFamily": "Linux",
            "loadBalancers": self.load_balancers,
            "containerImages": self.container_images,
            "createdAt": self.created_at,
        }
        if self.network_configuration:
            doc["networkConfiguration"] = self.network_configuration
        if self.target_group:
            rules = [
                (lb.get("advancedConfiguration") or {}).get("productionListenerRule") for lb in self.load_balancers
            ]
            doc["resolvedConfiguration"] = {
                "loadBalancers": [
                    {"targetGroupArn": self.target_group, **({"productionListenerRule": r} if r else {})}
                    for r in (rules[:1] or [None])
                ]
            }
        return doc


@dataclass
class Traffic:
    """Where a blue/green-family deployment sends traffic: the rules it moves and the two target groups."""

    production_rule: str
    test_rule: str | None
    blue_group: str
    green_group: str
    network: bool = False
    steps: list[float] = field(default_factory=list)
    """Production percentages of the target revision, in order (``[10, 100]`` for a 10 % canary)."""
    step: int = 0
    baking: bool = False
    """Between two production steps: the canary or linear step bake."""
    production: float = 0.0
    test: float = 0.0


@dataclass
class ServiceDeployment:
    """One service deployment and the sandbox's progress through it."""

    arn: str
    service_arn: str
    cluster_arn: str
    cluster: str
    service: str
    source: list[Revision]
    target: Revision
    strategy: str
    configuration: dict[str, Any]
    status: str = "PENDING"
    status_reason: str | None = None
    lifecycle_stage: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    stopped_at: datetime | None = None
    updated_at: datetime = field(default_factory=utcnow)
    rollback: dict[str, Any] | None = None
    breaker_failures: int = 0
    breaker_threshold: int | None = None
    triggered_alarms: list[str] = field(default_factory=list)
    traffic: Traffic | None = None
    due: float = 0.0
    """Monotonic time at which the current stage may end."""
    stage_started: bool = False
    rollback_owner: str | None = None
    """The ECS deployment of a rolling rollback (the circuit breaker's, or StopServiceDeployment's)."""

    @property
    def ongoing(self) -> bool:
        return self.status in ONGOING

    @property
    def breaker_tripped(self) -> bool:
        return self.breaker_threshold is not None and self.breaker_failures >= self.breaker_threshold

    def touch(self) -> None:
        self.updated_at = utcnow()

    def brief(self) -> dict[str, Any]:
        """``ServiceDeploymentBrief`` (ListServiceDeployments)."""
        doc = {
            "serviceDeploymentArn": self.arn,
            "serviceArn": self.service_arn,
            "clusterArn": self.cluster_arn,
            "createdAt": self.created_at,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "targetServiceRevisionArn": self.target.arn,
            "status": self.status,
            "statusReason": self.status_reason,
        }
        return {k: v for k, v in doc.items() if v is not None}

    def describe(self, counts: dict[str, tuple[int, int]], desired: int) -> dict[str, Any]:
        """``ServiceDeployment``; ``counts`` maps a revision's owner to its (running, pending) tasks."""
        breaker = self.configuration.get("deploymentCircuitBreaker") or {}
        alarms = self.configuration.get("alarms") or {}
        doc: dict[str, Any] = {
            "serviceDeploymentArn": self.arn,
            "serviceArn": self.service_arn,
            "clusterArn": self.cluster_arn,
            "createdAt": self.created_at,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "stoppedAt": self.stopped_at,
            "updatedAt": self.updated_at,
            "sourceServiceRevisions": [self._summary(r, counts, source=True) for r in self.source],
            "targetServiceRevision": self._summary(self.target, counts, source=False, desired=desired),
            "status": self.status,
            "statusReason": self.status_reason,
            "lifecycleStage": self.lifecycle_stage,
            "deploymentConfiguration": self.configuration,
            "rollback": self.rollback,
            "deploymentCircuitBreaker": {
                "status": _monitor_status(bool(breaker.get("enable")), self.breaker_tripped, self.ongoing),
                "failureCount": self.breaker_failures,
                "threshold": self.breaker_threshold or 0,
            },
            "alarms": {
                "status": _monitor_status(bool(alarms.get("enable")), bool(self.triggered_alarms), self.ongoing),
                "alarmNames": list(alarms.get("alarmNames") or []),
                "triggeredAlarmNames": list(self.triggered_alarms),
            },
        }
        return {k: v for k, v in doc.items() if v is not None}

    def _summary(
        self, revision: Revision, counts: dict[str, tuple[int, int]], *, source: bool, desired: int | None = None
    ) -> dict[str, Any]:
        running, pending = counts.get(revision.owner, (0, 0))
        doc: dict[str, Any] = {
            "arn": revision.arn,
            "requestedTaskCount": running + pending if desired is None else desired,
            "runningTaskCount": running,
            "pendingTaskCount": pending,
        }
        if self.traffic is not None:
            production = self.traffic.production if not source else 100.0 - self.traffic.production
            test = self.traffic.test if not source else 100.0 - self.traffic.test
            doc["requestedProductionTrafficWeight"] = float(production)
            doc["requestedTestTrafficWeight"] = float(test)
        return doc


def _monitor_status(enabled: bool, triggered: bool, ongoing: bool) -> str:
    """``ServiceDeploymentRollbackMonitorsStatus``: TRIGGERED | MONITORING | MONITORING_COMPLETE | DISABLED."""
    if not enabled:
        return "DISABLED"
    if triggered:
        return "TRIGGERED"
    return "MONITORING" if ongoing else "MONITORING_COMPLETE"
