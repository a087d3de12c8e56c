"""Service deployment records for rolling updates, kept in step with the rolling scheduler.

AWS creates a service deployment for every deployment of an ECS-controller service, rolling
ones included (creating a service, a forced deployment, an update that needs one). The
rolling work itself stays the scheduler's (:mod:`.ecs_scheduler`); this module only mirrors it
into the service deployment's status, reading the ECS deployment the update created:

- its ``rolloutState`` COMPLETED -> SUCCESSFUL;
- FAILED with the circuit breaker's rollback deployment started -> ROLLBACK_IN_PROGRESS, then
  ROLLBACK_SUCCESSFUL (or ROLLBACK_FAILED) with that deployment; FAILED without -> STOPPED;
- gone from the service (a newer update replaced it) -> STOPPED.

StopServiceDeployment(ROLLBACK) on a rolling deployment updates the service back to the source
revision's task definition, as ECS's rollback does, and follows that deployment the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from moto.core.utils import utcnow

from deployfw.sandbox.aws.ecs_native_model import ServiceDeployment

if TYPE_CHECKING:
    from deployfw.sandbox.aws.ecs_native import NativeDeployments


class RollingRecords:
    def __init__(self, engine: NativeDeployments) -> None:
        self.engine = engine

    def started(self, service: Any, previous: str | None) -> ServiceDeployment:
        """Record the rolling deployment the service's update (or creation) just started."""
        engine = self.engine
        deployment = service.deployments[0]
        source = []
        current = engine.revisions.get(engine.current.get(engine.key(service), ""))
        owners = {d["id"] for d in service.deployments[1:]}
        if current is not None and current.owner in owners:
            source.append(current)
        elif previous and len(service.deployments) > 1:
            old = service.deployments[1]
            source.append(engine.revision(service, task_definition=old["taskDefinition"], owner=old["id"],
                                          target_group=_group(service)))  # fmt: skip
        for record in self._ongoing(service):
            _end(record, "STOPPED", "Service deployment superseded by a newer one.")
        target = engine.revision(service, task_definition=deployment["taskDefinition"], owner=deployment["id"],
                                 target_group=_group(service))  # fmt: skip
        record = engine.new_record(service, source, target, "ROLLING")
        record.status, record.started_at = "IN_PROGRESS", utcnow()
        engine.add(service, record)
        return record

    def _ongoing(self, service: Any) -> list[ServiceDeployment]:
        engine = self.engine
        found = [engine.records[a] for a in engine.by_service.get(engine.key(service), [])]
        return [r for r in found if r.ongoing and r.traffic is None]

    def sync(self, service: Any) -> None:
        engine = self.engine
        by_id = {d["id"]: d for d in service.deployments}
        for record in self._ongoing(service):
            ours = by_id.get(record.target.owner)
            if ours is not None:
                record.breaker_failures = int(ours.get("failedTasks") or 0)
            if record.status == "ROLLBACK_REQUESTED":
                self._roll_back(service, record, record.status_reason or "Service deployment rolled back on request.")
                by_id = {d["id"]: d for d in service.deployments}
            if record.rollback_owner is not None:
                back = by_id.get(record.rollback_owner)
                if back is None:
                    _end(record, "ROLLBACK_FAILED", "The rollback deployment was replaced before it completed.")
                elif back.get("rolloutState") == "COMPLETED":
                    _end(record, "ROLLBACK_SUCCESSFUL", record.status_reason)
                    engine.current.pop(engine.key(service), None)
                elif back.get("rolloutState") == "FAILED":
                    _end(record, "ROLLBACK_FAILED", str(back.get("rolloutStateReason") or "The rollback failed."))
                continue
            if ours is None:
                _end(record, "STOPPED", "Service deployment superseded by a newer one.")
            elif ours.get("rolloutState") == "COMPLETED":
                _end(record, "SUCCESSFUL", None)
                engine.current[engine.key(service)] = record.target.arn
            elif ours.get("rolloutState") == "FAILED":
                primary = service.deployments[0]
                reason = str(ours.get("rolloutStateReason") or "The service deployment failed.")
                rolled = (
                    record.source
                    and primary["id"] != ours["id"]
                    and (primary["taskDefinition"] == record.source[0].task_definition)
                )
                if rolled:
                    record.rollback_owner = primary["id"]
                    record.status = "ROLLBACK_IN_PROGRESS"
                    record.status_reason = f"Service deployment rolled back because of a failure: {reason}"
                    record.rollback = {"reason": record.status_reason, "startedAt": utcnow(),
                                       "serviceRevisionArn": record.source[0].arn}  # fmt: skip
                    record.touch()
                else:
                    _end(record, "STOPPED", reason)

    def _roll_back(self, service: Any, record: ServiceDeployment, reason: str) -> None:
        """StopServiceDeployment(ROLLBACK): update the service back to the source revision's task definition."""
        if not record.source:
            _end(record, "ROLLBACK_FAILED", "There is no previous service revision to roll back to.")
            return
        service.task_definition = record.source[0].task_definition
        self.engine.backend.new_deployment(service, failing=False, previous=None)
        record.rollback_owner = service.deployments[0]["id"]
        record.status, record.status_reason = "ROLLBACK_IN_PROGRESS", reason
        record.rollback = {"reason": reason, "startedAt": utcnow(), "serviceRevisionArn": record.source[0].arn}
        record.touch()


def _group(service: Any) -> str | None:
    lbs = service.load_balancers or []
    return str(lbs[0]["targetGroupArn"]) if lbs and lbs[0].get("targetGroupArn") else None


def _end(record: ServiceDeployment, status: str, reason: str | None) -> None:
    now = utcnow()
    record.status = status
    if reason is not None:
        record.status_reason = reason
    record.finished_at = now
    if status == "STOPPED":
        record.stopped_at = now
    record.touch()
