"""What the AWS backends need to exist in the sandbox, named as those backends will name it.

Answers the ``deployfw_sandbox_seed`` hook: for a module deployed by one of this plugin's ECS
backends, the service, its load balancer and target groups, the CodeDeploy group (blue/green,
NLB) or the ECS-native setup (alternate target group, listener rules forwarding to both groups,
infrastructure role; an NLB when ``load_balancer_type`` says ``network``), the ECR repository
and the CodeBuild project - with the defaults :func:`target_of`,
:func:`repository_name` and :func:`project_name` apply at run time, so a seeded sandbox is
exactly what the run will look for. For a ``codedeploy-server`` module: its CodeDeploy application,
deployment group and servers (:class:`ServerFleet`), and the bucket of an ``s3`` registry.
"""

from __future__ import annotations

import json
import re

from deployfw.config import Config, Module
from deployfw.seeding import AwsCall, DeployKind, Seed, ServerFleet, ServiceInfra
from deployfw_aws.codebuild import project_name
from deployfw_aws.deploy_common import ECS_ALL_AT_ONCE, ECS_BACKENDS, target_of
from deployfw_aws.ecr import repository_name

_KINDS: dict[str, DeployKind] = {
    "ecs-bluegreen": "bluegreen",
    "ecs-nlb": "nlb",
    "ecs-rolling": "rolling",
    "ecs-native": "native",
}
_PLACEHOLDER = re.compile(r"\$\{([A-Z_]+)\}")


def seeds(config: Config, module: Module) -> list[Seed]:
    if not module.is_service or module.deploy is None or module.deploy.backend not in ECS_BACKENDS:
        return server_seeds(config, module)
    target = target_of(config, module)
    container, port = _container(config, module, target.taskdef, target.container, target.container_port)
    return [
        ServiceInfra(
            module=module.name,
            cluster=target.cluster,
            service=target.service,
            deploy_kind=_KINDS[target.backend],
            container_name=container,
            container_port=port,
            health_check_path=target.health_check_path or "/health",
            ecr_repository=repository_name(module),
            codebuild_project=project_name(module),
            codedeploy_application=target.application,
            deployment_group=target.deployment_group,
            deployment_config=target.deployment_config or ECS_ALL_AT_ONCE,
            load_balancer="network" if module.deploy.options.get("load_balancer_type") == "network" else None,
        )
    ]


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


def server_seeds(config: Config, module: Module) -> list[Seed]:
    """The bucket of an ``s3`` registry, and the application, group and servers of a ``codedeploy-server`` deploy."""
    from deployfw_aws.s3registry import bucket_of
    from deployfw_aws.server_target import BACKEND_ID, DEFAULT_CONFIG, SERVER_CONFIGS, server_target

    found: list[Seed] = []
    if not module.is_service:
        return found
    if module.registry is not None and module.registry.backend == "s3" and bucket_of(module):
        region = config.region or "us-east-1"
        params: dict[str, object] = {"Bucket": bucket_of(module)}
        if region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": region}
        found.append(AwsCall(module.name, "s3", "create_bucket", params,
                             exists_codes=("BucketAlreadyOwnedByYou", "BucketAlreadyExists")))  # fmt: skip
    if module.deploy is not None and module.deploy.backend == BACKEND_ID:
        target = server_target(config, module)
        chosen = target.deployment_config or DEFAULT_CONFIG
        found.append(
            ServerFleet(
                module=module.name,
                application=target.application,
                deployment_group=target.deployment_group,
                deployment_config=chosen if chosen in SERVER_CONFIGS else DEFAULT_CONFIG,
                on_premises_tags=dict(target.on_premises_tags),
                ec2_tags=dict(target.ec2_tags),
            )
        )
    return found
