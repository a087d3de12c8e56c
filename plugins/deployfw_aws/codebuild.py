"""The ``codebuild`` build backend: run the module's buildspec in its CodeBuild project.

One build, in order:

1. load the module's buildspec here (InputError with file and line before any
   AWS call; ``preflight`` reports the same problems at plan time);
2. StartBuild on the module's project (option ``project``, default
   ``MODULE-build``) with ``sourceVersion`` = head commit, the buildspec text as
   ``buildspecOverride`` and the build contract of
   :mod:`deployfw.builds.contract` as PLAINTEXT environment overrides - started
   once, see :mod:`deployfw_aws.codebuild_start`;
3. poll BatchGetBuilds with a backing-off interval (reset when the phase
   changes), log each phase change, and stream the CloudWatch log lines
   through ``job.log`` (:mod:`deployfw_aws.codebuild_logs`);
4. on the run's cancel or past the deadline (``timeout_minutes``): StopBuild,
   wait briefly for CodeBuild to confirm, and report STOPPED / TIMED_OUT;
5. map CodeBuild's status: SUCCEEDED is success; FAILED, FAULT, TIMED_OUT and
   STOPPED are failures, with the failing phase's own message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from deployfw.aws.clients import Aws, AwsError, aws_for
from deployfw.backends import LiveCheck, ModuleJob, StageResult
from deployfw.builds.contract import (
    BuildInputs,
    account_from_uri,
    build_option,
    buildspec_path,
    buildspec_problems,
    contract_env,
    load_module_buildspec,
    timeout_seconds,
    with_endpoint,
)
from deployfw.config import Config, Module
from deployfw.errors import Problem
from deployfw_aws.codebuild_logs import LogTail
from deployfw_aws.codebuild_start import start_once

if TYPE_CHECKING:
    from deployfw.iam.needs import IamNeed, IamScope

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "FAULT", "TIMED_OUT", "STOPPED"})
# CodeBuild accepts build timeouts of 5..2160 minutes; our own deadline enforces shorter ones.
_CODEBUILD_MIN_TIMEOUT, _CODEBUILD_MAX_TIMEOUT = 5, 2160


def project_name(module: Module) -> str:
    """The module's CodeBuild project (option ``project``, default ``MODULE-build``)."""
    return str(build_option(module, "project") or f"{module.name}-build")


def log_group(project: str) -> str:
    """CodeBuild's default CloudWatch Logs group of a project (the one the log tail reads)."""
    return f"/aws/codebuild/{project}"


class CodeBuildBuild:
    """Builds modules in CodeBuild; created per run by the plugin's factory (no AWS calls here).

    ``poll_initial``/``poll_max`` bound the BatchGetBuilds interval and
    ``stop_grace`` how long to wait for CodeBuild to confirm a StopBuild;
    ``clock`` is injectable for tests.
    """

    backend_id = "codebuild"

    def live_checks(self, job: ModuleJob) -> list[LiveCheck]:
        """The module's build project exists; its service role is what builds run (and push) as."""
        from deployfw_aws.live_checks import checking

        project = project_name(job.module)

        def probe() -> LiveCheck:
            found = self.aws.call("codebuild", "batch_get_projects", names=[project]).get("projects") or []
            if not found:
                return LiveCheck("codebuild-project", False, f"CodeBuild project {project} does not exist",
                                 "create it with a service role holding `deployfw iam policy --for codebuild`, or "
                                 "fix the module's build.project")  # fmt: skip
            role = found[0].get("serviceRole") or "no service role"
            return LiveCheck("codebuild-project", True, f"CodeBuild project {project}, builds as {role}")

        return [checking("codebuild-project", probe)]

    def builds_as(self, module: Module, config: Config) -> str:
        """Builds run as the project's service role."""
        return "codebuild"

    def iam_needs(self, scope: IamScope) -> Sequence[IamNeed]:
        """The run starts, follows and stops builds and tails their log; the project's service role writes it."""
        from deployfw.builds.iam import buildspec_needs
        from deployfw.iam.needs import IamNeed

        assert scope.module is not None
        project = project_name(scope.module)
        group = log_group(project)
        return [
            IamNeed("CodeBuildBuilds", ("codebuild:BatchGetBuilds", "codebuild:ListBuildsForProject",
                                        "codebuild:StartBuild", "codebuild:StopBuild"),
                    (scope.arn("codebuild", f"project/{project}"),),
                    f"start {project} once per run, follow it, stop it on cancel or timeout"),
            IamNeed("CodeBuildReadLogs", ("logs:GetLogEvents",),
                    (scope.arn("logs", f"log-group:{group}:log-stream:*"),), f"stream {project}'s build log"),
            IamNeed("CodeBuildWriteLogs", ("logs:CreateLogStream", "logs:PutLogEvents"),
                    (scope.arn("logs", f"log-group:{group}:log-stream:*"),),
                    f"CodeBuild writes {project}'s log as the project's service role", principal="codebuild"),
            IamNeed("CodeBuildLogGroup", ("logs:CreateLogGroup",), (scope.arn("logs", f"log-group:{group}"),),
                    f"CodeBuild creates {project}'s log group on its first build", principal="codebuild",
                    when="setup"),
            # CodeBuild resolves the buildspec's parameter-store variables itself, with GetParameters
            *buildspec_needs(scope, "codebuild", "ssm:GetParameters"),
        ]

    def __init__(
        self,
        ctx: Any,
        *,
        poll_initial: float = 1.0,
        poll_max: float = 5.0,
        stop_grace: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ctx = ctx
        self.poll_initial = poll_initial
        self.poll_max = poll_max
        self.stop_grace = stop_grace
        self.clock = clock

    @property
    def aws(self) -> Aws:
        return aws_for(self.ctx)

    def steps(self, module: Module, config: Config) -> Sequence[str]:
        minutes = timeout_seconds(module) / 60
        return [
            f"start CodeBuild project {project_name(module)} at the head commit with {buildspec_path(module)}",
            f"stream its CloudWatch log and wait (deadline {minutes:g} min)",
        ]

    def preflight(self, module: Module, config: Config) -> Sequence[Problem]:
        return buildspec_problems(config, module)

    def build(self, job: ModuleJob) -> StageResult:
        """Run the module's build in CodeBuild and wait for its outcome."""
        config, module, ctx = job.ctx.config, job.module, job.ctx
        if job.image is None:
            return StageResult(False, "no image reference: the registry stage did not prepare one")
        _, buildspec_text = load_module_buildspec(config, module)
        project = project_name(module)
        account = account_from_uri(job.image.repository_uri) or self.aws.account_id()
        inputs = BuildInputs(job.image, account, ctx.region, ctx.run_id)
        env = with_endpoint(contract_env(module, inputs), ctx.endpoint_url)
        minutes = timeout_seconds(module) / 60
        params = {
            "projectName": project,
            "sourceVersion": ctx.head,
            "buildspecOverride": buildspec_text,
            "environmentVariablesOverride": [
                {"name": k, "value": v, "type": "PLAINTEXT"} for k, v in sorted(env.items())
            ],
            "timeoutInMinutesOverride": int(min(max(minutes, _CODEBUILD_MIN_TIMEOUT), _CODEBUILD_MAX_TIMEOUT)),
        }
        details: dict[str, Any] = {"backend": self.backend_id, "project": project, "build_id": None}
        try:
            build = start_once(
                self.aws, params, run_id=ctx.run_id, module=module.name, log=job.log, wait=ctx.cancel.wait
            )
        except AwsError as exc:
            return StageResult(False, str(exc), {**details, "status": "NOT_STARTED"})
        details["build_id"] = build["id"]
        job.log(f"started CodeBuild build {build['id']}")
        return _Follow(self, job, build, timeout_seconds(module), details).run()


class _Follow:
    """Waits for one started build: polling, phase log, log streaming, stop on cancel or deadline."""

    def __init__(
        self, backend: CodeBuildBuild, job: ModuleJob, build: dict[str, Any], timeout: float, details: dict[str, Any]
    ) -> None:
        self.b = backend
        self.job = job
        self.build = build
        self.timeout = timeout
        self.details = details
        self.tail = LogTail(backend.aws, job.log)
        self.phase: str | None = None
        self.timed_out = False
        self._stop_deadline = 0.0

    def run(self) -> StageResult:
        b, cancel = self.b, self.job.ctx.cancel
        deadline = b.clock() + self.timeout
        interval = b.poll_initial
        stopped_by: str | None = None
        while True:
            self._observe()
            if self.build.get("buildStatus") in TERMINAL and self.build.get("buildComplete", True):
                break
            if stopped_by is None and cancel.is_set():
                stopped_by = self._stop("the run was cancelled")
            elif stopped_by is None and b.clock() >= deadline:
                self.timed_out = True
                stopped_by = self._stop(f"deadline of {self.timeout / 60:g} minutes passed")
            elif stopped_by is not None and b.clock() >= self._stop_deadline:
                self.job.log("CodeBuild did not confirm the stop in time; leaving it")
                break
            if stopped_by is None:
                cancel.wait(interval)
                interval = min(interval * 1.5, b.poll_max)
            else:  # cancel.wait would return at once; CodeBuild needs a moment to stop
                time.sleep(min(b.poll_initial, 1.0))
        self.tail.read()  # lines written after the last poll
        return self._result(stopped_by)

    def _observe(self) -> None:
        builds = self.b.aws.call("codebuild", "batch_get_builds", ids=[self.build["id"]]).get("builds") or []
        if builds:
            self.build = builds[0]
        phase = self.build.get("currentPhase")
        if phase and phase != self.phase:
            self.job.log(f"phase {phase}")
            self.phase = phase
        self.tail.follow(self.build)
        self.tail.read()

    def _stop(self, why: str) -> str:
        self.job.log(f"stopping CodeBuild build {self.build['id']}: {why}")
        try:
            self.b.aws.call("codebuild", "stop_build", id=self.build["id"])
        except AwsError as exc:
            self.job.log(f"StopBuild failed: {exc}")
        self._stop_deadline = self.b.clock() + self.b.stop_grace
        return why

    def _result(self, stopped_by: str | None) -> StageResult:
        build = self.build
        status = build.get("buildStatus") or "IN_PROGRESS"
        if stopped_by is not None and (status not in TERMINAL or status == "STOPPED"):
            # Unconfirmed stops count as stopped; a stop at our deadline is a timeout.
            status = "TIMED_OUT" if self.timed_out else "STOPPED"
        phases = [
            {
                "name": p.get("phaseType"),
                "status": p.get("phaseStatus"),
                "duration_seconds": p.get("durationInSeconds"),
            }
            for p in build.get("phases") or []
        ]
        logs = build.get("logs") or {}
        details = {
            **self.details,
            "status": status,
            "phases": phases,
            "log_lines": self.tail.lines,
            "logs": logs.get("deepLink"),
        }
        if status == "SUCCEEDED":
            return StageResult(True, None, details)
        return StageResult(False, self._error(status, stopped_by), details)

    def _error(self, status: str, stopped_by: str | None) -> str:
        if stopped_by is not None:
            return f"CodeBuild build {status}: {stopped_by}"
        for phase in self.build.get("phases") or []:
            if phase.get("phaseStatus") in ("FAILED", "FAULT", "TIMED_OUT", "STOPPED", "CLIENT_ERROR"):
                messages = "; ".join(c.get("message", "") for c in phase.get("contexts") or [] if c.get("message"))
                return f"CodeBuild build {status} in {phase.get('phaseType')}" + (f": {messages}" if messages else "")
        return f"CodeBuild build {status}"
