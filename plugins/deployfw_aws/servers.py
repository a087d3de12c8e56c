"""``codedeploy-server``: deploy a revision bundle to EC2 and on-premises instances through CodeDeploy.

One deploy, in order:

1. the revision is the bundle the ``s3`` registry pinned (``s3://BUCKET/KEY@ETAG``); without one
   nothing is attempted;
2. GetDeploymentGroup: it must be on the Server platform; its last attempt may be this run's own
   (a retried run), and an active deployment someone else started is waited for first;
3. CreateDeployment - revision S3/zip with the ETag, the deployment config and
   ``fileExistsBehavior`` from modules.yaml, ``ignoreApplicationStopFailures``, auto-rollback on
   failure and on stop, the run's marker in the description - exactly once
   (:mod:`.codedeploy_calls`);
4. follow it with a deadline: GetDeployment for the whole, ListDeploymentTargets +
   BatchGetDeploymentTargets for each instance, logging which instance is in which lifecycle
   event as it changes;
5. on failure, name each failed instance, its lifecycle event, script, exit code and the last
   lines of the script's output from CodeDeploy's diagnostics - not only "HEALTH_CONSTRAINTS" -
   and follow the automatic rollback deployment until the previous revision is back;
6. on cancel or timeout: StopDeployment with rollback, followed the same way.

A deploy keeps the revision in its state record (``extra.revision``), which is what ``rollback``
deploys again (:meth:`ServerDeploy.redeploy`) and ``status`` compares with the group's target
revision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from deployfw.aws.clients import Aws, AwsError, aws_for
from deployfw.backends import BundleLocation, DeployOutcome, LiveCheck, ModuleJob
from deployfw.errors import InputError, Problem
from deployfw_aws import codedeploy_calls as calls
from deployfw_aws import server_preflight
from deployfw_aws.deploy_common import Paced, Wait, minutes
from deployfw_aws.ecs_deployer import NO_RESOURCE
from deployfw_aws.s3registry import object_etag
from deployfw_aws.server_target import DEFAULT_TIMEOUT_MINUTES, SERVER_CONFIGS, ServerTarget, server_target

if TYPE_CHECKING:
    from deployfw.config import Config, Module
    from deployfw.iam.needs import IamNeed, IamScope
    from deployfw.state import DeployRecord

TARGET_BATCH = 25  # BatchGetDeploymentTargets takes at most 25 ids
LOG_TAIL_LINES = 12


@dataclass
class Instances:
    """What the deploy knows of each instance target, for the log and the report."""

    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen: dict[str, str] = field(default_factory=dict)

    def update(self, targets: list[dict[str, Any]], job: ModuleJob) -> bool:
        """Take the latest targets; log (and mark on the report's timeline) each instance whose lifecycle
        position changed. True when any did."""
        changed = False
        for target in targets:
            instance = target.get("instanceTarget") or {}
            name = str(instance.get("targetId") or "?")
            events = instance.get("lifecycleEvents") or []
            status = str(instance.get("status") or "Unknown")
            failed = next((e for e in events if e.get("status") == "Failed"), None)
            self.rows[name] = {
                "id": name,
                "status": status,
                "failed_event": failed.get("lifecycleEventName") if failed else None,
                "_events": events,
            }
            running = next((e["lifecycleEventName"] for e in events if e.get("status") == "InProgress"), None)
            where = f"{running} ({status})" if running else status
            if self.seen.get(name) != where:
                self.seen[name] = where
                job.log(f"instance {name}: {where}")
                job.mark("instance", id=name, status=status, event=running or (failed or {}).get("lifecycleEventName"))
                changed = True
        return changed

    def report(self) -> list[dict[str, Any]]:
        return [{k: v for k, v in row.items() if not k.startswith("_")} for _, row in sorted(self.rows.items())]

    def failures(self) -> list[str]:
        """One explanation per failed instance: event, script, error code, message, log tail."""
        out = []
        for name, row in sorted(self.rows.items()):
            if row["status"] != "Failed":
                continue
            event = next((e for e in row["_events"] if e.get("status") == "Failed"), None)
            if event is None:
                out.append(f"instance {name} failed")
                continue
            diagnostics = event.get("diagnostics") or {}
            script = diagnostics.get("scriptName")
            code = diagnostics.get("errorCode")
            text = f"instance {name} failed in {event.get('lifecycleEventName')}"
            if script:
                text += f", script {script}"
            if code or diagnostics.get("message"):
                text += f": {code or 'Error'}: {diagnostics.get('message') or ''}".rstrip()
            tail = _tail(diagnostics.get("logTail"))
            if tail:
                text += "\n  last output:\n" + "\n".join(f"    {line}" for line in tail)
            out.append(text)
        return out


def _tail(log_tail: str | None) -> list[str]:
    lines = [line for line in (log_tail or "").splitlines() if line.strip()]
    return lines[-LOG_TAIL_LINES:]


def revision_of(location: BundleLocation) -> dict[str, Any]:
    """CodeDeploy's RevisionLocation for a bundle pinned by ETag."""
    return {
        "revisionType": "S3",
        "s3Location": {"bucket": location.bucket, "key": location.key, "bundleType": "zip", "eTag": location.etag},
    }


def location_of(revision: dict[str, Any] | None) -> BundleLocation | None:
    """The bundle a RevisionLocation (a group's target revision, a deployment's revision) names."""
    s3 = (revision or {}).get("s3Location") or {}
    if not s3.get("bucket") or not s3.get("key"):
        return None
    return BundleLocation(str(s3["bucket"]), str(s3["key"]), str(s3.get("eTag") or "").strip('"') or "-")


class ServerDeploy(Paced):
    """``codedeploy-server``; created per run by the plugin's factory (no AWS calls in the constructor)."""

    backend_id = "codedeploy-server"

    # -- plan ------------------------------------------------------------------------------

    def steps(self, module: Module, config: Config) -> Sequence[str]:
        target = server_target(config, module)
        config_name = target.deployment_config or "the group's deployment config"
        wait = f"{target.timeout_minutes or DEFAULT_TIMEOUT_MINUTES:g} min"
        return [
            f"check {target.appspec} against the bundle folder {target.bundle or '.'}",
            f"create CodeDeploy deployment in {target.where} (Server platform) with {config_name}, "
            f"revision = the module's bundle pinned by ETag",
            f"follow every instance's lifecycle events for up to {wait}; on failure name instance, event, "
            "script and its output; stop and roll back on failure, timeout or cancel",
        ]

    def preflight(self, module: Module, config: Config) -> Sequence[Problem]:
        """The AppSpec and options, from the repository alone (the account is :meth:`live_checks`' part)."""
        return server_preflight.static_problems(config, module, server_target(config, module))

    def live_checks(self, job: ModuleJob) -> list[LiveCheck]:
        """The group, its deployment config and the instances it selects, read-only (``plan``, ``doctor``)."""
        return server_preflight.live_checks(job.ctx, server_target(job.ctx.config, job.module))

    def iam_needs(self, scope: IamScope) -> Sequence[IamNeed]:
        """CodeDeploy: read the group, create and follow the deployment and its instance targets, stop it;
        and the read-only checks of ``plan``. The rollback's look at the recorded bundle (ListObjectsV2) is
        the ``s3`` registry's ``s3:ListBucket``, which a codedeploy-server module always has.
        """
        from deployfw.iam.needs import IamNeed
        assert scope.module is not None
        target = server_target(scope.config, scope.module)
        group = scope.arn("codedeploy", f"deploymentgroup:{target.application}/{target.deployment_group}")
        needs = [
            IamNeed("CodeDeployServerDeploy",
                    ("codedeploy:CreateDeployment", "codedeploy:GetDeployment", "codedeploy:GetDeploymentGroup",
                     "codedeploy:ListDeployments"),
                    (group,), f"create and follow deployments in {target.where}, find one a killed run left"),
            IamNeed("CodeDeployStop", ("codedeploy:StopDeployment",), ("*",),
                    "stop a deployment with rollback on cancel or timeout", wildcard=NO_RESOURCE),
            IamNeed("CodeDeployServerTargets",
                    ("codedeploy:BatchGetDeploymentTargets", "codedeploy:ListDeploymentTargets"), ("*",),
                    "follow each instance's lifecycle events; name the failing one, its script and output",
                    wildcard=NO_RESOURCE),
            IamNeed("CodeDeployServerInstances", ("codedeploy:ListOnPremisesInstances",), ("*",),
                    "plan: check the group's tag filters select an instance", wildcard=NO_RESOURCE),
        ]
        if target.deployment_config and target.deployment_config not in SERVER_CONFIGS:
            config = scope.arn("codedeploy", f"deploymentconfig:{target.deployment_config}")
            needs.append(IamNeed("CodeDeployServerConfig", ("codedeploy:GetDeploymentConfig",), (config,),
                                 f"plan: check {target.deployment_config} exists"))  # fmt: skip
        if target.ec2_tags:
            needs.append(IamNeed("Ec2DescribeInstances", ("ec2:DescribeInstances",), ("*",),
                                 "plan: check the group's EC2 tag filters select a running instance",
                                 wildcard=NO_RESOURCE))  # fmt: skip
        return needs

    # -- run -------------------------------------------------------------------------------

    def _details(self, target: ServerTarget) -> dict[str, Any]:
        return {
            "application": target.application,
            "deployment_group": target.deployment_group,
            "deployment_config": target.deployment_config,
            "status": None,
            "instances": [],
            "error_information": None,
        }

    def deploy(self, job: ModuleJob) -> DeployOutcome:
        target = server_target(job.ctx.config, job.module)
        details = self._details(target)
        location = BundleLocation.parse(job.artifact_uri or "")
        if location is None:
            return DeployOutcome(False, f"no revision bundle to deploy (artifact {job.artifact_uri!r}); "
                                        "codedeploy-server needs registry: {backend: s3, bucket: ...}",
                                 details=details)  # fmt: skip
        return self._guarded(job, target, location, details)

    def redeploy(self, job: ModuleJob, record: DeployRecord) -> DeployOutcome:
        """Deploy the recorded revision again (``deployfw rollback``): the same bucket, key and ETag."""
        target = server_target(job.ctx.config, job.module)
        details = self._details(target)
        location = BundleLocation.parse(str(record.extra.get("revision") or ""))
        if location is None:
            message = f"the deploy by run {record.run_id} recorded no revision bundle"
            return DeployOutcome(False, message, details=details)
        try:
            now = object_etag(aws_for(job.ctx), location.bucket, location.key)
        except AwsError as exc:
            return DeployOutcome(False, f"revision s3://{location.bucket}/{location.key}: {exc}", details=details)
        if now is None:
            return DeployOutcome(False, f"revision s3://{location.bucket}/{location.key} is gone", details=details)
        if now != location.etag:
            return DeployOutcome(False, f"s3://{location.bucket}/{location.key} was overwritten since run "
                                        f"{record.run_id} deployed it (ETag is no longer {location.etag})",
                                 details=details)  # fmt: skip
        job.log(f"redeploying revision {location}")
        return self._guarded(job, target, location, details)

    def _guarded(self, job: ModuleJob, target: ServerTarget, location: BundleLocation, details: dict[str, Any]
                 ) -> DeployOutcome:  # fmt: skip
        extra = {"revision": str(location)}
        try:
            return self._deploy(job, aws_for(job.ctx), target, location, details, extra)
        except (InputError, AwsError) as exc:
            return DeployOutcome(False, str(exc), details.get("id"), details=details, extra=extra)

    def _deploy(
        self,
        job: ModuleJob,
        aws: Aws,
        target: ServerTarget,
        location: BundleLocation,
        details: dict[str, Any],
        extra: dict[str, Any],
    ) -> DeployOutcome:
        group = calls.get_group(aws, target.application, target.deployment_group)
        platform = group.get("computePlatform") or "Server"
        if platform != "Server":
            return DeployOutcome(False, f"deployment group {target.where} is on the {platform} platform, "
                                        "not Server (EC2/on-premises)", details=details)  # fmt: skip
        config_name = target.deployment_config or group.get("deploymentConfigName")
        details["deployment_config"] = config_name
        mark = calls.marker(job.ctx, job.module.name)
        seconds = float(target.timeout_minutes or DEFAULT_TIMEOUT_MINUTES) * 60
        deployment_id = self._adopt(aws, group, mark)
        if deployment_id is not None:
            job.log(f"resuming deployment {deployment_id}, which this run ({job.ctx.run_id}) already started")
        else:
            busy = calls.wait_for_others(aws, job, target.where, group, self._wait(seconds, job))
            if busy is not None:
                return DeployOutcome(False, busy, details=details)
            if job.ctx.cancel.is_set():
                return DeployOutcome(False, "cancelled before deploying; nothing changed", details=details)
            if server_preflight.selected_instances(aws, group) == 0:  # CodeDeploy would fail it with NO_INSTANCES
                return DeployOutcome(False, f"the tag filters of deployment group {target.where} select no instance "
                                            f"({server_preflight.describe_filters(group)}); nothing deployed: "
                                            "register and tag the servers, or fix the group's tag filters",
                                     details=details)  # fmt: skip
            job.progress(extra=extra)
            deployment_id = calls.create_once(aws, self._params(target, location, mark), mark=mark, log=job.log,
                                              cancel=job.ctx.cancel, clock=self._clock, sleep=self._sleep,
                                              backoff=self._backoff)  # fmt: skip
        details["id"] = deployment_id
        job.progress(deployment_id=deployment_id, extra=extra)
        job.log(f"deployment {deployment_id} of {location} in {target.where} with {config_name}; "
                f"waiting up to {minutes(seconds)}")  # fmt: skip
        return self._track(job, aws, deployment_id, seconds, details, extra)

    def _params(self, target: ServerTarget, location: BundleLocation, mark: str) -> dict[str, Any]:
        params: dict[str, Any] = {
            "applicationName": target.application,
            "deploymentGroupName": target.deployment_group,
            "revision": revision_of(location),
            "description": f"{mark}: s3://{location.bucket}/{location.key}",
            "ignoreApplicationStopFailures": target.ignore_application_stop_failures,
            "autoRollbackConfiguration": {"enabled": True, "events": calls.ROLLBACK_EVENTS},
        }
        if target.deployment_config:
            params["deploymentConfigName"] = target.deployment_config
        if target.file_exists_behavior:
            params["fileExistsBehavior"] = target.file_exists_behavior
        return params

    def _adopt(self, aws: Aws, group: dict[str, Any], mark: str) -> str | None:
        """This run's deployment when the group's latest attempt is ours, running or done (a retried run)."""
        last = group.get("lastAttemptedDeployment") or {}
        if last.get("status") not in (*calls.ACTIVE, "Succeeded") or not last.get("deploymentId"):
            return None  # a failed or stopped attempt is retried with a new deployment
        info = calls.get_deployment(aws, str(last["deploymentId"]))
        return str(info["deploymentId"]) if mark in (info.get("description") or "") else None

    def _wait(self, seconds: float, job: ModuleJob) -> Wait:
        return self.wait(seconds, job.ctx.cancel)

    # -- following a deployment ----------------------------------------------------------------

    def _track(
        self, job: ModuleJob, aws: Aws, deployment_id: str, seconds: float, details: dict[str, Any],
        extra: dict[str, Any],
    ) -> DeployOutcome:  # fmt: skip
        wait = self._wait(seconds, job)
        instances = Instances()
        status: str | None = None
        while True:
            wait.pause()  # first: no deployment is over the moment it is created
            info = calls.get_deployment(aws, deployment_id)
            if info["status"] != status:
                status = info["status"]
                job.log(f"deployment {deployment_id}: {status}")
                job.mark("status", status=status)
                wait.changed()
            if instances.update(self._targets(aws, deployment_id), job):
                wait.changed()
            details["instances"] = instances.report()
            if status in calls.TERMINAL:
                return self._outcome(job, aws, info, instances, details, extra)
            if job.ctx.cancel.is_set() or wait.expired:
                reason = "cancelled" if job.ctx.cancel.is_set() else f"timed out after {minutes(seconds)}"
                return self._stop(job, aws, deployment_id, instances, details, extra, reason)

    def _targets(self, aws: Aws, deployment_id: str) -> list[dict[str, Any]]:
        """Every instance target of the deployment with its lifecycle events (paginated, 25 per batch)."""
        ids: list[str] = []
        token: str | None = None
        while True:
            paging: dict[str, Any] = {"nextToken": token} if token else {}
            page = aws.call("codedeploy", "list_deployment_targets", deploymentId=deployment_id, **paging)
            ids += page.get("targetIds") or []
            token = page.get("nextToken")
            if not token:
                break
        targets: list[dict[str, Any]] = []
        for start in range(0, len(ids), TARGET_BATCH):
            batch = aws.call("codedeploy", "batch_get_deployment_targets", deploymentId=deployment_id,
                             targetIds=ids[start : start + TARGET_BATCH])  # fmt: skip
            targets += batch.get("deploymentTargets") or []
        return targets

    def _stop(
        self, job: ModuleJob, aws: Aws, deployment_id: str, instances: Instances, details: dict[str, Any],
        extra: dict[str, Any], reason: str,
    ) -> DeployOutcome:  # fmt: skip
        follow = self.wait(calls.STOP_WAIT_SECONDS, calls.never())
        info, error = calls.stop_and_follow(aws, job, deployment_id, follow, reason)
        if info is None:
            details["status"] = "Unknown"
            return DeployOutcome(False, error, deployment_id, details=details, extra=extra)
        instances.update(self._targets(aws, deployment_id), job)
        details["instances"] = instances.report()
        if info["status"] == "Succeeded":  # it finished before the stop arrived: say so, it stays deployed
            details["status"] = "Succeeded"
            message = f"{reason} after deployment {deployment_id} had already succeeded; it stays deployed"
            return DeployOutcome(False, message, deployment_id, live=True, details=details, extra=extra)
        return self._outcome(job, aws, info, instances, details, extra, reason=reason, stop_requested=True)

    def _outcome(
        self, job: ModuleJob, aws: Aws, info: dict[str, Any], instances: Instances, details: dict[str, Any],
        extra: dict[str, Any], *, reason: str | None = None, stop_requested: bool = False,
    ) -> DeployOutcome:  # fmt: skip
        status, deployment_id = info["status"], info["deploymentId"]
        error = info.get("errorInformation") or None
        rollback = info.get("rollbackInfo") or {}
        rolled_back = bool(rollback.get("rollbackDeploymentId")) or (stop_requested and status == "Stopped")
        details.update(status=status, error_information=error, instances=instances.report())
        if status == "Succeeded" and reason is None:
            job.log(f"deployment {deployment_id} succeeded on {len(instances.rows)} instance(s)")
            return DeployOutcome(True, None, deployment_id, details=details, extra=extra)
        parts = [reason] if reason else []
        if error:
            parts.append(f"{error.get('code', 'ERROR')}: {error.get('message', '')}".strip())
        if not parts:
            parts.append(f"deployment {deployment_id} ended {status}")
        if rollback.get("rollbackDeploymentId"):
            details["rollback_deployment_id"] = rollback["rollbackDeploymentId"]
            parts.append(self._follow_rollback(job, aws, str(rollback["rollbackDeploymentId"]), details))
        elif rolled_back:
            parts.append("stopped; CodeDeploy rolls the instances back to the last successful revision")
        # One line for what happened, then each failed instance with its event, script and output.
        message = "\n".join(["; ".join(parts), *instances.failures()])
        job.log(f"deployment {deployment_id} {status}: {message}")
        return DeployOutcome(False, message, deployment_id, rolled_back=rolled_back, details=details, extra=extra)

    def _follow_rollback(self, job: ModuleJob, aws: Aws, rollback_id: str, details: dict[str, Any]) -> str:
        """Wait (bounded) for CodeDeploy's rollback deployment: "failed" must mean the previous revision is back."""
        follow = self.wait(calls.STOP_WAIT_SECONDS, calls.never())
        job.log(f"rollback deployment {rollback_id} puts the last successful revision back")
        while True:
            info = calls.get_deployment(aws, rollback_id)
            if info["status"] in calls.TERMINAL or follow.expired:
                break
            follow.pause()
        details["rollback_status"] = info["status"]
        job.mark("rolled_back" if info["status"] == "Succeeded" else "rollback_failed", deployment=rollback_id)
        revision = location_of(info.get("revision"))
        what = f"revision {revision}" if revision else "the last successful revision"
        if info["status"] == "Succeeded":
            return f"rolled back by {rollback_id}: {what} is back on the instances"
        return f"rollback deployment {rollback_id} of {what} ended {info['status']}"

    # -- recovery, status ------------------------------------------------------------------------

    def locate(self, job: ModuleJob, run_id: str, task_definition: str | None) -> str | None:
        """The deployment run ``run_id`` created but was killed before recording (its description names the run).

        Server deploys have no task definition; the search costs one or two reads whatever the record says.
        """
        target = server_target(job.ctx.config, job.module)
        aws = aws_for(job.ctx)
        try:
            group = calls.get_group(aws, target.application, target.deployment_group)
        except AwsError:
            return None
        last = (group.get("lastAttemptedDeployment") or {}).get("deploymentId")
        return calls.find_marked(aws, target.application, target.deployment_group,
                                 calls.marker_of(run_id, job.module.name), last_attempt=last)  # fmt: skip

    def recover(self, job: ModuleJob, deployment_id: str) -> DeployOutcome:
        """Follow a deployment a killed run left behind to its end (stopping it on cancel or timeout)."""
        target = server_target(job.ctx.config, job.module)
        details = self._details(target)
        details["id"] = deployment_id
        aws = aws_for(job.ctx)
        try:
            info = calls.get_deployment(aws, deployment_id)
        except AwsError as exc:
            if exc.code == "DeploymentDoesNotExistException":
                return DeployOutcome(False, f"deployment {deployment_id} no longer exists in CodeDeploy",
                                     deployment_id, gone=True)  # fmt: skip
            raise
        location = location_of(info.get("revision"))
        extra = {"revision": str(location)} if location else {}
        seconds = float(target.timeout_minutes or DEFAULT_TIMEOUT_MINUTES) * 60
        if info["status"] in calls.TERMINAL:
            instances = Instances()
            instances.update(self._targets(aws, deployment_id), job)
            return self._outcome(job, aws, info, instances, details, extra)
        job.log(f"deployment {deployment_id} is {info['status']}; waiting up to {minutes(seconds)}")
        return self._track(job, aws, deployment_id, seconds, details, extra)

    def describe(self, job: ModuleJob) -> dict[str, Any]:
        """What the group runs now: its target revision (the last successful one) and its last deployment."""
        target = server_target(job.ctx.config, job.module)
        live: dict[str, Any] = {"backend": self.backend_id, "application": target.application,
                                "deployment_group": target.deployment_group, "task_definition": None}  # fmt: skip
        try:
            group = calls.get_group(aws_for(job.ctx), target.application, target.deployment_group)
        except AwsError as exc:
            if exc.code in ("DeploymentGroupDoesNotExistException", "ApplicationDoesNotExistException"):
                return {**live, "exists": False, "target": f"deployment group {target.where}", "revision": None}
            raise
        location = location_of(group.get("targetRevision"))
        last = group.get("lastAttemptedDeployment") or {}
        live.update(
            exists=True,
            revision=str(location) if location else None,
            last_deployment={"id": last.get("deploymentId"), "status": last.get("status")} if last else None,
            in_progress=last.get("status") in calls.ACTIVE,
        )
        return live
