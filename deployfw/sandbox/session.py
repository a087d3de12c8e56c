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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from deployfw.sandbox.aws import ACCOUNT_ID, AwsSandbox
from deployfw.seeding import AwsCall, JenkinsJob, Seed, ServiceInfra

if TYPE_CHECKING:
    from deployfw.config import Config
    from deployfw.plugins import PluginManager
    from deployfw.sandbox.aws.seeding import SeedResult
    from deployfw.sandbox.jenkins import JenkinsDouble

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "sandbox", "AWS_SECRET_ACCESS_KEY": "sandbox-secret"}


@dataclass
class SandboxSession:
    config: Config
    aws: AwsSandbox
    jenkins: JenkinsDouble
    seeded: SeedResult

    @classmethod
    def start(cls, config: Config, plugins: PluginManager, *, port: int = 0, jenkins_port: int = 0) -> SandboxSession:
        from deployfw.sandbox.jenkins import JenkinsDouble

        aws = AwsSandbox(port, repo_root=config.root).start()
        try:
            jenkins = JenkinsDouble(jenkins_port, faults=aws.faults).start()
        except BaseException:
            aws.stop()
            raise
        aws.ctx.faults.listeners.append(jenkins.set_faults)  # POST /_sandbox/faults reaches Jenkins too
        try:
            seeded = _create(aws, jenkins, list(_seeds(config, plugins)))
        except BaseException:
            aws.stop()
            jenkins.stop()
            raise
        return cls(config, aws, jenkins, seeded)

    def environment(self) -> dict[str, str]:
        """What a client needs to use this sandbox (``deployfw sandbox`` prints it)."""
        region = self.config.region or "us-east-1"
        return {
            "AWS_ENDPOINT_URL": self.aws.endpoint_url,
            "JENKINS_URL": self.jenkins.url,
            "JENKINS_USER": self.jenkins.user,
            "JENKINS_API_TOKEN": self.jenkins.token,
            **CREDENTIALS,
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
        }

    def stop(self) -> None:
        self.jenkins.stop()
        self.aws.stop()


def _seeds(config: Config, plugins: PluginManager) -> Iterator[tuple[Config, Seed]]:
    """Every backend's answer for every module of every environment (the config's own first)."""
    from deployfw.config import load_config

    configs = [config]
    catalog = plugins.backends.catalog()
    for env in (None, *config.environments):
        if env != config.env:
            configs.append(load_config(config.file, env=env, catalog=catalog, root=config.root))
    for each in configs:
        for module in each.modules.values():
            for answer in plugins.hook.deployfw_sandbox_seed(config=each, module=module):
                for item in answer or ():
                    yield each, item


def _create(aws: AwsSandbox, jenkins: JenkinsDouble, seeds: list[tuple[Config, Seed]]) -> SeedResult:
    """Create what ``seeds`` describe, idempotently: services by region, then jobs, then plain calls."""
    from deployfw.sandbox.aws import seed

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
            add_jenkins_job(jenkins, config, item, aws.endpoint_url)
        elif isinstance(item, AwsCall):
            _call(aws, config, item)
    return seeded


def add_jenkins_job(jenkins: JenkinsDouble, config: Config, job: JenkinsJob, endpoint_url: str) -> None:
    """The job, with the AWS endpoint and credentials in its environment: its build pushes to this
    sandbox even when ``deployfw sandbox`` serves a ``deployfw run`` in another shell."""
    region = config.region or "us-east-1"
    env = {"AWS_ENDPOINT_URL": endpoint_url, **CREDENTIALS, "AWS_DEFAULT_REGION": region, "AWS_REGION": region}
    # Parameters override the job's environment in a build, so their defaults must not blank it out.
    parameters = dict(job.parameters)
    parameters.update({k: v for k, v in env.items() if k in parameters})
    jenkins.add_job(job.name, command=list(job.command), parameters=parameters, cwd=str(config.root), env=env,
                    module=job.module)  # fmt: skip


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
