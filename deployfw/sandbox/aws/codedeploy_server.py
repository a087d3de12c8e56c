"""The EC2/on-premises (Server) platform of the sandbox's CodeDeploy: which instances, in what order, when.

At the start of a deployment CodeDeploy resolves the instances the group's tag filters select
(registered on-premises instances, running EC2 instances) - none fails it with NO_INSTANCES -
and turns the deployment config's minimum healthy hosts into a number ``M`` of a fleet of ``N``:
``HOST_COUNT`` as given, ``FLEET_PERCENT`` rounded up, OneAtATime's ``MOST_CONCURRENCY`` as
"all but one". ``M >= N`` (other than OneAtATime) fails at once with HEALTH_CONSTRAINTS_INVALID.
It then deploys to ``N - M`` instances at a time (at least one), unhealthy ones first, each
through the instance's agent (:mod:`deployfw.sandbox.fleet`); the agents run the scripts for
real. As instances fail, the healthy count is ``N - failed``; as soon as it is down to ``M``
while instances remain, the deployment stops starting new ones and fails with
HEALTH_CONSTRAINTS (so OneAtATime stops at the first failure - except on the last instance,
where the deployment still succeeds, as CodeDeploy documents). At the end it succeeds when at
least ``max(M, 1)`` instances succeeded.

Per-instance state is served as CodeDeploy serves it: ListDeploymentTargets,
GetDeploymentTarget and BatchGetDeploymentTargets return ``instanceTarget`` objects with each
lifecycle event's status and diagnostics (errorCode, scriptName, message, logTail).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from moto.core.utils import utcnow

from deployfw.sandbox.aws import codedeploy_errors as errors
from deployfw.sandbox.aws import context
from deployfw.sandbox.aws.codedeploy_records import of_group
from deployfw.sandbox.fleet import Agent, AgentJob, Fleet, Instance
from deployfw.serverspec import IN_PLACE_EVENTS

if TYPE_CHECKING:
    from moto.codedeploy.models import DeploymentGroup, DeploymentInfo

    from deployfw.sandbox.aws.codedeploy_progress import Progress

NO_INSTANCES = (
    "The deployment failed because no instances were found for your deployment group. Check your deployment group "
    "settings to make sure the tags for your Amazon EC2 instances or Auto Scaling groups correctly identify the "
    "instances you want to deploy to, and then try again."
)
HEALTH_CONSTRAINTS = (
    "The overall deployment failed because too many individual instances failed deployment, too few healthy "
    "instances are available for deployment, or some instances in your deployment group are experiencing problems."
)


@dataclass
class InstanceRun:
    """One instance's part of one deployment, as ``instanceTarget`` reports it."""

    name: str
    kind: str
    status: str = "Pending"
    events: list[dict[str, Any]] = field(default_factory=list)
    updated: datetime = field(default_factory=utcnow)

    def target(self, deployment_id: str, region: str, account: str) -> dict[str, Any]:
        arn = (
            f"arn:aws:ec2:{region}:{account}:instance/{self.name}"
            if self.kind == "ec2"
            else f"arn:aws:codedeploy:{region}:{account}:instance/{self.name}"
        )
        return {
            "deploymentTargetType": "InstanceTarget",
            "instanceTarget": {
                "deploymentId": deployment_id,
                "targetId": self.name,
                "targetArn": arn,
                "status": self.status,
                "lastUpdatedAt": self.updated,
                "lifecycleEvents": [dict(e) for e in self.events],
            },
        }


@dataclass
class ServerRun:
    """A Server deployment in progress: its instances, ``M``, the batch size and the agents' job."""

    job: AgentJob
    instances: dict[str, InstanceRun]
    minimum: int
    batch: int
    abort: threading.Event = field(default_factory=threading.Event)

    def count(self, status: str) -> int:
        return sum(1 for i in self.instances.values() if i.status == status)


def runs(backend: Any) -> dict[str, ServerRun]:
    """The backend's Server deployments by id (kept beside moto's DeploymentInfo)."""
    found: dict[str, ServerRun] = backend.__dict__.setdefault("server_runs", {})
    return found


def fleet() -> Fleet | None:
    return context.current().fleet


# -- the lifecycle ---------------------------------------------------------------------------------


def step(backend: Any, deployment: DeploymentInfo, progress: Progress) -> dict[str, str] | None:
    """Perform what is due now (the caller holds the sandbox lock); ``errorInformation`` on failure."""
    if progress.stage == "start":
        return _start(backend, deployment, progress)
    if progress.stage == "unhealthy":
        return {"code": "HEALTH_CONSTRAINTS", "message": f"{HEALTH_CONSTRAINTS} (deployfw sandbox fault "
                                                         f"deploy:{progress.module})"}  # fmt: skip
    if progress.stage == "instances":
        return _schedule(backend, deployment, progress)
    return None


def _start(backend: Any, deployment: DeploymentInfo, progress: Progress) -> dict[str, str] | None:
    revision = deployment.revision or {}
    if revision.get("revisionType") != "S3":
        return {"code": "INVALID_REVISION", "message": "The sandbox deploys S3 revisions to servers (revisionType S3)"}
    location = revision.get("s3Location") or {}
    if not _s3_object_exists(backend.account_id, location):
        return {
            "code": "REVISION_MISSING",
            "message": f"The revision s3://{location.get('bucket')}/"
            f"{location.get('key')} does not exist or is not accessible.",
        }
    if progress.fail_health:
        progress.stage = "unhealthy"
        return None
    selected = select_instances(backend, deployment.deployment_group)
    if not selected:
        return {"code": "NO_INSTANCES", "message": NO_INSTANCES}
    config = backend.get_deployment_config(str(deployment.deployment_config_name))
    total = len(selected)
    minimum = minimum_healthy(config.minimum_healthy_hosts or {}, total)
    if minimum >= total and (config.minimum_healthy_hosts or {}).get("type") != "MOST_CONCURRENCY":
        return {"code": "HEALTH_CONSTRAINTS_INVALID", "message": (
            f"The deployment failed because the minimum number of healthy instances ({minimum}) of deployment config "
            f"{config.name} is not less than the {total} instance(s) of the deployment group.")}  # fmt: skip
    group = deployment.deployment_group
    job = AgentJob(
        deployment_id=deployment.deployment_id,
        application=deployment.application_name,
        group=deployment.deployment_group_name,
        group_id=group.deployment_group_id,
        bucket=str(location.get("bucket")),
        key=str(location.get("key")),
        etag=str(location["eTag"]).strip('"') if location.get("eTag") else None,
        version=location.get("version"),
        file_exists_behavior=deployment.file_exists_behavior,
        ignore_application_stop_failures=bool(deployment.ignore_application_stop_failures),
    )
    ordered = sorted(selected, key=lambda i: (i.revision is not None, i.revision == _locator(group), i.name))
    instances = {i.name: InstanceRun(i.name, i.kind) for i in ordered}
    runs(backend)[deployment.deployment_id] = ServerRun(job, instances, minimum, max(1, total - minimum))
    progress.stage = "instances"
    _overview(deployment, runs(backend)[deployment.deployment_id])
    return _schedule(backend, deployment, progress)


def _schedule(backend: Any, deployment: DeploymentInfo, progress: Progress) -> dict[str, str] | None:
    run = runs(backend)[deployment.deployment_id]
    _overview(deployment, run)
    total, failed = len(run.instances), run.count("Failed")
    running, pending = run.count("InProgress"), run.count("Pending")
    stopping = failed > 0 and total - failed <= run.minimum and (pending or running)
    if stopping:
        for instance in run.instances.values():
            if instance.status == "Pending":
                instance.status = "Skipped"
                instance.events = [{"lifecycleEventName": e, "status": "Skipped"} for e in IN_PLACE_EVENTS]
        pending = 0
    if pending:
        for instance in [i for i in run.instances.values() if i.status == "Pending"][: max(0, run.batch - running)]:
            _launch(backend, deployment, run, instance)
        _overview(deployment, run)
        return None
    if running:
        return None
    # Stopped early, fewer than M can have succeeded (N - failed <= M with instances left over).
    if run.count("Succeeded") < max(run.minimum, 1):
        return {"code": "HEALTH_CONSTRAINTS", "message": HEALTH_CONSTRAINTS}
    progress.stage = "done"
    return None


def _launch(backend: Any, deployment: DeploymentInfo, run: ServerRun, target: InstanceRun) -> None:
    """Hand the instance its part: the fleet's worker for that instance runs the agent."""
    target.status = "InProgress"
    target.updated = utcnow()
    target.events = [{"lifecycleEventName": e, "status": "Pending"} for e in IN_PLACE_EVENTS]
    ctx = context.current()
    servers = ctx.fleet
    deployment_id = deployment.deployment_id
    locator = run.job.locator

    def sink(event: str, status: str, diagnostics: Mapping[str, Any] | None) -> None:
        with ctx.lock:
            row = next((e for e in target.events if e["lifecycleEventName"] == event), None)
            if row is None:
                return
            now = utcnow()
            row["status"] = status
            if status == "InProgress":
                row["startTime"] = now
            elif status in ("Succeeded", "Failed"):
                row.setdefault("startTime", now)
                row["endTime"] = now
            if diagnostics is not None:
                row["diagnostics"] = dict(diagnostics)
            target.updated = now

    def work(instance: Instance) -> None:
        ok = False
        try:
            if instance.error or instance.host is None:
                sink("ApplicationStop", "InProgress", None)
                sink("ApplicationStop", "Failed", {"errorCode": "UnknownError", "scriptName": "",
                                                   "message": f"the instance did not start: {instance.error}",
                                                   "logTail": ""})  # fmt: skip
            else:
                ok = Agent(instance, _fetcher(backend.account_id), ctx.clock).deploy(run.job, sink, run.abort)
        finally:
            with ctx.lock:
                for row in target.events:
                    if row["status"] in ("Pending", "InProgress"):
                        row["status"] = "Skipped" if row["status"] == "Pending" else "Failed"
                target.status = "Succeeded" if ok else "Failed"
                target.updated = utcnow()
                if ok:
                    instance.revision = locator
                progress = backend.progress.get(deployment_id)
                if progress is not None:
                    progress.due = time.monotonic()

    if servers is None:
        target.status = "Failed"
        return
    servers.submit(target.name, work)


def finish(backend: Any, deployment: DeploymentInfo, status: str) -> None:
    """The deployment ended: the overview counts instances; on failure or stop no new instance starts and
    running agents stop between events."""
    run = runs(backend).get(deployment.deployment_id)
    if run is None:
        return
    if status != "Succeeded":
        run.abort.set()
    for instance in run.instances.values():
        if instance.status == "Pending":
            instance.status = "Skipped"
            instance.events = [{"lifecycleEventName": e, "status": "Skipped"} for e in IN_PLACE_EVENTS]
    _overview(deployment, run)


def _overview(deployment: DeploymentInfo, run: ServerRun) -> None:
    overview = deployment.deployment_overview
    for status in ("Pending", "InProgress", "Succeeded", "Failed", "Skipped"):
        overview[status] = run.count(status)
    overview["Ready"] = 0


def _locator(group: DeploymentGroup) -> str | None:
    location = (of_group(group).last_successful_revision or {}).get("s3Location") or {}
    if not location.get("bucket"):
        return None
    return f"s3://{location['bucket']}/{location['key']}@{str(location.get('eTag') or '-').strip(chr(34))}"


# -- minimum healthy hosts ----------------------------------------------------------------------------


def minimum_healthy(rule: Mapping[str, Any], total: int) -> int:
    """``M`` for a fleet of ``total`` instances (see the module docstring)."""
    kind, value = rule.get("type"), int(rule.get("value") or 0)
    if kind == "MOST_CONCURRENCY":
        return max(0, total - value)
    if kind == "FLEET_PERCENT":
        return math.ceil(total * value / 100)
    return value


# -- which instances a group selects ------------------------------------------------------------------


def _matches(tags: Mapping[str, str], tag_filter: Mapping[str, Any]) -> bool:
    key, value, kind = tag_filter.get("Key"), tag_filter.get("Value"), tag_filter.get("Type") or "KEY_AND_VALUE"
    if kind == "KEY_ONLY":
        return key in tags
    if kind == "VALUE_ONLY":
        return value in tags.values()
    return isinstance(key, str) and key in tags and tags[key] == value


def _selects(tags: Mapping[str, str], filters: list[Any] | None, tag_set: Mapping[str, Any] | None, key: str) -> bool:
    """A list of filters selects on any of them; a tag set on one filter of every one of its lists."""
    if filters:
        return any(_matches(tags, f) for f in filters)
    groups = [g for g in ((tag_set or {}).get(key) or []) if g]
    return bool(groups) and all(any(_matches(tags, f) for f in group) for group in groups)


def select_instances(backend: Any, group: Any) -> list[Instance]:
    """The instances the group's tag filters select, each in the fleet (EC2 instances join it here)."""
    servers = fleet()
    if servers is None:
        return []
    found: list[Instance] = []
    for name, registered in sorted(on_premises(backend).items()):
        if registered.deregister_time is None and _selects(
            registered.tag_map, group.on_premises_instance_tag_filters, group.on_premises_tag_set,
            "onPremisesTagSetList",
        ):  # fmt: skip
            found.append(servers.add(name, "on-premises", registered.tag_map))
    for instance_id, tags in sorted(_ec2_instances(backend).items()):
        if _selects(tags, group.ec2_tag_filters, group.ec2_tag_set, "ec2TagSetList"):
            found.append(servers.add(instance_id, "ec2", tags))
    return found


def _ec2_instances(backend: Any) -> dict[str, dict[str, str]]:
    """Running EC2 instances of the backend's region, with their tags."""
    from moto.ec2.models import ec2_backends

    ec2 = ec2_backends[backend.account_id][backend.region_name]
    found = {}
    for reservation in ec2.all_reservations():
        for instance in reservation.instances:
            if instance.state == "running":
                found[instance.id] = {t["key"]: t["value"] for t in instance.get_tags()}
    return found


# -- on-premises instances ------------------------------------------------------------------------------


@dataclass
class OnPremises:
    """A registered on-premises instance, as GetOnPremisesInstance describes it."""

    name: str
    arn: str
    iam_session_arn: str | None
    iam_user_arn: str | None
    register_time: datetime = field(default_factory=utcnow)
    deregister_time: datetime | None = None
    tags: list[dict[str, str]] = field(default_factory=list)

    @property
    def tag_map(self) -> dict[str, str]:
        return {t["Key"]: t.get("Value", "") for t in self.tags}

    def info(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "instanceName": self.name,
            "instanceArn": self.arn,
            "registerTime": self.register_time,
            "tags": [dict(t) for t in self.tags],
        }
        if self.iam_session_arn:
            doc["iamSessionArn"] = self.iam_session_arn
        if self.iam_user_arn:
            doc["iamUserArn"] = self.iam_user_arn
        if self.deregister_time is not None:
            doc["deregisterTime"] = self.deregister_time
        return doc


def on_premises(backend: Any) -> dict[str, OnPremises]:
    found: dict[str, OnPremises] = backend.__dict__.setdefault("on_premises", {})
    return found


def register(backend: Any, name: str, session_arn: str | None, user_arn: str | None) -> None:
    """RegisterOnPremisesInstance: exactly one of the IAM session and user ARNs; the name unique."""
    if not name:
        raise errors.CodeDeployError("InstanceNameRequiredException", "An on-premises instance name is required.")
    if bool(session_arn) == bool(user_arn):
        raise errors.CodeDeployError(
            "MultipleIamArnsProvidedException" if session_arn else "IamArnRequiredException",
            "Register an on-premises instance with either an IAM session ARN or an IAM user ARN.",
        )
    existing = on_premises(backend).get(name)
    if existing is not None and existing.deregister_time is None:
        raise errors.CodeDeployError("InstanceNameAlreadyRegisteredException",
                                     f"The on-premises instance name {name} is already registered.")  # fmt: skip
    arn = f"arn:aws:codedeploy:{backend.region_name}:{backend.account_id}:instance/{name}"
    on_premises(backend)[name] = OnPremises(name, arn, session_arn, user_arn)
    servers = fleet()
    if servers is not None:
        servers.add(name, "on-premises", {})


def registered(backend: Any, name: str) -> OnPremises:
    found = on_premises(backend).get(name)
    if found is None:
        raise errors.CodeDeployError("InstanceNotRegisteredException",
                                     f"The on-premises instance {name} is not registered.")  # fmt: skip
    return found


def deregister(backend: Any, name: str) -> None:
    found = registered(backend, name)
    found.deregister_time = utcnow()
    servers = fleet()
    if servers is not None:
        servers.remove(name)


def add_tags(backend: Any, names: list[str], tags: list[dict[str, str]]) -> None:
    for name in names:
        found = registered(backend, name)
        merged = {**found.tag_map, **{t["Key"]: t.get("Value", "") for t in tags}}
        found.tags = [{"Key": k, "Value": v} for k, v in merged.items()]
        servers = fleet()
        if servers is not None and found.deregister_time is None:
            servers.add(name, "on-premises", merged)


def remove_tags(backend: Any, names: list[str], tags: list[dict[str, str]]) -> None:
    for name in names:
        found = registered(backend, name)
        gone = {t["Key"] for t in tags}
        found.tags = [t for t in found.tags if t["Key"] not in gone]
        servers = fleet()
        if servers is not None and found.deregister_time is None:
            servers.add(name, "on-premises", found.tag_map)


def list_on_premises(backend: Any, status: str | None, filters: list[dict[str, Any]] | None) -> list[str]:
    """ListOnPremisesInstances: by registration status and tag filters (any of them)."""
    names = []
    for name, found in sorted(on_premises(backend).items()):
        state = "Deregistered" if found.deregister_time else "Registered"
        if status and state != status:
            continue
        if filters and not any(_matches(found.tag_map, f) for f in filters):
            continue
        names.append(name)
    return names


# -- deployment targets --------------------------------------------------------------------------------


def target_ids(backend: Any, deployment: DeploymentInfo, filters: Mapping[str, list[str]] | None) -> list[str]:
    run = runs(backend).get(deployment.deployment_id)
    if run is None:
        return []
    wanted = set((filters or {}).get("TargetStatus") or [])
    return [name for name, row in run.instances.items() if not wanted or row.status in wanted]


def target(backend: Any, deployment: DeploymentInfo, target_id: str) -> dict[str, Any]:
    run = runs(backend).get(deployment.deployment_id)
    row = run.instances.get(target_id) if run else None
    if row is None:
        raise errors.CodeDeployError("DeploymentTargetDoesNotExistException",
                                     f"The deployment target {target_id} does not exist in deployment "
                                     f"{deployment.deployment_id}.")  # fmt: skip
    return row.target(deployment.deployment_id, backend.region_name, backend.account_id)


# -- the bundle in the sandbox's S3 --------------------------------------------------------------------


def _s3_object_exists(account_id: str, location: Mapping[str, Any]) -> bool:
    try:
        _get_object(account_id, str(location.get("bucket", "")), str(location.get("key", "")), location.get("version"))
    except LookupError:
        return False
    return True


def _get_object(account_id: str, bucket: str, key: str, version: str | None) -> tuple[bytes, str]:
    from moto.s3.models import s3_backends

    backend = s3_backends[account_id]["aws"]
    try:
        found = backend.get_object(bucket, key, version)
    except Exception as exc:
        raise LookupError(f"{type(exc).__name__}: {exc}") from None
    if found is None:
        raise LookupError(f"NoSuchKey: s3://{bucket}/{key}")
    return bytes(found.value), str(found.etag).strip('"')


def _fetcher(account_id: str) -> Any:
    def fetch(bucket: str, key: str, version: str | None) -> tuple[bytes, str]:
        with context.current().lock:
            return _get_object(account_id, bucket, key, version)

    return fetch
