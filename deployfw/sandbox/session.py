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
        jenkins = JenkinsDouble(jenkins_port).start()
        try:
            region = config.region or "us-east-1"
            seeded = seed(aws, [infra_of(config, m) for m in _deployable(config)], region=region)
            for module in config.modules.values():
                if module.build is not None and module.build.backend == "jenkins":
                    add_jenkins_job(jenkins, config, module)
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


def add_jenkins_job(jenkins: JenkinsDouble, config: Config, module: Module) -> None:
    """A Jenkins job that builds one module with ``deployfw build``, like the Jenkinsfile's example job."""
    assert module.build is not None
    job = str(module.build.options.get("job") or f"{module.name}-build")
    folder = module.build.options.get("folder")
    full_name = f"{folder}/{job}" if folder else job
    command = [sys.executable, "-m", "deployfw", "-c", str(config.file), "build", module.name]
    jenkins.add_job(
        full_name,
        command=command,
        parameters={"DEPLOYFW_MODULE": module.name, "GIT_COMMIT": "", "IMAGE_TAG": "", "DEPLOYFW_RUN_ID": ""},
        cwd=str(config.root),
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
