"""One step of a blue/green, linear or canary service deployment (see :mod:`.ecs_native` for the stages).

:func:`advance` runs on every scheduler tick for a service whose traffic-shifting deployment
is in progress: it keeps blue's tasks running, drives green's (starts, replaces, fails them
under ``deploy:<module>``), watches the circuit breaker and the deployment's CloudWatch
alarms, and moves to the next lifecycle stage when the current one is due and its condition
holds. A rollback returns production (and test) traffic to blue, stops green and makes blue's
ECS deployment the PRIMARY again.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from moto.core.utils import utcnow

from deployfw.sandbox.aws import elb
from deployfw.sandbox.aws.ecs_native_config import INVALID_NETWORKING, forward_weights, shift, traffic_steps
from deployfw.sandbox.aws.ecs_native_model import TRAFFIC_STAGES, ServiceDeployment, Traffic

if TYPE_CHECKING:
    from deployfw.sandbox.aws.ecs_native import NativeDeployments

NLB_DELAYED = ("PRE_SCALE_UP", "TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT")


NLB_DELAY = 600.0
"""Sandbox seconds ECS adds to PRE_SCALE_UP, TEST_TRAFFIC_SHIFT and each production shift behind an NLB."""


def advance(engine: NativeDeployments, service: Any, record: ServiceDeployment) -> None:
    traffic = record.traffic
    assert traffic is not None
    now = time.monotonic()
    if record.status == "PENDING":
        record.status, record.started_at = "IN_PROGRESS", utcnow()
        stages = _stages(record, TRAFFIC_STAGES)
        _enter(engine, record, stages[0])
    if record.status == "ROLLBACK_REQUESTED":
        _begin_rollback(engine, service, record)
    if record.status == "ROLLBACK_IN_PROGRESS":
        _keep(engine, service, record.source[0].owner, failing=False)
        green_gone = not any(t.owner == record.target.owner and t.stopped_at is None
                             for t in engine.backend.sandbox_tasks.values())  # fmt: skip
        if now >= record.due and green_gone:
            _finish(record, "ROLLBACK_SUCCESSFUL")
            engine.current[engine.key(service)] = record.source[0].arn
        return
    if record.status != "IN_PROGRESS":
        return
    stage = record.lifecycle_stage or ""
    stages = _stages(record, TRAFFIC_STAGES)
    if stage != "CLEAN_UP":
        _keep(engine, service, record.source[0].owner, failing=False)
    if stages.index(stage) >= stages.index("SCALE_UP"):
        state = engine.scheduler.deployments.get(record.target.owner)
        _keep(engine, service, record.target.owner, failing=bool(state and state.failing))
        if _failed(engine, service, record):
            return
    if _alarmed(engine, record):
        return
    if not _stage_done(engine, service, record, stage, traffic, now):
        return
    following = stages[stages.index(stage) + 1] if stage != stages[-1] else None
    if following is None:
        _succeed(engine, service, record)
    else:
        _enter(engine, record, following)


def _stages(record: ServiceDeployment, traffic_stages: tuple[str, ...]) -> list[str]:
    return (["RECONCILE_SERVICE"] if len(record.source) > 1 else []) + list(traffic_stages)


def _enter(engine: NativeDeployments, record: ServiceDeployment, stage: str) -> None:
    """Start a stage: its action, and when it may end (sandbox seconds on the clock, at least one step)."""
    traffic = record.traffic
    assert traffic is not None
    record.lifecycle_stage = stage
    record.touch()
    elbv2 = elb.elbv2(engine.backend.account_id, engine.backend.region_name)
    seconds = NLB_DELAY if traffic.network and stage in NLB_DELAYED else 0.0
    if stage == "RECONCILE_SERVICE":
        shift(elbv2, traffic.production_rule, traffic.blue_group, traffic.green_group, 0.0)
        for other in record.source[1:]:
            _stop_owner(engine, other.owner, "Service deployment reconciled (superseded service revision)")
    elif stage == "TEST_TRAFFIC_SHIFT" and traffic.test_rule:
        shift(elbv2, traffic.test_rule, traffic.blue_group, traffic.green_group, 100.0)
        traffic.test = 100.0
    elif stage == "PRODUCTION_TRAFFIC_SHIFT":
        traffic.step, traffic.baking = 0, False
        _shift_production(elbv2, traffic)
    elif stage == "BAKE_TIME":
        seconds = float(record.configuration.get("bakeTimeInMinutes") or 0) * 60
    elif stage == "CLEAN_UP":
        for source in record.source:
            _stop_owner(engine, source.owner, f"Scaling activity initiated by (deployment {record.target.owner})")
    engine.due(record, seconds)


def _shift_production(elbv2: Any, traffic: Traffic) -> None:
    share = traffic.steps[traffic.step]
    shift(elbv2, traffic.production_rule, traffic.blue_group, traffic.green_group, share)
    traffic.production = share


def _stage_done(
    engine: NativeDeployments, service: Any, record: ServiceDeployment, stage: str, traffic: Traffic, now: float
) -> bool:
    if now < record.due:
        return False
    backend = engine.backend
    if stage == "RECONCILE_SERVICE":
        owners = {r.owner for r in record.source[1:]}
        if any(t.owner in owners and t.stopped_at is None for t in backend.sandbox_tasks.values()):
            return False
        service.deployments[:] = [d for d in service.deployments if d["id"] not in owners]
        record.source = record.source[:1]
        return True
    if stage == "PRE_SCALE_UP":
        elbv2 = elb.elbv2(backend.account_id, backend.region_name)
        groups = set(forward_weights(elbv2, traffic.production_rule))
        if traffic.test_rule:
            groups |= set(forward_weights(elbv2, traffic.test_rule))
        if not {traffic.blue_group, traffic.green_group} <= groups:
            _fail(record, INVALID_NETWORKING, rollback=True)
            return False
        return True
    if stage == "SCALE_UP":
        green = engine.scheduler.live(record.target.owner)
        healthy = sum(1 for t in green if engine.scheduler.healthy(t))
        return healthy >= int(service.desired_count)
    if stage == "PRODUCTION_TRAFFIC_SHIFT":
        if traffic.step + 1 >= len(traffic.steps):
            return True
        elbv2 = elb.elbv2(backend.account_id, backend.region_name)
        if not traffic.baking:
            traffic.baking = True
            _, bake = _step_bake(record)
            engine.due(record, bake * 60)
        else:
            traffic.baking = False
            traffic.step += 1
            _shift_production(elbv2, traffic)
            engine.due(record, NLB_DELAY if traffic.network else 0.0)
        record.touch()
        return False
    if stage == "CLEAN_UP":
        owners = {r.owner for r in record.source}
        return not any(t.owner in owners and t.stopped_at is None for t in backend.sandbox_tasks.values())
    return True


def _step_bake(record: ServiceDeployment) -> tuple[list[float], float]:
    return traffic_steps(record.strategy, record.configuration)


# -- tasks -------------------------------------------------------------------------------------


def _keep(engine: NativeDeployments, service: Any, owner: str, *, failing: bool) -> None:
    """Keep ``desiredCount`` tasks of the revision whose ECS deployment is ``owner`` (with back-off after failures)."""
    scheduler = engine.scheduler
    deployment = next((d for d in service.deployments if d["id"] == owner), None)
    state = scheduler.deployments.get(owner)
    if deployment is None or state is None:
        return
    live = scheduler.live(owner)
    if failing:
        for task in live:
            if scheduler._is_running(task):
                scheduler.stop_task(task, "Task failed container health checks (deployfw sandbox fault)",
                                    by_scheduler=False, drain=False)  # fmt: skip
                scheduler._failed(task, "failed container health checks")
        live = scheduler.live(owner)
    missing = int(service.desired_count) - len(live)
    if missing > 0 and time.monotonic() >= state.next_launch:
        for _ in range(missing):
            scheduler.start_task(service, deployment["taskDefinition"], owner,
                                 load_balancers=state.load_balancers or service.load_balancers,
                                 network_configuration=service.network_configuration, started_by=owner,
                                 launch_type=deployment.get("launchType"))  # fmt: skip
        live = scheduler.live(owner)
    running = sum(1 for t in live if scheduler._is_running(t))
    deployment.update(runningCount=running, pendingCount=len(live) - running, desiredCount=int(service.desired_count))


def _stop_owner(engine: NativeDeployments, owner: str, reason: str) -> None:
    for task in engine.scheduler.live(owner):
        engine.scheduler.stop_task(task, reason)


# -- failure, rollback, success ------------------------------------------------------------------


def _failed(engine: NativeDeployments, service: Any, record: ServiceDeployment) -> bool:
    """The circuit breaker: green's failed tasks reached ECS's threshold."""
    deployment = next((d for d in service.deployments if d["id"] == record.target.owner), None)
    record.breaker_failures = int((deployment or {}).get("failedTasks") or 0)
    breaker = record.configuration.get("deploymentCircuitBreaker") or {}
    if not breaker.get("enable") or not record.breaker_tripped:
        return False
    reason = (f"Service deployment rolled back because the circuit breaker threshold was exceeded: "
              f"{record.breaker_failures} tasks of the new service revision failed to start or failed their "
              "health checks.")  # fmt: skip
    if not breaker.get("rollback"):
        reason = reason.replace("rolled back", "stopped", 1)
    _fail(record, reason, rollback=bool(breaker.get("rollback")))
    return True


def _alarmed(engine: NativeDeployments, record: ServiceDeployment) -> bool:
    alarms = record.configuration.get("alarms") or {}
    if not alarms.get("enable") or not alarms.get("alarmNames"):
        return False
    from moto.cloudwatch.models import cloudwatch_backends

    try:
        known = cloudwatch_backends[engine.backend.account_id][engine.backend.region_name].alarms
    except KeyError:
        return False
    fired = [n for n in alarms["alarmNames"] if n in known and known[n].state_value == "ALARM"]
    if not fired:
        return False
    record.triggered_alarms = fired
    verb = "rolled back" if alarms.get("rollback") else "stopped"
    _fail(record, f"Service deployment {verb} because the CloudWatch alarm(s) {', '.join(fired)} went into "
                  "ALARM state.", rollback=bool(alarms.get("rollback")))  # fmt: skip
    return True


def _fail(record: ServiceDeployment, reason: str, *, rollback: bool) -> None:
    record.status_reason = reason
    if rollback:
        record.status = "ROLLBACK_REQUESTED"
        record.touch()
    else:
        _finish(record, "STOPPED")


def _begin_rollback(engine: NativeDeployments, service: Any, record: ServiceDeployment) -> None:
    traffic = record.traffic
    assert traffic is not None
    blue = record.source[0]
    elbv2 = elb.elbv2(engine.backend.account_id, engine.backend.region_name)
    shift(elbv2, traffic.production_rule, traffic.blue_group, traffic.green_group, 0.0)
    if traffic.test_rule:
        shift(elbv2, traffic.test_rule, traffic.blue_group, traffic.green_group, 0.0)
    traffic.production = traffic.test = 0.0
    for other in (record.target, *record.source[1:]):
        _stop_owner(engine, other.owner, f"Service deployment rolled back (deployment {record.target.owner})")
    owners = {record.target.owner, *(r.owner for r in record.source[1:])}
    service.deployments[:] = [d for d in service.deployments if d["id"] not in owners]
    for deployment in service.deployments:
        if deployment["id"] == blue.owner:
            deployment.update(status="PRIMARY", rolloutState="COMPLETED", updatedAt=utcnow(),
                              rolloutStateReason=f"ECS deployment {blue.owner} completed.")  # fmt: skip
    service.task_definition = blue.task_definition
    record.status = "ROLLBACK_IN_PROGRESS"
    record.rollback = {"reason": record.status_reason or "Service deployment rolled back.", "startedAt": utcnow(),
                       "serviceRevisionArn": blue.arn}  # fmt: skip
    record.touch()
    engine.due(record, 0.0)


def _succeed(engine: NativeDeployments, service: Any, record: ServiceDeployment) -> None:
    owner = record.target.owner
    service.deployments[:] = [d for d in service.deployments if d["id"] == owner]
    for deployment in service.deployments:
        deployment.update(status="PRIMARY", rolloutState="COMPLETED", updatedAt=utcnow(),
                          rolloutStateReason=f"ECS deployment {owner} completed.")  # fmt: skip
    engine.current[engine.key(service)] = record.target.arn
    _finish(record, "SUCCESSFUL")


def _finish(record: ServiceDeployment, status: str) -> None:
    now = utcnow()
    record.status = status
    record.finished_at = now
    if status == "STOPPED":
        record.stopped_at = now
    record.touch()
