"""One sandbox for one command or one ``deployfw sandbox`` session.

Starts the AWS sandbox and the Jenkins double on loopback, creates the
infrastructure modules.yaml describes (so the example deploys with no manual
step), and hands out the environment variables that point every client at
them - the same variables a user would export for real AWS and Jenkins, which
is what keeps the code paths identical.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from deployfw.sandbox.aws import ACCOUNT_ID, AwsSandbox

if TYPE_CHECKING:
    from deployfw.config import Config, Module
    from deployfw.sandbox.aws.seeding import SeedResult, ServiceInfra
    from deployfw.sandbox.jenkins import JenkinsDouble

_KINDS = {"ecs-bluegreen": "bluegreen", "ecs-nlb": "nlb", "ecs-rolling": "rolling"}
_PLACEHOLDER = re.compile(r"\$\{([A-Z_]+)\}")


@dataclass
class SandboxSession:
    config: Config
    aws: AwsSandbox
    jenkins: JenkinsDouble
    seeded: SeedResult

    @classmethod
    def start(cls, config: Config, *, port: int = 0, jenkins_port: int = 0) -> SandboxSession:
        from deployfw.sandbox.aws import seed
        from deployfw.sandbox.jenkins import JenkinsDouble

        aws = AwsSandbox(port, repo_root=config.root).start()
        jenkins = JenkinsDouble(jenkins_port, faults=aws.faults).start()
        aws.ctx.faults.listeners.append(jenkins.set_faults)  # POST /_sandbox/faults reaches Jenkins too
        try:
            region = config.region or "us-east-1"
            seeded = seed(aws, [infra_of(config, m) for m in _deployable(config)], region=region)
            for module in config.modules.values():
                if module.build is not None and module.build.backend == "jenkins":
                    add_jenkins_job(jenkins, config, module, aws.endpoint_url)
        except BaseException:
            aws.stop()
            jenkins.stop()
            raise
        return cls(config, aws, jenkins, seeded)

    def environment(self) -> dict[str, str]:
        """What a client needs to use this sandbox; the first four lines of ``deployfw sandbox``."""
        return {
            "AWS_ENDPOINT_URL": self.aws.endpoint_url,
            "JENKINS_URL": self.jenkins.url,
            "JENKINS_USER": self.jenkins.user,
            "JENKINS_API_TOKEN": self.jenkins.token,
            "AWS_ACCESS_KEY_ID": "sandbox",
            "AWS_SECRET_ACCESS_KEY": "sandbox-secret",
            "AWS_DEFAULT_REGION": self.config.region or "us-east-1",
            "AWS_REGION": self.config.region or "us-east-1",
        }

    def stop(self) -> None:
        self.jenkins.stop()
        self.aws.stop()


def _deployable(config: Config) -> list[Module]:
    return [m for m in config.modules.values() if m.is_service and m.deploy is not None and m.deploy.backend in _KINDS]


def infra_of(config: Config, module: Module) -> ServiceInfra:
    """What ``module`` needs to exist in AWS, with the deploy backends' own defaults for names."""
    from deployfw.sandbox.aws.seeding import ServiceInfra
    from deployfw_aws.codebuild import project_name
    from deployfw_aws.deploy_common import ECS_ALL_AT_ONCE, target_of
    from deployfw_aws.ecr import repository_name

    target = target_of(config, module)
    container, port = _container(config, module, target.taskdef, target.container, target.container_port)
    return ServiceInfra(
        module=module.name,
        cluster=target.cluster,
        service=target.service,
        deploy_kind=_KINDS[target.backend],  # type: ignore[arg-type]
        container_name=container,
        container_port=port,
        health_check_path=target.health_check_path or "/health",
        ecr_repository=repository_name(module),
        codebuild_project=project_name(module),
        codedeploy_application=target.application,
        deployment_group=target.deployment_group,
        deployment_config=target.deployment_config or ECS_ALL_AT_ONCE,
    )


def _container(config: Config, module: Module, taskdef: str, name: str | None, port: int | None) -> tuple[str, int]:
    """Container name and port from the module's task definition template."""
    try:
        text = (config.root / taskdef).read_text(encoding="utf-8")
        values = {"MODULE": module.name, "SERVICE": module.name, "ENV": config.env or "", "REGION": config.region or ""}
        doc = json.loads(_PLACEHOLDER.sub(lambda m: values.get(m.group(1), "0"), text))
        containers = doc.get("containerDefinitions") or []
    except (OSError, ValueError):
        containers = []
    chosen = next((c for c in containers if c.get("name") == name), containers[0] if containers else {})
    mappings = chosen.get("portMappings") or [{}]
    return name or chosen.get("name") or module.name, port or int(mappings[0].get("containerPort") or 8080)


def add_jenkins_job(jenkins: JenkinsDouble, config: Config, module: Module, endpoint_url: str | None = None) -> None:
    """A Jenkins job that builds one module with ``deployfw build``, like the Jenkinsfile's example job.

    It defines every parameter the ``jenkins`` backend sends (so none is dropped) and,
    given the sandbox's ``endpoint_url``, carries the AWS endpoint and dummy credentials
    in its environment: the build pushes to the sandbox's ECR even when the double is
    served by ``deployfw sandbox`` for a ``deployfw run`` in another shell.
    """
    from deployfw_jenkins.client import RUN_ID_PARAMETER
    from deployfw_jenkins.jobspec import job_name, parameter_names

    assert module.build is not None
    command = [sys.executable, "-m", "deployfw", "-c", str(config.file)]
    if config.env:
        command += ["-e", config.env]
    region = config.region or "us-east-1"
    env: dict[str, str] = {}
    if endpoint_url:
        env = {
            "AWS_ENDPOINT_URL": endpoint_url,
            "AWS_ACCESS_KEY_ID": "sandbox",
            "AWS_SECRET_ACCESS_KEY": "sandbox-secret",
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
        }
    # Parameters override the job's environment in a build, so their defaults must not blank it out.
    defaults = dict.fromkeys([*parameter_names(module), RUN_ID_PARAMETER], "")
    defaults.update({k: v for k, v in env.items() if k in defaults}, DEPLOYFW_MODULE=module.name)
    jenkins.add_job(
        job_name(module),
        command=[*command, "build", module.name],
        parameters=defaults,
        cwd=str(config.root),
        env=env,
        module=module.name,
    )


def export_lines(env: dict[str, str]) -> list[str]:
    return [f"{k}={shlex.quote(v)}" for k, v in env.items()]


__all__ = ["ACCOUNT_ID", "SandboxSession", "export_lines", "infra_of"]


def describe(session: SandboxSession) -> list[str]:
    """Human lines about what was seeded, for the sandbox command's log."""
    lines = []
    for name, svc in sorted(session.seeded.services.items()):
        infra: Any = svc.infra
        lines.append(f"{name}: {infra.deploy_kind} service {infra.cluster}/{infra.service}, ECR {svc.repository_uri}")
    return lines
