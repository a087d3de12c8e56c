"""Setup refusals and response shapes as AWS has them (ECS, CodeDeploy, ELBv2, ECR, the wire)."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError

from deployfw.sandbox.clock import SandboxClock
from deployfw.testing.images import image_for

ACTIVE = ("Created", "Queued", "InProgress", "Ready")


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def _taskdef(ecs: Any, family: str, version: str) -> str:
    return ecs.register_task_definition(
        family=family,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[
            {"name": "app", "image": image_for(ecs, family, version), "portMappings": [{"containerPort": 8080}]}
        ],
    )["taskDefinition"]["taskDefinitionArn"]


def _appspec(taskdef: str, hooks: str = "") -> str:
    return (
        "version: 0.0\nResources:\n  - TargetService:\n      Type: AWS::ECS::Service\n"
        f'      Properties:\n        TaskDefinition: "{taskdef}"\n        LoadBalancerInfo:\n'
        f"          ContainerName: app\n          ContainerPort: 8080\n{hooks}"
    )


def _deploy(cd: Any, module: str, content: str) -> str:
    deadline = time.monotonic() + 30
    while cd.list_deployments(applicationName=f"{module}-app", deploymentGroupName=f"{module}-dg",
                              includeOnlyStatuses=list(ACTIVE))["deployments"]:  # fmt: skip
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return str(
        cd.create_deployment(
            applicationName=f"{module}-app",
            deploymentGroupName=f"{module}-dg",
            revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": content}},
        )["deploymentId"]
    )


def _status(cd: Any, deployment_id: str) -> str:
    return str(cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]["status"])


def _until(predicate: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.05)
    return value


def _prod_group(elb: Any, listener: str) -> str:
    action = elb.describe_listeners(ListenerArns=[listener])["Listeners"][0]["DefaultActions"][0]
    if "TargetGroupArn" in action:
        return str(action["TargetGroupArn"])
    return str(max(action["ForwardConfig"]["TargetGroups"], key=lambda g: g["Weight"])["TargetGroupArn"])


# -- setup refusals ----------------------------------------------------------------------------


def test_a_second_deployment_group_for_one_ecs_service_is_refused(aws_client) -> None:
    cd = aws_client("codedeploy")
    cd.create_application(applicationName="second-app", computePlatform="ECS")
    group = cd.get_deployment_group(applicationName="user-api-app", deploymentGroupName="user-api-dg")
    info = group["deploymentGroupInfo"]
    with pytest.raises(ClientError) as refused:
        cd.create_deployment_group(
            applicationName="second-app", deploymentGroupName="again", serviceRoleArn=info["serviceRoleArn"],
            deploymentStyle=info["deploymentStyle"], ecsServices=info["ecsServices"],
            loadBalancerInfo=info["loadBalancerInfo"],
        )  # fmt: skip
    assert _code(refused) == "ECSServiceMappingLimitExceededException"


def test_a_refused_update_of_a_deployment_group_saves_nothing(aws_client) -> None:
    cd = aws_client("codedeploy")
    before = cd.get_deployment_group(applicationName="cli-api-app", deploymentGroupName="cli-api-dg")
    with pytest.raises(ClientError) as refused:  # an EC2/on-premises config on an ECS group, plus a role change
        cd.update_deployment_group(
            applicationName="cli-api-app", currentDeploymentGroupName="cli-api-dg",
            deploymentConfigName="CodeDeployDefault.OneAtATime",
            serviceRoleArn="arn:aws:iam::123456789012:role/other",
        )  # fmt: skip
    assert _code(refused) == "InvalidDeploymentConfigNameException"
    after = cd.get_deployment_group(applicationName="cli-api-app", deploymentGroupName="cli-api-dg")
    assert after["deploymentGroupInfo"] == before["deploymentGroupInfo"]


def test_code_deploy_services_refuse_what_only_codedeploy_may_change(aws_client) -> None:
    ecs = aws_client("ecs")
    with pytest.raises(ClientError) as forced:
        ecs.update_service(cluster="test-cluster", service="cli-api", forceNewDeployment=True)
    assert _code(forced) == "InvalidParameterException" and "CODE_DEPLOY" in forced.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as moved:
        ecs.update_service(cluster="test-cluster", service="cli-api", desiredCount=1,
                           networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-9"]}})  # fmt: skip
    assert _code(moved) == "InvalidParameterException"
    kept = ecs.update_service(cluster="test-cluster", service="cli-api", healthCheckGracePeriodSeconds=30,
                              deploymentConfiguration={"minimumHealthyPercent": 50})["service"]  # fmt: skip
    assert kept["healthCheckGracePeriodSeconds"] == 30
    assert kept["deploymentConfiguration"]["minimumHealthyPercent"] == 50


def test_a_code_deploy_service_needs_a_load_balancer(aws_client) -> None:
    ecs = aws_client("ecs")
    taskdef = ecs.describe_services(cluster="test-cluster", services=["cli-api"])["services"][0]["taskDefinition"]
    with pytest.raises(ClientError) as refused:
        ecs.create_service(cluster="test-cluster", serviceName="no-lb", taskDefinition=taskdef, desiredCount=1,
                           deploymentController={"type": "CODE_DEPLOY"}, launchType="FARGATE",
                           networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-1"]}})  # fmt: skip
    assert _code(refused) == "InvalidParameterException"


# -- shapes ------------------------------------------------------------------------------------


def test_nlb_arns_and_target_groups_name_each_load_balancer_once(aws_sandbox, aws_client) -> None:
    elb = aws_client("elbv2")
    seeded = aws_sandbox.seeded.services["nlb-api"]
    assert ":loadbalancer/net/nlb-api-nlb/" in seeded.load_balancer_arn
    assert all(":listener/net/" in arn for arn in seeded.listener_arns)
    groups = elb.describe_target_groups(TargetGroupArns=list(seeded.target_group_arns))["TargetGroups"]
    for group in groups:
        assert len(group["LoadBalancerArns"]) == len(set(group["LoadBalancerArns"]))


def test_image_size_is_the_layers_as_stored(aws_client) -> None:
    ecr = aws_client("ecr")
    uri = image_for(aws_client("ecs"), "cli-api", "sized")
    digest = uri.rsplit("@", 1)[1]
    (detail,) = ecr.describe_images(repositoryName="cli-api", imageIds=[{"imageDigest": digest}])["imageDetails"]
    (image,) = ecr.batch_get_image(repositoryName="cli-api", imageIds=[{"imageDigest": digest}])["images"]
    manifest = json.loads(image["imageManifest"])
    assert detail["imageSizeInBytes"] == sum(layer["size"] for layer in manifest["layers"])


def test_an_unknown_operation_is_a_400(aws_sandbox) -> None:
    request = urllib.request.Request(
        aws_sandbox.endpoint_url + "/", data=b"{}", method="POST",
        headers={"X-Amz-Target": "AmazonEC2ContainerServiceV20141113.NoSuchOperation",
                 "Content-Type": "application/x-amz-json-1.1",
                 "Authorization": "AWS4-HMAC-SHA256 Credential=k/20260101/us-east-1/ecs/aws4_request, "
                                  "SignedHeaders=host, Signature=0"},
    )  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(request, timeout=10)
    assert answer.value.code == 400
    assert json.load(answer.value)["__type"] == "UnknownOperationException"


def test_list_deployments_is_newest_first(aws_client) -> None:
    cd, ecs = aws_client("codedeploy"), aws_client("ecs")
    first = _deploy(cd, "cli-api", _appspec(_taskdef(ecs, "cli-api", "order-1")))
    _until(lambda: _status(cd, first) not in ACTIVE)
    second = _deploy(cd, "cli-api", _appspec(_taskdef(ecs, "cli-api", "order-2")))
    _until(lambda: _status(cd, second) not in ACTIVE)
    listed = cd.list_deployments(applicationName="cli-api-app", deploymentGroupName="cli-api-dg")["deployments"]
    assert listed.index(second) < listed.index(first)


# -- waits the deployment group names -------------------------------------------------------------


def test_ready_wait_and_termination_wait_hold_until_continued(aws_sandbox, aws_client) -> None:
    cd, ecs, elb = aws_client("codedeploy"), aws_client("ecs"), aws_client("elbv2")
    listener = aws_sandbox.seeded.services["stop-api"].listener_arns[0]
    cd.update_deployment_group(
        applicationName="stop-api-app", currentDeploymentGroupName="stop-api-dg",
        blueGreenDeploymentConfiguration={
            "deploymentReadyOption": {"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 60},
            "terminateBlueInstancesOnDeploymentSuccess": {"action": "TERMINATE", "terminationWaitTimeInMinutes": 60},
        },
    )  # fmt: skip
    saved = aws_sandbox.ctx.clock
    aws_sandbox.ctx.clock = SandboxClock(60)  # an hour's termination wait would take a real minute
    try:
        original = _prod_group(elb, listener)
        deployment_id = _deploy(cd, "stop-api", _appspec(_taskdef(ecs, "stop-api", "ready-1")))
        _until(lambda: _status(cd, deployment_id) == "Ready")
        assert _prod_group(elb, listener) == original  # nothing rerouted while it waits
        cd.continue_deployment(deploymentId=deployment_id, deploymentWaitType="READY_WAIT")
        _until(lambda: _prod_group(elb, listener) != original)
        assert _status(cd, deployment_id) == "InProgress"  # the original task set is kept for the wait
        cd.continue_deployment(deploymentId=deployment_id, deploymentWaitType="TERMINATION_WAIT")
        _until(lambda: _status(cd, deployment_id) == "Succeeded")
    finally:
        aws_sandbox.ctx.clock = saved
        cd.update_deployment_group(
            applicationName="stop-api-app", currentDeploymentGroupName="stop-api-dg",
            blueGreenDeploymentConfiguration={
                "deploymentReadyOption": {"actionOnTimeout": "CONTINUE_DEPLOYMENT", "waitTimeInMinutes": 0},
                "terminateBlueInstancesOnDeploymentSuccess": {"action": "TERMINATE",
                                                              "terminationWaitTimeInMinutes": 0},
            },
        )  # fmt: skip


def test_an_appspec_hook_holds_its_event_until_it_reports(aws_sandbox, aws_client) -> None:
    cd, ecs = aws_client("codedeploy"), aws_client("ecs")
    hooks = 'Hooks:\n  - BeforeAllowTraffic: "CheckBeforeTraffic"\n'
    deployment_id = _deploy(cd, "cli-api", _appspec(_taskdef(ecs, "cli-api", "hooked"), hooks))

    def waiting() -> dict[str, Any] | None:
        with urllib.request.urlopen(f"{aws_sandbox.endpoint_url}/_sandbox/hooks", timeout=10) as answer:
            rows = [r for r in json.load(answer) if r["deployment_id"] == deployment_id and r["status"] == "Pending"]
        return rows[0] if rows else None

    hook = _until(waiting)
    assert hook["lifecycle_event"] == "BeforeAllowTraffic" and hook["function"] == "CheckBeforeTraffic"
    target = cd.get_deployment_target(deploymentId=deployment_id, targetId="test-cluster:cli-api")
    events = {e["lifecycleEventName"]: e["status"] for e in target["deploymentTarget"]["ecsTarget"]["lifecycleEvents"]}
    assert events["BeforeAllowTraffic"] == "InProgress" and events["AllowTraffic"] == "Pending"
    cd.put_lifecycle_event_hook_execution_status(deploymentId=deployment_id,
                                                 lifecycleEventHookExecutionId=hook["execution_id"],
                                                 status="Succeeded")  # fmt: skip
    _until(lambda: _status(cd, deployment_id) == "Succeeded")
