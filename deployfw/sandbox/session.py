"""One sandbox for one command or one ``deployfw sandbox`` session.

Starts the AWS sandbox and the Jenkins double on loopback, creates the infrastructure the
config describes - for every environment of it, so one ``deployfw sandbox`` serves ``-e ANY``
runs - and hands out the environment variables that point every client at them: the same
variables a user would export for real AWS and Jenkins, which keeps the code paths identical.

The sandbox imports no backend plugin. What to create comes from the backends themselves,
through the ``deployfw_sandbox_seed`` hook, as :mod:`deployfw.seeding` descriptions.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from deployfw.sandbox.aws import ACCOUNT_ID, AwsSandbox
from deployfw.sandbox.aws.server import iam_mode
from deployfw.seeding import AwsCall, JenkinsJob, Seed, ServerFleet, ServiceInfra

if TYPE_CHECKING:
    from deployfw.config import Config
    from deployfw.plugins import PluginManager
    from deployfw.sandbox.aws.seeding import SeedResult
    from deployfw.sandbox.jenkins import JenkinsDouble

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "sandbox", "AWS_SECRET_ACCESS_KEY": "sandbox-secret"}
CI_USER = "deployfw-ci"  # holds exactly the generated ci policy in least-privilege mode


@dataclass
class SandboxSession:
    config: Config
    aws: AwsSandbox
    jenkins: JenkinsDouble
    seeded: SeedResult
    credentials: dict[str, str] = field(default_factory=lambda: dict(CREDENTIALS))
    """What ``environment()`` hands out: any key without IAM, the administrator's with ``enforce``,
    the ``deployfw-ci`` user's (exactly the generated ci policy) with ``least-privilege``."""

    @classmethod
    def start(
        cls,
        config: Config,
        plugins: PluginManager,
        *,
        port: int = 0,
        jenkins_port: int = 0,
        iam: str | None = None,
    ) -> SandboxSession:
        """``iam``: ``off``, ``enforce`` or ``least-privilege`` (default ``DEPLOYFW_SANDBOX_IAM``, else off)."""
        from deployfw.sandbox.jenkins import JenkinsDouble

        mode = iam or iam_mode()
        aws = AwsSandbox(port, repo_root=config.root, enforce_iam=mode != "off").start()
        try:
            jenkins = JenkinsDouble(jenkins_port, faults=aws.faults).start()
        except BaseException:
            aws.stop()
            raise
        aws.ctx.faults.listeners.append(jenkins.set_faults)  # POST /_sandbox/faults reaches Jenkins too
        try:
            configs = _configs(config, plugins)
            agent = aws.ctx.iam.jenkins.environment() if mode != "off" and aws.ctx.iam and aws.ctx.iam.jenkins else None
            seeded = _create(aws, jenkins, list(_seeds(configs, plugins)), agent)
            credentials = dict(CREDENTIALS) if mode == "off" else aws.admin_keys
            if mode == "least-privilege":
                credentials = grant_least_privilege(aws, configs, plugins, seeded)
        except BaseException:
            aws.stop()
            jenkins.stop()
            raise
        return cls(config, aws, jenkins, seeded, credentials)

    def reseed(self, config: Config, plugins: PluginManager) -> list[str]:
        """Seed what ``config`` (the config file as it is now) adds, as one AWS account would keep the rest.

        Seeding is idempotent: services, jobs and fleets that exist are left as they are (a service a
        ``deployfw migrate`` switched stays switched), new modules' are created, and a module removed
        from the config keeps its resources - deleting a module from modules.yaml deletes nothing in AWS
        either. Not offered under IAM enforcement, whose generated policies depend on the whole config.
        """
        if self.aws.enforce_iam:
            raise RuntimeError("IAM is enforced: the generated policies depend on the whole config; restart it")
        before = set(self.seeded.services)
        seeded = _create(self.aws, self.jenkins, list(_seeds(_configs(config, plugins), plugins)))
        self.seeded.services.update(seeded.services)
        self.config = config
        return sorted(set(self.seeded.services) - before)

    def environment(self) -> dict[str, str]:
        """What a client needs to use this sandbox (``deployfw sandbox`` prints it)."""
        region = self.config.region or "us-east-1"
        return {
            "AWS_ENDPOINT_URL": self.aws.endpoint_url,
            "JENKINS_URL": self.jenkins.url,
            "JENKINS_USER": self.jenkins.user,
            "JENKINS_API_TOKEN": self.jenkins.token,
            **self.credentials,
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
            "DEPLOYFW_SANDBOX_TIME_SCALE": f"{self.aws.ctx.clock.scale:g}",
        }

    def idle_seconds(self) -> float:
        """Seconds since the latest AWS or Jenkins request: a background sandbox ends after a spell without any."""
        import time

        return time.monotonic() - max(self.aws.last_request, self.jenkins.last_request)

    def stop(self) -> None:
        self.jenkins.stop()
        self.aws.stop()


def _configs(config: Config, plugins: PluginManager) -> list[Config]:
    """The config and every other environment of it (the config's own first)."""
    from deployfw.config import load_config

    configs = [config]
    catalog = plugins.backends.catalog()
    for env in (None, *config.environments):
        if env != config.env:
            configs.append(load_config(config.file, env=env, catalog=catalog, root=config.root))
    return configs


def _seeds(configs: list[Config], plugins: PluginManager) -> Iterator[tuple[Config, Seed]]:
    """Every backend's answer for every module of every environment."""
    for each in configs:
        for module in each.modules.values():
            for answer in plugins.hook.deployfw_sandbox_seed(config=each, module=module):
                for item in answer or ():
                    yield each, item


def _create(
    aws: AwsSandbox, jenkins: JenkinsDouble, seeds: list[tuple[Config, Seed]], agent: dict[str, str] | None = None
) -> SeedResult:
    """Create what ``seeds`` describe, idempotently: services by region, then jobs, then plain calls."""
    from deployfw.sandbox.aws.seeding import seed

    by_region: dict[str, list[ServiceInfra]] = {}
    for config, item in seeds:
        if isinstance(item, ServiceInfra):
            by_region.setdefault(config.region or "us-east-1", []).append(item)
    home = seeds[0][0].region if seeds else None
    results = {region: seed(aws, infra, region=region) for region, infra in by_region.items()}
    seeded = results.get(home or "us-east-1") or seed(aws, [], region=home or "us-east-1")
    for result in results.values():
        if result is not seeded:
            seeded.services.update(result.services)
    for config, item in seeds:
        if isinstance(item, JenkinsJob):
            add_jenkins_job(jenkins, config, item, aws.endpoint_url, agent)
        elif isinstance(item, AwsCall):
            _call(aws, config, item)
    for config, item in seeds:  # after the plain calls: the fleets' buckets exist by then
        if isinstance(item, ServerFleet):
            from deployfw.sandbox.aws.seeding_servers import seed_servers

            seed_servers(aws, item, config.region or "us-east-1")
    return seeded


def add_jenkins_job(
    jenkins: JenkinsDouble, config: Config, job: JenkinsJob, endpoint_url: str, agent: dict[str, str] | None = None
) -> None:
    """The job, with the AWS endpoint and credentials in its environment: its build pushes to this
    sandbox even when ``deployfw sandbox`` serves a ``deployfw run`` in another shell. With IAM
    enforced, ``agent`` is the Jenkins agent user's key: jobs run as that principal."""
    region = config.region or "us-east-1"
    keys = agent or CREDENTIALS
    env = {"AWS_ENDPOINT_URL": endpoint_url, **keys, "AWS_DEFAULT_REGION": region, "AWS_REGION": region}
    # Parameters override the job's environment in a build, so their defaults must not blank it out.
    parameters = dict(job.parameters)
    parameters.update({k: v for k, v in env.items() if k in parameters})
    jenkins.add_job(job.name, command=list(job.command), parameters=parameters, cwd=str(config.root), env=env,
                    module=job.module)  # fmt: skip


def grant_least_privilege(
    aws: AwsSandbox, configs: list[Config], plugins: PluginManager, seeded: SeedResult
) -> dict[str, str]:
    """Give each principal exactly its generated policy; the run's credentials are ``deployfw-ci``'s.

    ``deployfw-ci`` gets ``deployfw iam policy --for ci``, the CodeBuild projects' service role
    ``--for codebuild``, the Jenkins agent user ``--for jenkins``: a run that succeeds proves the
    policies are enough, and one that fails names what is missing.
    """
    from deployfw.context import make_context
    from deployfw.iam.collect import collect
    from deployfw.iam.policy import build
    from deployfw.sandbox.aws.authz import JENKINS_USER, principals

    ctx = make_context(configs[0], backends=plugins.backends)
    declared = collect(configs, plugins.backends, ctx, account=ACCOUNT_ID, region=ctx.region)
    policies = {name: build(declared, name) for name in ("ci", "jenkins", "codebuild")}
    with aws.ctx.lock:
        # IAM refuses a policy without statements: a principal nothing needs gets none.
        keys = principals.ensure_user(ACCOUNT_ID, CI_USER, policies["ci"].document() if policies["ci"].statements
                                      else None)  # fmt: skip
        if policies["jenkins"].statements:
            principals.ensure_user(ACCOUNT_ID, JENKINS_USER, policies["jenkins"].document())
        role = seeded.roles.get("deployfw-codebuild-role")
        if role and policies["codebuild"].statements:
            principals.put_role_policy(ACCOUNT_ID, role, policies["codebuild"].document())
    return keys.environment()


def _call(aws: AwsSandbox, config: Config, call: AwsCall) -> None:
    from botocore.exceptions import ClientError

    client = aws.client(call.service, config.region or "us-east-1")
    try:
        getattr(client, call.operation)(**call.params)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in call.exists_codes:
            raise


def export_lines(env: dict[str, str]) -> list[str]:
    return [f"{k}={shlex.quote(v)}" for k, v in env.items()]


def describe(session: SandboxSession) -> list[str]:
    """Human lines about what was seeded, for the sandbox command's log."""
    lines = []
    for name, svc in sorted(session.seeded.services.items()):
        infra: Any = svc.infra
        lines.append(f"{name}: {infra.deploy_kind} service {infra.cluster}/{infra.service}, ECR {svc.repository_uri}")
    return lines


__all__ = ["ACCOUNT_ID", "SandboxSession", "add_jenkins_job", "describe", "export_lines"]
