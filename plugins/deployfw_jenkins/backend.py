"""The ``jenkins`` build backend: build a module with its parameterised Jenkins job.

The Jenkins + CodeDeploy route keeps builds on Jenkins (often next to an IDC's
agents) and deploys through CodeDeploy/ECS. The job typically runs ``deployfw
build MODULE``, so the module's ``buildspec.yml`` stays the one build definition;
whatever the job runs, it must push ``$REPOSITORY_URI`` under ``$IMAGE_TAG`` and
``$IMAGE_CONTENT_TAG``, after which the runner finds the image's digest by its
content tag and deploys by digest. One build, in order:

1. trigger the job (option ``job``, default ``MODULE-build``, inside option
   ``folder``) with the build contract of :mod:`deployfw.builds.contract` as
   parameters, plus ``GIT_COMMIT`` (the head commit), ``AWS_ENDPOINT_URL`` on
   sandbox runs and the user's ``parameters`` (which never override the
   contract); the trigger carries a per-module ``DEPLOYFW_RUN_ID`` so a retried
   trigger finds its first attempt instead of starting a second build;
2. follow the queue item to its build within ``queue_timeout_minutes``;
3. stream the progressive console into the module's log until the build ends
   or ``timeout_minutes`` pass;
4. on the run's cancel or the deadline, stop the build (a queued item is
   cancelled instead) and report it;
5. map the result: SUCCESS succeeds, UNSTABLE succeeds only with
   ``unstable_ok``, FAILURE/ABORTED/NOT_BUILT fail.

Credentials come from ``JENKINS_URL``/``JENKINS_USER``/``JENKINS_API_TOKEN`` (or
``JENKINS_API_TOKEN_FILE``) and are checked at preflight, so a missing one is bad
input before anything runs; the token never reaches a log line or a report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from deployfw.backends import LiveCheck, ModuleJob, RunContext, StageResult
from deployfw.builds.contract import timeout_seconds
from deployfw.config import Config, Module
from deployfw.errors import InputError, Problem
from deployfw_jenkins.errors import JenkinsAuthError, JenkinsError, JenkinsTimeout
from deployfw_jenkins.jobspec import (
    job_name,
    job_parameters,
    parameter_names,
    queue_timeout_seconds,
    unstable_ok,
)

if TYPE_CHECKING:
    from deployfw.iam.needs import IamNeed, IamScope
    from deployfw_jenkins.client import BuildResult, JenkinsClient

_OK = frozenset({"SUCCESS"})
_CLIENT_RESOURCE = "jenkins:client"


def _default_client() -> JenkinsClient:
    """The run's Jenkins client, from the environment (imports python-jenkins)."""
    from deployfw_jenkins.client import JenkinsClient
    from deployfw_jenkins.retrying import PollPolicy

    # Console lines should reach the log promptly; 3 s is the most a quiet build waits for a poll.
    return JenkinsClient.from_environment(poll=PollPolicy(initial=0.5, maximum=3.0, factor=1.5))


class JenkinsBuild:
    """Builds modules with Jenkins jobs; created per run by the plugin's factory (no calls here).

    ``client_factory`` makes the one client the run's modules share (tests pass a
    client with fast poll and retry policies); ``stop_grace`` bounds how long to wait
    for Jenkins to confirm a stopped build.
    """

    backend_id = "jenkins"

    def builds_as(self, module: Module, config: Config) -> str:
        """Builds run on a Jenkins agent (``deployfw build MODULE``) with the agent's AWS credentials.

        The run itself makes no AWS call for a Jenkins build: what the agent needs is whatever the
        module's registry backend declares for its builder (the ECR push).
        """
        return "jenkins"

    def iam_needs(self, scope: IamScope) -> list[IamNeed]:
        """The buildspec's parameter-store and secrets-manager variables, read on the agent (``deployfw build``)."""
        from deployfw.builds.iam import buildspec_needs
        from deployfw.iam.needs import BUILDER

        return buildspec_needs(scope, BUILDER)

    def __init__(
        self,
        ctx: RunContext,
        *,
        client_factory: Callable[[], JenkinsClient] = _default_client,
        stop_grace: float = 60.0,
    ) -> None:
        self.ctx = ctx
        self._client_factory = client_factory
        self.stop_grace = stop_grace
        self._credentials_checked = False

    @property
    def client(self) -> JenkinsClient:
        """The run's one client, shared by every module this backend builds."""
        return self.ctx.resource(_CLIENT_RESOURCE, self._client_factory)

    def steps(self, module: Module, config: Config) -> Sequence[str]:
        queue = queue_timeout_seconds(module) / 60
        build = timeout_seconds(module) / 60
        unstable = "succeeds" if unstable_ok(module) else "fails"
        return [
            f"trigger Jenkins job {job_name(module)} with the build contract as parameters (GIT_COMMIT = head)",
            f"follow queue (deadline {queue:g} min) -> build, stream its console (deadline {build:g} min)",
            f"SUCCESS succeeds; UNSTABLE {unstable}; FAILURE, ABORTED and NOT_BUILT fail",
        ]

    def preflight(self, module: Module, config: Config) -> Sequence[Problem]:
        """Credentials are checked here (no call is made), so a missing token is exit 2 up front."""
        from deployfw_jenkins.credentials import JenkinsCredentials

        if self._credentials_checked:  # one message per problem, however many modules build on Jenkins
            return []
        self._credentials_checked = True
        try:
            JenkinsCredentials.from_environment()
        except InputError as exc:
            return [_located(problem) for problem in exc.problems]
        return []

    def live_checks(self, job: ModuleJob) -> list[LiveCheck]:
        """The credentials work and the module's job exists, with the parameters deployfw sends (read-only)."""
        name = job_name(job.module)
        try:
            client = self.client
            me = client.connect()
        except (InputError, JenkinsError) as exc:
            return [LiveCheck("jenkins-credentials", False, str(exc),
                              "export JENKINS_URL, JENKINS_USER and JENKINS_API_TOKEN of a user with Overall/Read "
                              "and Job/Build")]  # fmt: skip
        rows = [LiveCheck("jenkins-credentials", True, f"Jenkins at {client.url} accepts {me.get('id')}")]
        try:
            defined = client.job_parameters(name)
        except JenkinsError as exc:
            return [*rows, LiveCheck("jenkins-job", False, f"job {name}: {exc}",
                                     f"create job {name} running `deployfw build {job.module.name}`, or fix the "
                                     "module's build.folder / build.job")]  # fmt: skip
        missing = [p for p in parameter_names(job.module) if p not in defined]
        if missing:
            return [*rows, LiveCheck("jenkins-job", False, f"job {name} does not define {', '.join(missing)}",
                                     f"add string parameters {', '.join(missing)} to job {name}")]  # fmt: skip
        return [*rows, LiveCheck("jenkins-job", True, f"job {name} exists with deployfw's parameters")]

    def build(self, job: ModuleJob) -> StageResult:
        """Trigger, follow and judge one Jenkins build of ``job.module``."""
        if job.image is None:
            return StageResult(False, "no image reference: the registry stage did not prepare one")
        name = job_name(job.module)
        details: dict[str, Any] = {"backend": self.backend_id, "job": name, "number": None, "url": None}
        try:
            client = self.client
        except InputError as exc:  # credentials went missing after preflight
            return StageResult(False, str(exc), {**details, "result": "NOT_STARTED"})
        try:
            return _Follow(self, client, job, name, details).run()
        except JenkinsError as exc:
            if isinstance(exc, JenkinsAuthError):
                job.log(f"Jenkins refused deployfw's credentials: {exc}")
            elif details["url"]:  # the build may still be running; say where to follow it
                job.log(f"lost track of Jenkins build {details['url']}: {exc}")
            started = details["number"] is not None
            details["result"] = details.get("result") or (None if started else "NOT_STARTED")
            return StageResult(False, str(exc), details)


class _Follow:
    """One build's life: trigger, queue, console, stop on cancel or deadline, result."""

    def __init__(
        self, backend: JenkinsBuild, client: JenkinsClient, job: ModuleJob, name: str, details: dict[str, Any]
    ) -> None:
        self.backend = backend
        self.client = client
        self.job = job
        self.name = name
        self.details = details

    def run(self) -> StageResult:
        job, client, module = self.job, self.client, self.job.module
        cancel = job.ctx.cancel
        params = job_parameters(job)
        queued = client.trigger(self.name, params, run_id=_trigger_id(job))
        job.log(f"triggered Jenkins job {self.name} (queue item {queued.queue_id})")
        number = client.wait_for_build(queued, client.deadline(queue_timeout_seconds(module)), cancel)
        self.details["number"] = number
        self.details["url"] = f"{client.url}{_job_path(self.name)}{number}/"
        job.log(f"Jenkins build {self.name} #{number} started: {self.details['url']}console")
        if cancel.is_set():
            return self._stop("deployfw was cancelled")
        deadline = client.deadline(timeout_seconds(module))
        try:
            finished = client.stream_console(self.name, number, job.log, cancel, deadline=deadline)
        except JenkinsTimeout:
            return self._stop(f"still running after {timeout_seconds(module) / 60:g} min (timeout_minutes)")
        if not finished:
            return self._stop("deployfw was cancelled")
        outcome = client.wait_for_result(self.name, number, client.deadline(self.backend.stop_grace))
        return self._judge(outcome)

    def _judge(self, outcome: BuildResult) -> StageResult:
        self.details.update(result=outcome.result, duration_ms=outcome.duration_ms, url=outcome.url)
        ok = outcome.result in _OK or (outcome.result == "UNSTABLE" and unstable_ok(self.job.module))
        if ok:
            return StageResult(True, details=self.details)
        hint = " (set build.unstable_ok to accept UNSTABLE builds)" if outcome.result == "UNSTABLE" else ""
        return StageResult(
            False,
            f"Jenkins build {self.name} #{outcome.number} finished {outcome.result}{hint}: {outcome.url}console",
            self.details,
        )

    def _stop(self, why: str) -> StageResult:
        """Stop the build and wait (briefly) for Jenkins to confirm it ended."""
        number = self.details["number"]
        self.job.log(f"stopping Jenkins build {self.name} #{number}: {why}")
        self.client.stop(self.name, number)
        try:
            outcome = self.client.wait_for_result(self.name, number, self.client.deadline(self.backend.stop_grace))
            result = outcome.result
            self.details.update(duration_ms=outcome.duration_ms, url=outcome.url)
        except JenkinsTimeout:
            result = None
        self.details["result"] = result
        seen = result or "no result yet (Jenkins did not confirm the stop)"
        return StageResult(False, f"Jenkins build {self.name} #{number} stopped: {why}; result {seen}", self.details)


def _trigger_id(job: ModuleJob) -> str:
    """Unique per module build of one run, so two modules sharing one job never match each other."""
    return f"{job.ctx.run_id}.{job.module.name}"


def _job_path(name: str) -> str:
    """``a/b`` -> ``job/a/job/b/``: where Jenkins serves a job in folders."""
    return "".join(f"job/{quote(part, safe='')}/" for part in name.split("/"))


def _located(problem: Problem) -> Problem:
    """Say why the credentials are needed at all."""
    return Problem(problem.file, problem.line, problem.key, f"{problem.message} (needed by the jenkins build backend)")
