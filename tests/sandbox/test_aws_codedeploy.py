"""CodeDeploy ECS blue/green through plain boto3: lifecycle, refusals, failure paths."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from deployfw.testing.images import image_for

ACTIVE = ("Created", "Queued", "InProgress")


def _taskdef(ecs: Any, family: str, *, port: int = 8080, name: str = "app") -> str:
    return ecs.register_task_definition(
        family=family,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[
            {
                "name": name,
                "image": image_for(ecs, family, "new", port=port),
                "cpu": 256,
                "memory": 512,
                "portMappings": [{"containerPort": port}],
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]


def _appspec(taskdef: str, *, container: str = "app", port: int = 8080, as_json: bool = False) -> str:
    if as_json:
        return json.dumps(
            {
                "version": 0.0,
                "Resources": [
                    {
                        "TargetService": {
                            "Type": "AWS::ECS::Service",
                            "Properties": {
                                "TaskDefinition": taskdef,
                                "LoadBalancerInfo": {"ContainerName": container, "ContainerPort": port},
                            },
                        }
                    }
                ],
            }
        )
    return (
        "version: 0.0\nResources:\n  - TargetService:\n      Type: AWS::ECS::Service\n"
        f'      Properties:\n        TaskDefinition: "{taskdef}"\n        LoadBalancerInfo:\n'
        f"          ContainerName: {container}\n          ContainerPort: {port}\n"
    )


def _idle(cd: Any, module: str) -> None:
    """Wait until the group has no deployment running (a rollback of the previous test's runs on)."""
    import time

    deadline = time.monotonic() + 30
    while cd.list_deployments(applicationName=f"{module}-app", deploymentGroupName=f"{module}-dg",
                              includeOnlyStatuses=[*ACTIVE, "Ready"])["deployments"]:  # fmt: skip
        assert time.monotonic() < deadline, f"{module}: a deployment is still running"
        time.sleep(0.05)


def _deploy(cd: Any, module: str, content: str, *, wait_idle: bool = True, **extra: Any) -> str:
    if wait_idle:
        _idle(cd, module)
    return cd.create_deployment(
        applicationName=f"{module}-app",
        deploymentGroupName=f"{module}-dg",
        revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": content}},
        **extra,
    )["deploymentId"]


def _final(cd: Any, wait: Any, deployment_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        info = cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
        return None if info["status"] in ACTIVE else info

    return wait(done)


def _prod_target(elb: Any, listener_arn: str) -> list[dict[str, Any]]:
    return elb.describe_listeners(ListenerArns=[listener_arn])["Listeners"][0]["DefaultActions"]


def test_blue_green_switches_listeners_and_primary_task_set(aws_sandbox, aws_client, aws_wait, no_faults):
    cd, ecs, elb = aws_client("codedeploy"), aws_client("ecs"), aws_client("elbv2")
    seeded = aws_sandbox.seeded.services["user-api"]
    before = ecs.describe_services(cluster="test-cluster", services=["user-api"])["services"][0]
    (original,) = before["taskSets"]
    taskdef = _taskdef(ecs, "user-api")
    deployment_id = _deploy(cd, "user-api", _appspec(taskdef))
    seen = {cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]["status"]}

    def finished() -> dict[str, Any] | None:
        info = cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
        seen.add(info["status"])
        return None if info["status"] in ACTIVE else info

    info = aws_wait(finished)
    assert info["status"] == "Succeeded"
    assert {"Created", "InProgress"} <= seen
    green = seeded.target_group_arns[1]
    assert _prod_target(elb, seeded.listener_arns[0])[0]["TargetGroupArn"] == green
    assert _prod_target(elb, seeded.listener_arns[1])[0]["TargetGroupArn"] == green
    after = ecs.describe_services(cluster="test-cluster", services=["user-api"])["services"][0]
    (primary,) = after["taskSets"]
    assert primary["status"] == "PRIMARY" and primary["taskDefinition"] == taskdef
    assert primary["id"] != original["id"]
    assert primary["loadBalancers"][0]["targetGroupArn"] == green
    assert after["taskDefinition"] == taskdef
    group = cd.get_deployment_group(applicationName="user-api-app", deploymentGroupName="user-api-dg")
    assert group["deploymentGroupInfo"]["lastSuccessfulDeployment"]["deploymentId"] == deployment_id


def test_second_deployment_goes_to_the_other_target_group(aws_sandbox, aws_client, aws_wait, no_faults):
    cd, ecs, elb = aws_client("codedeploy"), aws_client("ecs"), aws_client("elbv2")
    seeded = aws_sandbox.seeded.services["user-api"]
    current = _prod_target(elb, seeded.listener_arns[0])[0]["TargetGroupArn"]
    deployment_id = _deploy(cd, "user-api", _appspec(_taskdef(ecs, "user-api"), as_json=True))
    assert _final(cd, aws_wait, deployment_id)["status"] == "Succeeded"
    now = _prod_target(elb, seeded.listener_arns[0])[0]["TargetGroupArn"]
    assert now != current and now in seeded.target_group_arns


def test_linear_config_shifts_traffic_in_visible_steps(aws_sandbox, aws_client, aws_wait, no_faults):
    cd, ecs, elb = aws_client("codedeploy"), aws_client("ecs"), aws_client("elbv2")
    seeded = aws_sandbox.seeded.services["canary-svc"]
    deployment_id = _deploy(cd, "canary-svc", _appspec(_taskdef(ecs, "canary-svc")))
    weights: set[int] = set()

    def finished() -> dict[str, Any] | None:
        action = _prod_target(elb, seeded.listener_arns[0])[0]
        for group in action.get("ForwardConfig", {}).get("TargetGroups", []):
            if group["TargetGroupArn"] == seeded.target_group_arns[1]:
                weights.add(group["Weight"])
        info = cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
        return None if info["status"] in ACTIVE else info

    info = aws_wait(finished, timeout=15, interval=0.02)
    assert info["status"] == "Succeeded"
    assert len(weights & {10, 20, 30, 40, 50, 60, 70, 80, 90}) >= 3
    target = cd.get_deployment_target(deploymentId=deployment_id, targetId="test-cluster:canary-svc")
    green = [t for t in target["deploymentTarget"]["ecsTarget"]["taskSetsInfo"] if t["taskSetLabel"] == "Green"]
    assert green[0]["trafficWeight"] == 100.0


def test_injected_deploy_fault_fails_and_rolls_back(aws_sandbox, aws_client, aws_wait, no_faults):
    cd, ecs, elb = aws_client("codedeploy"), aws_client("ecs"), aws_client("elbv2")
    seeded = aws_sandbox.seeded.services["fail-api"]
    for _ in range(5):
        before = ecs.describe_services(cluster="test-cluster", services=["fail-api"])["services"][0]
        serving = [_prod_target(elb, arn)[0]["TargetGroupArn"] for arn in seeded.listener_arns[:2]]
        meanwhile = _appspec(_taskdef(ecs, "fail-api"))  # made beforehand: the rollback is brief at scale 0
        content = _appspec(_taskdef(ecs, "fail-api"))
        _idle(cd, "fail-api")
        aws_sandbox.set_faults("deploy:fail-api")
        deployment_id = _deploy(cd, "fail-api", content, wait_idle=False)
        info = _final(cd, aws_wait, deployment_id)
        rollback_id = info["rollbackInfo"]["rollbackDeploymentId"]
        held = _a_deployment_meanwhile_is_refused(cd, aws_wait, rollback_id, meanwhile)
        assert info["status"] == "Failed"
        assert info["errorInformation"]["code"] == "HEALTH_CONSTRAINTS"
        rollback = cd.get_deployment(deploymentId=rollback_id)["deploymentInfo"]
        assert rollback["creator"] == "codeDeployRollback"
        assert rollback["rollbackInfo"]["rollbackTriggeringDeploymentId"] == deployment_id
        assert aws_sandbox.faults == ""  # one-shot: the next deployment is healthy
        if held:
            break
    else:
        pytest.fail("five rollbacks in a row ended before a deployment could be tried during them")
    assert _final(cd, aws_wait, rollback_id)["status"] == "Succeeded"
    assert [_prod_target(elb, arn)[0]["TargetGroupArn"] for arn in seeded.listener_arns[:2]] == serving  # restored
    after = ecs.describe_services(cluster="test-cluster", services=["fail-api"])["services"][0]
    assert [t["id"] for t in after["taskSets"]] == [t["id"] for t in before["taskSets"]]
    again = _deploy(cd, "fail-api", _appspec(_taskdef(ecs, "fail-api")))
    assert _final(cd, aws_wait, again)["status"] == "Succeeded"


def _a_deployment_meanwhile_is_refused(cd: Any, aws_wait: Any, rollback_id: str, content: str) -> bool:
    """A rollback runs for a while, as on AWS, and holds the group meanwhile.

    True when a deployment tried during the rollback was refused with AWS's exception. False when
    the rollback (brief on the instant clock) had already ended by the time the call came, so the
    deployment went ahead: it is followed to its end and nothing was learnt. A deployment that
    went ahead while the rollback was still active fails the test.
    """
    try:
        extra = _deploy(cd, "fail-api", content, wait_idle=False)
    except ClientError as busy:
        assert busy.response["Error"]["Code"] == "DeploymentLimitExceededException", busy.response
        return True
    rollback = cd.get_deployment(deploymentId=rollback_id)["deploymentInfo"]
    assert rollback["status"] not in ACTIVE, f"{extra} was created while rollback {rollback_id} was active"
    assert _final(cd, aws_wait, extra)["status"] == "Succeeded"
    return False


@pytest.mark.parametrize(
    ("appspec_args", "code"),
    [
        ({"container": "nope"}, "INVALID_REVISION"),
        ({"port": 9999}, "INVALID_REVISION"),
    ],
)
def test_appspec_must_match_task_definition(aws_client, aws_wait, no_faults, appspec_args, code):
    cd, ecs = aws_client("codedeploy"), aws_client("ecs")
    content = _appspec(_taskdef(ecs, "fail-api"), **appspec_args)
    info = _final(cd, aws_wait, _deploy(cd, "fail-api", content))
    assert info["status"] == "Failed"
    assert info["errorInformation"]["code"] == code


def test_missing_task_definition_fails_with_error_information(aws_client, aws_wait, no_faults):
    cd = aws_client("codedeploy")
    content = _appspec("arn:aws:ecs:us-east-1:123456789012:task-definition/ghost:42")
    info = _final(cd, aws_wait, _deploy(cd, "fail-api", content))
    assert info["status"] == "Failed"
    assert info["errorInformation"]["code"] == "ECS_UPDATE_ERROR"
    assert "ghost" in info["errorInformation"]["message"]


def test_second_active_deployment_is_refused_and_stop_rolls_back(aws_sandbox, aws_client, aws_wait, no_faults):
    cd, ecs, elb = aws_client("codedeploy"), aws_client("ecs"), aws_client("elbv2")
    seeded = aws_sandbox.seeded.services["stop-api"]
    content = _appspec(_taskdef(ecs, "stop-api"))
    first = _deploy(cd, "stop-api", content)
    with pytest.raises(ClientError) as refused:
        _deploy(cd, "stop-api", content, wait_idle=False)
    assert refused.value.response["Error"]["Code"] == "DeploymentLimitExceededException"
    assert first in refused.value.response["Error"]["Message"]
    stopped = cd.stop_deployment(deploymentId=first, autoRollbackEnabled=True)
    assert stopped["status"] == "Succeeded"
    info = cd.get_deployment(deploymentId=first)["deploymentInfo"]
    assert info["status"] == "Stopped"
    assert "rollbackDeploymentId" in info["rollbackInfo"]
    blue = seeded.target_group_arns[0]
    assert _prod_target(elb, seeded.listener_arns[0])[0]["TargetGroupArn"] == blue
    with pytest.raises(ClientError) as done:
        cd.stop_deployment(deploymentId=first)
    assert done.value.response["Error"]["Code"] == "DeploymentAlreadyCompletedException"


def test_predefined_configs_and_group_defaults(aws_client):
    cd = aws_client("codedeploy")
    names = cd.list_deployment_configs()["deploymentConfigsList"]
    assert "CodeDeployDefault.ECSCanary10Percent5Minutes" in names
    canary = cd.get_deployment_config(deploymentConfigName="CodeDeployDefault.ECSCanary10Percent5Minutes")
    routing = canary["deploymentConfigInfo"]["trafficRoutingConfig"]
    assert routing == {"type": "TimeBasedCanary", "timeBasedCanary": {"canaryPercentage": 10, "canaryInterval": 5}}
    with pytest.raises(ClientError) as missing:
        cd.get_deployment_config(deploymentConfigName="Nope")
    assert missing.value.response["Error"]["Code"] == "DeploymentConfigDoesNotExistException"
    cd.create_application(applicationName="defaults-app", computePlatform="ECS")
    group = cd.get_deployment_group(applicationName="user-api-app", deploymentGroupName="user-api-dg")
    ready = group["deploymentGroupInfo"]["blueGreenDeploymentConfiguration"]["deploymentReadyOption"]
    assert ready["waitTimeInMinutes"] == 0


def test_nlb_group_accepts_only_all_at_once(aws_sandbox, aws_client):
    cd = aws_client("codedeploy")
    seeded = aws_sandbox.seeded.services["nlb-api"]
    with pytest.raises(ClientError) as refused:
        _deploy(cd, "nlb-api", _appspec("x"), deploymentConfigName="CodeDeployDefault.ECSCanary10Percent5Minutes")
    assert refused.value.response["Error"]["Code"] == "InvalidDeploymentConfigNameException"
    with pytest.raises(ClientError) as group_refused:
        cd.create_deployment_group(
            applicationName="nlb-api-app",
            deploymentGroupName="nlb-canary",
            serviceRoleArn="arn:aws:iam::123456789012:role/r",
            deploymentConfigName="CodeDeployDefault.ECSLinear10PercentEvery1Minutes",
            ecsServices=[{"serviceName": "nlb-api", "clusterName": "test-cluster"}],
            loadBalancerInfo={
                "targetGroupPairInfoList": [
                    {
                        "targetGroups": [{"name": "nlb-api-blue"}, {"name": "nlb-api-green"}],
                        "prodTrafficRoute": {"listenerArns": [seeded.listener_arns[0]]},
                    }
                ]
            },
        )
    assert group_refused.value.response["Error"]["Code"] == "InvalidDeploymentConfigNameException"


def test_deployment_group_targets_must_exist(aws_sandbox, aws_client):
    cd = aws_client("codedeploy")
    seeded = aws_sandbox.seeded.services["user-api"]
    common = {"applicationName": "user-api-app", "serviceRoleArn": "arn:aws:iam::123456789012:role/r"}
    pair = {
        "targetGroups": [{"name": "user-api-blue"}, {"name": "user-api-green"}],
        "prodTrafficRoute": {"listenerArns": [seeded.listener_arns[0]]},
    }
    with pytest.raises(ClientError) as no_service:
        cd.create_deployment_group(
            deploymentGroupName="g1",
            ecsServices=[{"serviceName": "ghost", "clusterName": "test-cluster"}],
            loadBalancerInfo={"targetGroupPairInfoList": [pair]},
            **common,
        )
    assert no_service.value.response["Error"]["Code"] == "InvalidECSServiceException"
    with pytest.raises(ClientError) as rolling:
        cd.create_deployment_group(
            deploymentGroupName="g2",
            ecsServices=[{"serviceName": "order-api", "clusterName": "test-cluster"}],
            loadBalancerInfo={"targetGroupPairInfoList": [pair]},
            **common,
        )
    assert "CODE_DEPLOY" in rolling.value.response["Error"]["Message"]
    bad_pair = {**pair, "targetGroups": [{"name": "user-api-blue"}, {"name": "ghost-tg"}]}
    with pytest.raises(ClientError) as no_tg:
        cd.create_deployment_group(
            deploymentGroupName="g3",
            ecsServices=[{"serviceName": "user-api", "clusterName": "test-cluster"}],
            loadBalancerInfo={"targetGroupPairInfoList": [bad_pair]},
            **common,
        )
    assert no_tg.value.response["Error"]["Code"] == "InvalidTargetGroupPairException"


def test_server_platform_checks_the_s3_revision(aws_client, aws_wait, no_faults):
    cd, s3 = aws_client("codedeploy"), aws_client("s3")
    cd.create_application(applicationName="idc-app", computePlatform="Server")
    cd.create_deployment_group(
        applicationName="idc-app", deploymentGroupName="idc", serviceRoleArn="arn:aws:iam::123456789012:role/r"
    )
    s3.create_bucket(Bucket="bundles")
    s3.put_object(Bucket="bundles", Key="app.zip", Body=b"zip")

    def deploy(key: str) -> dict[str, Any]:
        deployment_id = cd.create_deployment(
            applicationName="idc-app",
            deploymentGroupName="idc",
            revision={"revisionType": "S3", "s3Location": {"bucket": "bundles", "key": key, "bundleType": "zip"}},
        )["deploymentId"]
        return _final(cd, aws_wait, deployment_id)

    missing = deploy("missing.zip")
    assert missing["status"] == "Failed"
    assert missing["errorInformation"]["code"] == "REVISION_MISSING"
    # The bundle exists, but the group selects no instance (tests/servers deploys to real ones).
    found = deploy("app.zip")
    assert found["status"] == "Failed" and found["errorInformation"]["code"] == "NO_INSTANCES"
