"""Create, idempotently, the AWS infrastructure deployfw's service modules deploy to.

The lead maps ``modules.yaml`` onto :class:`ServiceInfra`; this module only turns that
list into resources, through ordinary boto3 calls against the sandbox endpoint (so
seeding goes through exactly the validation every client meets). Re-running with the
same list creates nothing new; it also registers which module owns which service,
deployment group and CodeBuild project, so ``deploy:<module>``/``build:<module>``
faults find their target.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.exceptions import ClientError

from deployfw.sandbox.aws.server import ACCOUNT_ID, AwsSandbox

DeployKind = Literal["bluegreen", "rolling", "nlb"]
_TAG = "deployfw-sandbox"


@dataclass(frozen=True)
class ServiceInfra:
    """What one deployable module needs to exist in AWS."""

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


def _try(call: Callable[[], Any], *codes: str) -> Any:
    try:
        return call()
    except ClientError as exc:
        if exc.response["Error"]["Code"] in codes:
            return None
        raise


class _Seeder:
    def __init__(self, sandbox: AwsSandbox, region: str) -> None:
        self.sandbox, self.region = sandbox, region
        self._clients: dict[str, Any] = {}

    def c(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.sandbox.client(service, self.region)
        return self._clients[service]

    # -- shared network and roles ------------------------------------------------------------

    def network(self) -> tuple[str, list[str], str]:
        ec2 = self.c("ec2")
        vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [_TAG]}])["Vpcs"]
        if vpcs:
            vpc_id = vpcs[0]["VpcId"]
        else:
            vpc_id = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
            ec2.create_tags(Resources=[vpc_id], Tags=[{"Key": "Name", "Value": _TAG}])
            ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
        subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
        subnet_ids = [s["SubnetId"] for s in sorted(subnets, key=lambda s: s["CidrBlock"])]
        zones = [f"{self.region}a", f"{self.region}b"]
        for index in range(len(subnet_ids), 2):
            subnet_ids.append(
                ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.42.{index}.0/24", AvailabilityZone=zones[index])[
                    "Subnet"
                ]["SubnetId"]
            )
        groups = ec2.describe_security_groups(
            Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": [_TAG]}]
        )["SecurityGroups"]
        sg_id = (
            groups[0]["GroupId"]
            if groups
            else ec2.create_security_group(GroupName=_TAG, Description="deployfw sandbox services", VpcId=vpc_id)[
                "GroupId"
            ]
        )
        return vpc_id, subnet_ids[:2], sg_id

    def roles(self) -> dict[str, str]:
        iam = self.c("iam")
        trust = {
            "ecsTaskExecutionRole": "ecs-tasks.amazonaws.com",
            "deployfw-codedeploy-role": "codedeploy.amazonaws.com",
            "deployfw-codebuild-role": "codebuild.amazonaws.com",
        }
        arns: dict[str, str] = {}
        for name, principal in trust.items():
            doc = {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"Service": principal}, "Action": "sts:AssumeRole"}],
            }
            _try(
                lambda n=name, d=doc: iam.create_role(RoleName=n, AssumeRolePolicyDocument=json.dumps(d)),
                "EntityAlreadyExists",
            )
            arns[name] = f"arn:aws:iam::{ACCOUNT_ID}:role/{name}"
        return arns

    # -- one service ---------------------------------------------------------------------------

    def service(
        self, infra: ServiceInfra, vpc_id: str, subnets: list[str], sg: str, roles: dict[str, str]
    ) -> SeededService:
        repo_uri = self._repository(infra)
        lb_arn, tgs, listeners = self._load_balancer(infra, vpc_id, subnets, sg)
        taskdef_arn = self._task_definition(infra, repo_uri, roles)
        network = {"awsvpcConfiguration": {"subnets": subnets, "securityGroups": [sg], "assignPublicIp": "DISABLED"}}
        self._ecs_service(infra, taskdef_arn, tgs[0], network)
        if infra.deploy_kind in ("bluegreen", "nlb"):
            self._codedeploy(infra, tgs, listeners, roles)
        self._codebuild(infra, roles, repo_uri)
        return SeededService(infra, lb_arn, tgs, listeners, taskdef_arn, repo_uri)

    def _repository(self, infra: ServiceInfra) -> str:
        ecr = self.c("ecr")
        found = _try(
            lambda: ecr.describe_repositories(repositoryNames=[infra.repository]),
            "RepositoryNotFoundException",
        )
        if found:
            return str(found["repositories"][0]["repositoryUri"])
        return str(ecr.create_repository(repositoryName=infra.repository)["repository"]["repositoryUri"])

    def _load_balancer(
        self, infra: ServiceInfra, vpc_id: str, subnets: list[str], sg: str
    ) -> tuple[str, tuple[str, str], tuple[str, str]]:
        elb = self.c("elbv2")
        nlb = infra.deploy_kind == "nlb"
        name = _short(infra.service, "nlb" if nlb else "alb")
        found = _try(lambda: elb.describe_load_balancers(Names=[name]), "LoadBalancerNotFound")
        if found and found["LoadBalancers"]:
            lb_arn = found["LoadBalancers"][0]["LoadBalancerArn"]
        else:
            kwargs: dict[str, Any] = {"Name": name, "Subnets": subnets, "Type": "network" if nlb else "application"}
            if not nlb:
                kwargs["SecurityGroups"] = [sg]
            lb_arn = elb.create_load_balancer(**kwargs)["LoadBalancers"][0]["LoadBalancerArn"]
        protocol = "TCP" if nlb else "HTTP"
        tgs = []
        for color in ("blue", "green"):
            tg_name = _short(infra.service, color)
            got = _try(lambda n=tg_name: elb.describe_target_groups(Names=[n]), "TargetGroupNotFound")
            if got and got["TargetGroups"]:
                tgs.append(got["TargetGroups"][0]["TargetGroupArn"])
                continue
            kwargs = {
                "Name": tg_name,
                "Protocol": protocol,
                "Port": infra.container_port,
                "VpcId": vpc_id,
                "TargetType": "ip",
            }
            if not nlb:
                kwargs["HealthCheckPath"] = infra.health_check_path
            tgs.append(elb.create_target_group(**kwargs)["TargetGroups"][0]["TargetGroupArn"])
        existing = {
            int(listener["Port"]): listener["ListenerArn"]
            for listener in elb.describe_listeners(LoadBalancerArn=lb_arn)["Listeners"]
        }
        listeners = []
        for port in infra.listener_ports:
            if port not in existing:
                existing[port] = elb.create_listener(
                    LoadBalancerArn=lb_arn,
                    Protocol=protocol,
                    Port=port,
                    DefaultActions=[{"Type": "forward", "TargetGroupArn": tgs[0]}],
                )["Listeners"][0]["ListenerArn"]
            listeners.append(existing[port])
        return lb_arn, (tgs[0], tgs[1]), (listeners[0], listeners[1])

    def _task_definition(self, infra: ServiceInfra, repo_uri: str, roles: dict[str, str]) -> str:
        ecs = self.c("ecs")
        got = _try(lambda: ecs.describe_task_definition(taskDefinition=infra.service), "ClientException")
        if got:
            return str(got["taskDefinition"]["taskDefinitionArn"])
        return str(
            ecs.register_task_definition(
                family=infra.service,
                executionRoleArn=roles["ecsTaskExecutionRole"],
                networkMode="awsvpc",
                requiresCompatibilities=["FARGATE"],
                cpu="256",
                memory="512",
                containerDefinitions=[
                    {
                        "name": infra.container_name,
                        "image": f"{repo_uri}:initial",
                        "cpu": 256,
                        "memory": 512,
                        "essential": True,
                        "portMappings": [{"containerPort": infra.container_port, "protocol": "tcp"}],
                    }
                ],
            )["taskDefinition"]["taskDefinitionArn"]
        )

    def _ecs_service(self, infra: ServiceInfra, taskdef: str, tg: str, network: dict[str, Any]) -> None:
        ecs = self.c("ecs")
        _try(lambda: ecs.create_cluster(clusterName=infra.cluster))
        found = ecs.describe_services(cluster=infra.cluster, services=[infra.service])["services"]
        if any(s["status"] == "ACTIVE" for s in found):
            return
        lbs = [{"targetGroupArn": tg, "containerName": infra.container_name, "containerPort": infra.container_port}]
        common: dict[str, Any] = {
            "cluster": infra.cluster,
            "serviceName": infra.service,
            "desiredCount": infra.desired_count,
            "launchType": "FARGATE",
            "networkConfiguration": network,
            "loadBalancers": lbs,
        }
        if infra.deploy_kind == "rolling":
            ecs.create_service(
                taskDefinition=taskdef,
                deploymentController={"type": "ECS"},
                deploymentConfiguration={
                    "deploymentCircuitBreaker": {"enable": True, "rollback": True},
                    "maximumPercent": 200,
                    "minimumHealthyPercent": 100,
                },
                **common,
            )
            return
        ecs.create_service(taskDefinition=taskdef, deploymentController={"type": "CODE_DEPLOY"}, **common)
        task_set = ecs.create_task_set(
            cluster=infra.cluster,
            service=infra.service,
            taskDefinition=taskdef,
            launchType="FARGATE",
            networkConfiguration=network,
            loadBalancers=lbs,
        )["taskSet"]
        ecs.update_service_primary_task_set(
            cluster=infra.cluster, service=infra.service, primaryTaskSet=task_set["taskSetArn"]
        )

    def _codedeploy(
        self,
        infra: ServiceInfra,
        tgs: tuple[str, str],
        listeners: tuple[str, str],
        roles: dict[str, str],
    ) -> None:
        cd = self.c("codedeploy")
        _try(
            lambda: cd.create_application(applicationName=infra.application, computePlatform="ECS"),
            "ApplicationAlreadyExistsException",
        )
        if _try(
            lambda: cd.get_deployment_group(applicationName=infra.application, deploymentGroupName=infra.group),
            "DeploymentGroupDoesNotExistException",
        ):
            return
        cd.create_deployment_group(
            applicationName=infra.application,
            deploymentGroupName=infra.group,
            deploymentConfigName=(
                "CodeDeployDefault.ECSAllAtOnce" if infra.deploy_kind == "nlb" else infra.deployment_config
            ),
            serviceRoleArn=roles["deployfw-codedeploy-role"],
            deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
            blueGreenDeploymentConfiguration={
                "terminateBlueInstancesOnDeploymentSuccess": {"action": "TERMINATE", "terminationWaitTimeInMinutes": 0},
                "deploymentReadyOption": {"actionOnTimeout": "CONTINUE_DEPLOYMENT", "waitTimeInMinutes": 0},
            },
            autoRollbackConfiguration={"enabled": True, "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_REQUEST"]},
            ecsServices=[{"serviceName": infra.service, "clusterName": infra.cluster}],
            loadBalancerInfo={
                "targetGroupPairInfoList": [
                    {
                        "targetGroups": [
                            {"name": _short(infra.service, "blue")},
                            {"name": _short(infra.service, "green")},
                        ],
                        "prodTrafficRoute": {"listenerArns": [listeners[0]]},
                        "testTrafficRoute": {"listenerArns": [listeners[1]]},
                    }
                ]
            },
        )

    def _codebuild(self, infra: ServiceInfra, roles: dict[str, str], repo_uri: str) -> None:
        cb = self.c("codebuild")
        group = f"/aws/codebuild/{infra.project}"
        _try(lambda: self.c("logs").create_log_group(logGroupName=group), "ResourceAlreadyExistsException")
        if cb.batch_get_projects(names=[infra.project])["projects"]:
            return
        cb.create_project(
            name=infra.project,
            source={
                "type": "CODECOMMIT",
                "location": f"https://git-codecommit.{self.region}.amazonaws.com/v1/repos/{infra.module}",
                "buildspec": infra.buildspec,
            },
            artifacts={"type": "NO_ARTIFACTS"},
            environment={
                "type": "LINUX_CONTAINER",
                "image": "aws/codebuild/standard:7.0",
                "computeType": "BUILD_GENERAL1_SMALL",
                "privilegedMode": True,
                "environmentVariables": [
                    {"name": "MODULE", "value": infra.module, "type": "PLAINTEXT"},
                    {"name": "REPOSITORY_URI", "value": repo_uri, "type": "PLAINTEXT"},
                ],
            },
            serviceRole=roles["deployfw-codebuild-role"],
            logsConfig={"cloudWatchLogs": {"status": "ENABLED", "groupName": group}},
        )


def seed(sandbox: AwsSandbox, infra: Sequence[ServiceInfra], region: str = "us-east-1") -> SeedResult:
    """Create everything ``infra`` needs in ``region``; safe to call again."""
    seeder = _Seeder(sandbox, region)
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
