"""Create, idempotently, the AWS infrastructure deployfw's service modules deploy to.

Each backend plugin describes what its modules need as :class:`deployfw.seeding.ServiceInfra`
(the ``deployfw_sandbox_seed`` hook); this module only turns that list into resources. It
calls the sandbox's moto backends in-process, with the arguments moto's own request handlers
would pass them for the equivalent boto3 calls (plus the handlers' own validation where they
add any), and under the sandbox lock like any request. Going through boto3 and HTTP instead
cost ~100 round trips and a botocore client per service (each parsing its service model) -
most of ``deployfw sandbox``'s start-up - for the same resources. Re-running with the same
list creates nothing new; it also registers which module owns which service, deployment
group and CodeBuild project, so ``deploy:<module>``/``build:<module>`` faults find their target.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from deployfw.sandbox.aws.placeholder_image import push_placeholder
from deployfw.sandbox.aws.server import ACCOUNT_ID, AwsSandbox
from deployfw.seeding import ServiceInfra

_TAG = "deployfw-sandbox"


@dataclass
class SeededService:
    """ARNs and names created for one module (returned for tests and the CLI)."""

    infra: ServiceInfra
    load_balancer_arn: str
    target_group_arns: tuple[str, str]
    listener_arns: tuple[str, str]
    task_definition_arn: str
    repository_uri: str


@dataclass
class SeedResult:
    vpc_id: str
    subnet_ids: list[str]
    security_group_id: str
    roles: dict[str, str]
    services: dict[str, SeededService]


def _short(name: str, suffix: str, limit: int = 32) -> str:
    return f"{name[: limit - len(suffix) - 1]}-{suffix}"


def _ecs_controller(**more: Any) -> dict[str, Any]:
    """The deployment configuration an ECS-controller service is seeded with: the circuit breaker on, with rollback."""
    return {"deploymentCircuitBreaker": {"enable": True, "rollback": True}, "maximumPercent": 200,
            "minimumHealthyPercent": 100, **more}  # fmt: skip


class _Seeder:
    """Seeding for one region, straight against moto's backends (see the module docstring).

    Each method mirrors the boto3 calls a client would make (describe, then create what
    is missing) and passes what moto's request handler for that call would pass.
    """

    def __init__(self, region: str) -> None:
        from moto.codebuild.models import codebuild_backends
        from moto.codedeploy.models import codedeploy_backends
        from moto.ec2.models import ec2_backends
        from moto.ecr.models import ecr_backends
        from moto.ecs.models import ecs_backends
        from moto.elbv2.models import elbv2_backends
        from moto.iam.models import iam_backends
        from moto.logs.models import logs_backends
        from moto.utilities.utils import get_partition

        from deployfw.sandbox.aws.ecs import SandboxEcsBackend

        self.region = region
        self.ec2 = ec2_backends[ACCOUNT_ID][region]
        self.elb = elbv2_backends[ACCOUNT_ID][region]
        ecs = ecs_backends[ACCOUNT_ID][region]
        # The sandbox swaps its ECS backend into moto before anything is seeded; seeding finishes
        # a created service the way the sandbox's CreateService handler does (service_created).
        assert isinstance(ecs, SandboxEcsBackend), "the sandbox's ECS backend is not installed"
        self.ecs = ecs
        self.ecr = ecr_backends[ACCOUNT_ID][region]
        self.cd = codedeploy_backends[ACCOUNT_ID][region]
        self.cb = codebuild_backends[ACCOUNT_ID][region]
        self.logs = logs_backends[ACCOUNT_ID][region]
        self.iam = iam_backends[ACCOUNT_ID][get_partition(region)]

    # -- shared network and roles ------------------------------------------------------------

    def network(self) -> tuple[str, list[str], str]:
        ec2 = self.ec2
        vpcs = ec2.describe_vpcs(filters={"tag:Name": [_TAG]})
        if vpcs:
            vpc_id = vpcs[0].id
        else:
            vpc_id = ec2.create_vpc("10.42.0.0/16", ipv6_cidr_block_network_border_group=self.region).id
            ec2.create_tags([vpc_id], {"Name": _TAG})
            # The parsed boolean, as moto's ModifyVpcAttribute handler passes it (moto annotates it str).
            ec2.modify_vpc_attribute(vpc_id, "enable_dns_hostnames", cast(str, True))
        subnets = ec2.describe_subnets(filters={"vpc-id": [vpc_id]})
        subnet_ids = [s.id for s in sorted(subnets, key=lambda s: s.cidr_block)]
        zones = [f"{self.region}a", f"{self.region}b"]
        for index in range(len(subnet_ids), 2):
            subnet_ids.append(ec2.create_subnet(vpc_id, f"10.42.{index}.0/24", None, zones[index], None, tags={}).id)
        groups = ec2.describe_security_groups(filters={"vpc-id": [vpc_id], "group-name": [_TAG]})
        sg_id = groups[0].id if groups else ec2.create_security_group(_TAG, "deployfw sandbox services", vpc_id, {}).id
        return vpc_id, subnet_ids[:2], sg_id

    def roles(self) -> dict[str, str]:
        trust = {
            "ecsTaskExecutionRole": "ecs-tasks.amazonaws.com",
            "deployfw-codedeploy-role": "codedeploy.amazonaws.com",
            "deployfw-codebuild-role": "codebuild.amazonaws.com",
        }
        existing = {role.name for role in self.iam.roles.values()}
        arns: dict[str, str] = {}
        for name, principal in trust.items():
            if name not in existing:
                self._create_service_role(name, principal)
            arns[name] = f"arn:aws:iam::{ACCOUNT_ID}:role/{name}"
        return arns

    def _create_service_role(self, name: str, service: str) -> None:
        """CreateRole of a role ``service`` may assume, with no path, description or session limit given."""
        doc = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
        # As moto's CreateRole handler passes an absent Description: None, so GetRole shows none, as in
        # AWS ("" would show an empty one); moto annotates the parameter as str.
        no_description = cast(str, None)
        self.iam.create_role(name, json.dumps(doc), "/", None, no_description, [], "3600")

    # -- one service ---------------------------------------------------------------------------

    def service(
        self, infra: ServiceInfra, vpc_id: str, subnets: list[str], sg: str, roles: dict[str, str]
    ) -> SeededService:
        repo_uri = self._repository(infra)
        lb_arn, tgs, listeners = self._load_balancer(infra, vpc_id, subnets, sg)
        taskdef_arn = self._task_definition(infra, repo_uri, roles)
        network = {"awsvpcConfiguration": {"subnets": subnets, "securityGroups": [sg], "assignPublicIp": "DISABLED"}}
        if infra.deploy_kind == "native":
            self._native_service(infra, taskdef_arn, tgs, listeners, network)
        else:
            self._ecs_service(infra, taskdef_arn, tgs[0], network)
        if infra.deploy_kind in ("bluegreen", "nlb"):
            self._codedeploy(infra, tgs, listeners, roles)
        self._codebuild(infra, roles, repo_uri)
        return SeededService(infra, lb_arn, tgs, listeners, taskdef_arn, repo_uri)

    def _repository(self, infra: ServiceInfra) -> str:
        found = self.ecr.repositories.get(infra.repository)
        if found is None:
            found = self.ecr.create_repository(
                repository_name=infra.repository,
                registry_id=None,
                encryption_config={},  # none given: moto (as ECR) applies AES256
                image_scan_config=None,
                image_tag_mutability="",  # none given: MUTABLE
                image_tag_mutability_exclusion_filters=None,
                tags=[],
            )
        # The seeded task definition names REPO:initial: it must be an image tasks can run.
        push_placeholder(self.ecr, infra.repository, port=infra.container_port, name=infra.service)
        return str(found.uri)

    def _base(self, infra: ServiceInfra) -> str:
        """The name a service's load balancer and target groups start with: the service's own, unless
        a service of that name in another cluster (another environment) already uses it - each service
        needs its own, now that listeners really forward to the targets registered with them."""
        plain = {_short(infra.service, color) for color in ("blue", "green")}
        taken_by = {
            (svc.cluster_name, svc.name)
            for svc in self.ecs.services.values()
            for lb in svc.load_balancers or []
            if getattr(self.elb.target_groups.get(lb.get("targetGroupArn", "")), "name", None) in plain
        }
        if not taken_by or (infra.cluster, infra.service) in taken_by:
            return infra.service
        return f"{infra.cluster}-{infra.service}"

    def _load_balancer(
        self, infra: ServiceInfra, vpc_id: str, subnets: list[str], sg: str
    ) -> tuple[str, tuple[str, str], tuple[str, str]]:
        elb = self.elb
        nlb = infra.network
        name = _short(self._base(infra), "nlb" if nlb else "alb")
        balancer = next((lb for lb in elb.load_balancers.values() if lb.name == name), None)
        if balancer is None:
            balancer = elb.create_load_balancer(
                name=name,
                security_groups=[] if nlb else [sg],
                subnet_ids=subnets,
                subnet_mappings=[],
                scheme=None,  # type: ignore[arg-type]  # what the handler passes when Scheme is absent
                loadbalancer_type="network" if nlb else "application",
                ip_address_type="ipv4",
                tags=None,
            )
        lb_arn = str(balancer.arn)
        protocol = "TCP" if nlb else "HTTP"
        tgs = []
        for color in ("blue", "green"):
            tg_name = _short(self._base(infra), color)
            group = next((tg for tg in elb.target_groups.values() if tg.name == tg_name), None)
            if group is None:
                group = elb.create_target_group(
                    tg_name,
                    vpc_id=vpc_id,
                    protocol=protocol,
                    protocol_version=None,
                    port=infra.container_port,
                    healthcheck_protocol=None,
                    healthcheck_port=None,
                    healthcheck_path=None if nlb else infra.health_check_path,
                    healthcheck_interval_seconds=None,
                    healthcheck_timeout_seconds=None,
                    healthcheck_enabled=None,
                    healthy_threshold_count=None,
                    unhealthy_threshold_count=None,
                    matcher=None,
                    ip_address_type=None,
                    target_type="ip",
                    tags=None,
                )
            tgs.append(str(group.arn))
        existing = {int(listener.port): str(listener.arn) for listener in elb.describe_listeners(lb_arn, [])}
        native = infra.deploy_kind == "native"
        forward = _native_forward((tgs[0], tgs[1])) if native else {"Type": "forward", "TargetGroupArn": tgs[0]}
        listeners = []
        for port in infra.listener_ports:
            if port not in existing:
                existing[port] = elb.create_listener(
                    load_balancer_arn=lb_arn,
                    protocol=protocol,
                    # The parsed integer, as moto's CreateListener handler passes it and DescribeListeners
                    # returns it (moto annotates it str).
                    port=cast(str, port),
                    ssl_policy="ELBSecurityPolicy-2016-08",
                    certificate=None,
                    actions=[forward],
                    alpn_policy=[],
                    tags=None,
                ).arn
            listeners.append(existing[port])
        return lb_arn, (tgs[0], tgs[1]), (listeners[0], listeners[1])

    def _task_definition(self, infra: ServiceInfra, repo_uri: str, roles: dict[str, str]) -> str:
        if self.ecs.task_definitions.get(infra.service):
            return str(self.ecs.describe_task_definition(infra.service).arn)
        return str(
            self.ecs.register_task_definition(
                infra.service,
                [
                    {
                        "name": infra.container_name,
                        "image": f"{repo_uri}:initial",
                        "cpu": 256,
                        "memory": 512,
                        "essential": True,
                        "portMappings": [{"containerPort": infra.container_port, "protocol": "tcp"}],
                    }
                ],
                volumes=None,
                network_mode="awsvpc",
                tags=None,
                placement_constraints=None,
                requires_compatibilities=["FARGATE"],
                cpu="256",
                memory="512",
                task_role_arn=None,
                execution_role_arn=roles["ecsTaskExecutionRole"],
                proxy_configuration=None,
                inference_accelerators=None,
                runtime_platform=None,
                ipc_mode=None,
                pid_mode=None,
                ephemeral_storage=None,
            ).arn
        )

    def _ecs_service(self, infra: ServiceInfra, taskdef: str, tg: str, network: dict[str, Any]) -> None:
        ecs = self.ecs
        if self._service_exists(infra):
            return
        lbs = [{"targetGroupArn": tg, "containerName": infra.container_name, "containerPort": infra.container_port}]
        rolling = infra.deploy_kind == "rolling"
        self._create_service(
            infra, taskdef, lbs, network, "ECS" if rolling else "CODE_DEPLOY", _ecs_controller() if rolling else None
        )
        if rolling:
            return
        task_set = ecs.create_task_set(
            infra.service,
            infra.cluster,
            taskdef,
            external_id=None,
            network_configuration=network,
            load_balancers=lbs,
            service_registries=None,
            launch_type="FARGATE",
            capacity_provider_strategy=None,
            platform_version=None,
            scale=None,
            client_token=None,
            tags=None,
        )
        ecs.update_service_primary_task_set(infra.cluster, infra.service, task_set.task_set_arn)

    def _native_service(
        self,
        infra: ServiceInfra,
        taskdef: str,
        tgs: tuple[str, str],
        listeners: tuple[str, str],
        network: dict[str, Any],
    ) -> None:
        """An ECS-controller service set up for ECS-native blue/green, linear and canary deployments.

        The load balancer names the alternate target group, the production and test listener
        rules (an NLB's listeners themselves; an ALB listener's default rule) and the
        infrastructure role, and both listeners forward to both target groups (weights 1 and 0).
        """
        if self._service_exists(infra):
            return
        rules = [arn if infra.network else self._default_rule(arn) for arn in listeners]
        role = self._infrastructure_role(infra.infrastructure_role)
        advanced = {"alternateTargetGroupArn": tgs[1], "productionListenerRule": rules[0],
                    "testListenerRule": rules[1], "roleArn": role}  # fmt: skip
        lbs = [{"targetGroupArn": tgs[0], "containerName": infra.container_name,
                "containerPort": infra.container_port, "advancedConfiguration": advanced}]  # fmt: skip
        self._create_service(infra, taskdef, lbs, network, "ECS",
                             _ecs_controller(strategy="BLUE_GREEN", bakeTimeInMinutes=0))  # fmt: skip

    def _service_exists(self, infra: ServiceInfra) -> bool:
        """Whether the service is ACTIVE already (seeding is idempotent); its cluster is created if missing."""
        if infra.cluster not in self.ecs.clusters:  # CreateCluster of an existing name returns it unchanged, as in AWS
            self.ecs.create_cluster(infra.cluster)
        found, _ = self.ecs.describe_services(infra.cluster, [infra.service])
        return any(s.status == "ACTIVE" for s in found)

    def _create_service(
        self,
        infra: ServiceInfra,
        taskdef: str,
        lbs: list[dict[str, Any]],
        network: dict[str, Any],
        controller: str,
        deployment_configuration: dict[str, Any] | None,
    ) -> Any:
        """CreateService as moto's handler makes it, then what SandboxEcsResponse.create_service adds after it."""
        service = self.ecs.create_service(
            infra.cluster,
            infra.service,
            infra.desired_count,
            taskdef,
            lbs,
            None,
            None,
            {"type": controller},
            "FARGATE",
            network_configuration=network,
            service_registries=None,
            platform_version=None,
            propagate_tags="NONE",
            role_arn=None,
        )
        self.ecs.service_created(service, deployment_configuration)
        return service

    def _infrastructure_role(self, name: str) -> str:
        """The role ECS assumes to move listener rules (AWS's managed policy for it:
        AmazonECSInfrastructureRolePolicyForLoadBalancers); trusted by ecs.amazonaws.com."""
        if name not in {role.name for role in self.iam.roles.values()}:
            self._create_service_role(name, "ecs.amazonaws.com")
        return f"arn:aws:iam::{ACCOUNT_ID}:role/{name}"

    def _default_rule(self, listener_arn: str) -> str:
        return next(str(r.arn) for r in self.elb.describe_rules(listener_arn, None) if r.is_default)

    def _codedeploy(
        self,
        infra: ServiceInfra,
        tgs: tuple[str, str],
        listeners: tuple[str, str],
        roles: dict[str, str],
    ) -> None:
        cd = self.cd
        if infra.application not in cd.applications:
            cd.create_application(application_name=infra.application, compute_platform="ECS", tags=[])
        if infra.group in cd.deployment_groups.get(infra.application, {}):
            return
        cd.create_deployment_group(
            application_name=infra.application,
            deployment_group_name=infra.group,
            deployment_config_name=(
                "CodeDeployDefault.ECSAllAtOnce" if infra.deploy_kind == "nlb" else infra.deployment_config
            ),
            ec2_tag_filters=None,
            on_premises_instance_tag_filters=None,
            auto_scaling_groups=None,
            service_role_arn=roles["deployfw-codedeploy-role"],
            trigger_configurations=None,
            alarm_configuration=None,
            auto_rollback_configuration={
                "enabled": True,
                "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_REQUEST"],
            },
            outdated_instances_strategy=None,
            deployment_style={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
            blue_green_deployment_configuration={
                "terminateBlueInstancesOnDeploymentSuccess": {"action": "TERMINATE", "terminationWaitTimeInMinutes": 0},
                "deploymentReadyOption": {"actionOnTimeout": "CONTINUE_DEPLOYMENT", "waitTimeInMinutes": 0},
            },
            load_balancer_info={
                "targetGroupPairInfoList": [
                    {
                        "targetGroups": [
                            {"name": _short(self._base(infra), "blue")},
                            {"name": _short(self._base(infra), "green")},
                        ],
                        "prodTrafficRoute": {"listenerArns": [listeners[0]]},
                        "testTrafficRoute": {"listenerArns": [listeners[1]]},
                    }
                ]
            },
            ec2_tag_set=None,
            ecs_services=[{"serviceName": infra.service, "clusterName": infra.cluster}],
            on_premises_tag_set=None,
            tags=None,
            termination_hook_enabled=None,
        )

    def _codebuild(self, infra: ServiceInfra, roles: dict[str, str], repo_uri: str) -> None:
        from moto.codebuild import responses as handlers

        group = f"/aws/codebuild/{infra.project}"
        if group not in self.logs.groups:
            self.logs.create_log_group(group, {}, kmsKeyId=None)
        if infra.project in self.cb.codebuild_projects:
            return
        source = {
            "type": "CODECOMMIT",
            "location": f"https://git-codecommit.{self.region}.amazonaws.com/v1/repos/{infra.module}",
            "buildspec": infra.buildspec,
        }
        artifacts = {"type": "NO_ARTIFACTS"}
        environment = {
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/standard:7.0",
            "computeType": "BUILD_GENERAL1_SMALL",
            "privilegedMode": True,
            "environmentVariables": [
                {"name": "MODULE", "value": infra.module, "type": "PLAINTEXT"},
                {"name": "REPOSITORY_URI", "value": repo_uri, "type": "PLAINTEXT"},
            ],
        }
        role = roles["deployfw-codebuild-role"]
        # CreateProject's handler validates before calling the backend; so do we.
        handlers._validate_required_params_source(source)
        handlers._validate_required_params_service_role(ACCOUNT_ID, self.region, role)
        handlers._validate_required_params_artifacts(artifacts)
        handlers._validate_required_params_environment(environment)
        handlers._validate_required_params_project_name(infra.project)
        self.cb.create_project(
            project_name=infra.project,
            description=None,
            project_source=source,
            artifacts=artifacts,
            environment=environment,
            service_role=role,
            tags=None,
            cache=None,
            timeout=None,
            queued_timeout=None,
            source_version=None,
            logs_config={"cloudWatchLogs": {"status": "ENABLED", "groupName": group}},
            vpc_config=None,
        )


def _native_forward(tgs: tuple[str, str]) -> dict[str, Any]:
    """What ECS-native blue/green needs of a listener rule: forward to both target groups, weights 1 and 0."""
    groups = [{"TargetGroupArn": tgs[0], "Weight": 1}, {"TargetGroupArn": tgs[1], "Weight": 0}]
    return {"Type": "forward", "ForwardConfig": {"TargetGroups": groups}}


def seed(sandbox: AwsSandbox, infra: Sequence[ServiceInfra], region: str = "us-east-1") -> SeedResult:
    """Create everything ``infra`` needs in ``region``; safe to call again.

    Holds the sandbox lock throughout, as every request does: the ticker and request
    threads must not see a half-created service.
    """
    sandbox.endpoint_url  # noqa: B018 - raises unless started (moto's backends are ours only then)
    with sandbox.ctx.lock:
        seeder = _Seeder(region)
        vpc_id, subnets, sg = seeder.network()
        roles = seeder.roles()
        services: dict[str, SeededService] = {}
        registry = sandbox.ctx.registry
        for item in infra:
            registry.services[(item.cluster, item.service)] = item.module
            registry.deployment_groups[(item.application, item.group)] = item.module
            registry.projects[item.project] = item.module
            services[item.module] = seeder.service(item, vpc_id, subnets, sg, roles)
    return SeedResult(vpc_id, subnets, sg, roles, services)
