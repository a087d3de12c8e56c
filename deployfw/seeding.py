"""What a backend needs to exist before it can deploy: the vocabulary of sandbox seeding.

``deployfw --sandbox`` and ``deployfw sandbox`` create, in the embedded sandbox, the
infrastructure a team creates once in AWS (clusters, services behind load balancers,
CodeDeploy groups, repositories, build projects, Jenkins jobs). Only the backend that uses a
resource knows its name and shape - the service a deploy section names, the job a Jenkins
build triggers - so each backend plugin answers the ``deployfw_sandbox_seed`` hook with these
plain descriptions for its modules, and the sandbox (which imports no plugin) creates them.
A third-party backend whose resources are not in this vocabulary returns :class:`AwsCall`
items: plain AWS API calls the sandbox makes against itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

DeployKind = Literal["bluegreen", "rolling", "nlb", "native"]
LoadBalancerType = Literal["application", "network"]


@dataclass(frozen=True)
class ServiceInfra:
    """An ECS service and what surrounds it for one deployable module.

    ``deploy_kind``: ``bluegreen`` (CODE_DEPLOY controller behind an ALB with a CodeDeploy
    group), ``nlb`` (the same behind an NLB), ``rolling`` (ECS controller behind an ALB),
    ``native`` (ECS controller with an ECS-native blue/green strategy: its load balancer names the
    alternate target group, the production and test listener rules - each forwarding to both
    target groups - and ``infrastructure_role``). ``load_balancer`` overrides the kind's
    balancer (``network`` for ``nlb``, else ``application``). ``ecr_repository`` /
    ``codebuild_project`` are created too when set.
    """

    module: str
    cluster: str
    service: str
    deploy_kind: DeployKind = "bluegreen"
    container_name: str = "app"
    container_port: int = 8080
    health_check_path: str = "/health"
    ecr_repository: str | None = None
    codebuild_project: str | None = None
    codedeploy_application: str | None = None
    deployment_group: str | None = None
    deployment_config: str = "CodeDeployDefault.ECSAllAtOnce"
    listener_ports: tuple[int, int] = (80, 8080)
    desired_count: int = 1
    buildspec: str = "buildspec.yml"
    extra: dict[str, Any] = field(default_factory=dict)
    load_balancer: LoadBalancerType | None = None
    infrastructure_role: str = "deployfw-ecs-infrastructure-role"

    @property
    def network(self) -> bool:
        """Behind a Network Load Balancer."""
        return (self.load_balancer or ("network" if self.deploy_kind == "nlb" else "application")) == "network"

    @property
    def repository(self) -> str:
        return self.ecr_repository or self.module

    @property
    def project(self) -> str:
        return self.codebuild_project or f"{self.module}-build"

    @property
    def application(self) -> str:
        return self.codedeploy_application or f"{self.module}-app"

    @property
    def group(self) -> str:
        return self.deployment_group or f"{self.module}-dg"


@dataclass(frozen=True)
class JenkinsJob:
    """A Jenkins job that builds one module: it runs ``command`` (argv) in the repository root.

    ``parameters`` maps every parameter the build backend sends to its default; the sandbox
    adds the AWS endpoint and credentials to the job's environment.
    """

    module: str
    name: str  # full name, folders separated by "/"
    command: Sequence[str]
    parameters: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AwsCall:
    """Any other resource: one AWS API call (boto3 names) the sandbox makes against itself.

    ``exists_codes`` are error codes that mean "already there" (seeding is repeated on every
    start and must be idempotent).
    """

    module: str
    service: str
    operation: str
    params: Mapping[str, Any] = field(default_factory=dict)
    exists_codes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServerFleet:
    """A CodeDeploy application on the Server platform, its deployment group and the servers it deploys to.

    What a team creates once for the IDC route: the group selects instances by tag, and the
    instances are registered on-premises servers carrying ``on_premises_tags`` (the group filters
    on each key and value) and/or EC2 instances carrying ``ec2_tags``. The sandbox creates
    ``instances`` of each kind that has tags (at least 2), each a host with its own address and
    root folder running the sandbox's CodeDeploy agent.
    """

    module: str
    application: str
    deployment_group: str
    deployment_config: str = "CodeDeployDefault.OneAtATime"
    on_premises_tags: Mapping[str, str] = field(default_factory=dict)
    ec2_tags: Mapping[str, str] = field(default_factory=dict)
    instances: int = 2


Seed = ServiceInfra | JenkinsJob | AwsCall | ServerFleet
