"""Seeding contract: what seed() creates in-process is what plain boto3 clients see, and re-seeding changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sandbox_infra import AWS_INFRA

from deployfw.sandbox.aws import AwsSandbox, seed


def test_reseeding_creates_nothing_and_sends_no_requests(aws_sandbox: AwsSandbox) -> None:
    aws_sandbox.clear_requests()
    first, again = aws_sandbox.seeded, seed(aws_sandbox, AWS_INFRA)  # type: ignore[attr-defined]
    assert (again.vpc_id, again.subnet_ids, again.security_group_id, again.roles) == (
        first.vpc_id,
        first.subnet_ids,
        first.security_group_id,
        first.roles,
    )
    for name, svc in first.services.items():  # task definitions move on as other tests deploy
        other = again.services[name]
        assert (other.load_balancer_arn, other.target_group_arns, other.listener_arns, other.repository_uri) == (
            svc.load_balancer_arn,
            svc.target_group_arns,
            svc.listener_arns,
            svc.repository_uri,
        )
    assert aws_sandbox.requests() == []  # seeding talks to moto's backends, not through the endpoint


def test_seeded_resources_are_what_boto3_sees(aws_sandbox: AwsSandbox, aws_client: Callable[[str], Any]) -> None:
    seeded = aws_sandbox.seeded  # type: ignore[attr-defined]
    ec2, elb, ecs, cd = aws_client("ec2"), aws_client("elbv2"), aws_client("ecs"), aws_client("codedeploy")

    [vpc] = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["deployfw-sandbox"]}])["Vpcs"]
    assert vpc["VpcId"] == seeded.vpc_id
    attr = ec2.describe_vpc_attribute(VpcId=seeded.vpc_id, Attribute="enableDnsHostnames")
    assert attr["EnableDnsHostnames"]["Value"] is True
    subnets = ec2.describe_subnets(SubnetIds=seeded.subnet_ids)["Subnets"]
    assert sorted(s["CidrBlock"] for s in subnets) == ["10.42.0.0/24", "10.42.1.0/24"]

    bluegreen, nlb, rolling = seeded.services["user-api"], seeded.services["nlb-api"], seeded.services["order-api"]
    [lb] = elb.describe_load_balancers(LoadBalancerArns=[nlb.load_balancer_arn])["LoadBalancers"]
    assert lb["Type"] == "network"
    listeners = elb.describe_listeners(LoadBalancerArn=bluegreen.load_balancer_arn)["Listeners"]
    assert sorted(int(x["Port"]) for x in listeners) == [80, 8080]
    groups = elb.describe_target_groups(TargetGroupArns=list(bluegreen.target_group_arns))["TargetGroups"]
    assert {g["HealthCheckPath"] for g in groups} == {"/health"} and {g["TargetType"] for g in groups} == {"ip"}

    services = ecs.describe_services(cluster="test-cluster", services=["user-api", "order-api"])["services"]
    by_name = {s["serviceName"]: s for s in services}
    assert by_name["user-api"]["deploymentController"]["type"] == "CODE_DEPLOY"
    assert len(by_name["user-api"]["taskSets"]) == 1
    assert by_name["order-api"]["deploymentController"]["type"] == "ECS"
    assert by_name["order-api"]["deploymentConfiguration"]["deploymentCircuitBreaker"] == {
        "enable": True,
        "rollback": True,
    }
    assert rolling.task_definition_arn.endswith(":task-definition/order-api:1")

    group = cd.get_deployment_group(applicationName="user-api-app", deploymentGroupName="user-api-dg")
    info = group["deploymentGroupInfo"]
    assert info["deploymentStyle"]["deploymentType"] == "BLUE_GREEN"
    assert info["autoRollbackConfiguration"]["enabled"] is True
    assert aws_client("codebuild").batch_get_projects(names=["user-api-build"])["projects"]
