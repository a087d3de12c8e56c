"""ECS-native service deployments: lifecycle stages, listener weights, rollbacks, refusals, the API's shapes.

The services come from sandbox_infra: ``native-alb`` and ``native-nlb`` are ECS-controller
services set up for blue/green (alternate target group, listener rules forwarding to both
groups, infrastructure role); ``switch-api`` is a CODE_DEPLOY service switched in place.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError

from deployfw.sandbox.clock import SandboxClock
from deployfw.testing.images import image_for

ONGOING = ("PENDING", "IN_PROGRESS", "STOP_REQUESTED", "ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS")
STAGES = ["PRE_SCALE_UP", "SCALE_UP", "POST_SCALE_UP", "TEST_TRAFFIC_SHIFT", "POST_TEST_TRAFFIC_SHIFT",
          "PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT", "BAKE_TIME", "CLEAN_UP"]  # fmt: skip


def _taskdef(ecs: Any, family: str, image: str) -> str:
    return ecs.register_task_definition(
        family=family, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
        containerDefinitions=[{"name": "app", "image": image, "portMappings": [{"containerPort": 8080}]}],
    )["taskDefinition"]["taskDefinitionArn"]  # fmt: skip


def _config(strategy: str, **extra: Any) -> dict[str, Any]:
    breaker = {"enable": True, "rollback": True}
    return {"strategy": strategy, "bakeTimeInMinutes": 0, "deploymentCircuitBreaker": breaker, **extra}


def _settle(ecs: Any, service: str, wait: Any) -> None:
    def done() -> bool:
        svc = ecs.describe_services(cluster="test-cluster", services=[service])["services"][0]
        arn = svc.get("currentServiceDeployment")
        if not arn:
            return True
        status = ecs.describe_service_deployments(serviceDeploymentArns=[arn])["serviceDeployments"][0]["status"]
        return status not in ONGOING

    wait(done, timeout=90)


def _deploy(ecs: Any, wait: Any, service: str, version: str, config: dict[str, Any], **options: Any) -> str:
    _settle(ecs, service, wait)
    taskdef = _taskdef(ecs, service, image_for(ecs, service, version, **options))
    updated = ecs.update_service(cluster="test-cluster", service=service, taskDefinition=taskdef,
                                 deploymentConfiguration=config)["service"]  # fmt: skip
    return str(updated["currentServiceDeployment"])


def _follow(ecs: Any, wait: Any, arn: str, each: Any = None, timeout: float = 90) -> tuple[dict[str, Any], list]:
    seen: list[tuple[Any, ...]] = []

    def done() -> dict[str, Any] | None:
        if each is not None:
            each()
        deployment = ecs.describe_service_deployments(serviceDeploymentArns=[arn])["serviceDeployments"][0]
        now = (deployment["status"], deployment.get("lifecycleStage"),
               deployment["targetServiceRevision"].get("requestedProductionTrafficWeight"))  # fmt: skip
        if not seen or seen[-1] != now:
            seen.append(now)
        return None if deployment["status"] in ONGOING else deployment

    return wait(done, timeout=timeout, interval=0.02), seen


def _prod_weights(elb: Any, sandbox: Any, service: str) -> dict[str, int]:
    listener = sandbox.seeded.services[service].listener_arns[0]
    (rule,) = [r for r in elb.describe_rules(ListenerArn=listener)["Rules"] if r["IsDefault"]]
    action = rule["Actions"][0]
    return {g["TargetGroupArn"]: g["Weight"] for g in action["ForwardConfig"]["TargetGroups"]}


def _url(sandbox: Any, balancer: str, port: int) -> str:
    with urllib.request.urlopen(f"{sandbox.endpoint_url}/_sandbox/listeners", timeout=10) as answer:
        rows = json.load(answer)
    (row,) = [r for r in rows if r["load_balancer"] == balancer and r["port"] == port]
    return str(row["url"]).replace("tcp://", "http://")


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.read().decode().strip()


def _taskdef_of(ecs: Any, service: str) -> str:
    return str(ecs.describe_services(cluster="test-cluster", services=[service])["services"][0]["taskDefinition"])


# -- the lifecycle ------------------------------------------------------------------------------


def test_a_canary_goes_through_the_stages_and_moves_the_rule_weights(aws_sandbox, aws_client, aws_wait, no_faults):
    ecs, elb = aws_client("ecs"), aws_client("elbv2")
    first, _ = _follow(ecs, aws_wait, _deploy(ecs, aws_wait, "native-alb", "can-1", _config("BLUE_GREEN")))
    assert first["status"] == "SUCCESSFUL"
    prod = _url(aws_sandbox, "native-alb-alb", 80)
    assert _get(prod) == "can-1"
    saved = aws_sandbox.timings.deploy_step
    aws_sandbox.timings.deploy_step = 0.6  # hold each stage long enough to sample the listener
    served: set[str] = set()
    weights: list[tuple[int, ...]] = []

    def sample() -> None:
        now = tuple(sorted(_prod_weights(elb, aws_sandbox, "native-alb").values()))
        if not weights or weights[-1] != now:
            weights.append(now)
        served.add(_get(prod))

    try:
        config = _config("CANARY", canaryConfiguration={"canaryPercent": 50.0, "canaryBakeTimeInMinutes": 0})
        arn = _deploy(ecs, aws_wait, "native-alb", "can-2", config)
        final, seen = _follow(ecs, aws_wait, arn, sample)
    finally:
        aws_sandbox.timings.deploy_step = saved
    assert final["status"] == "SUCCESSFUL" and final["lifecycleStage"] == "CLEAN_UP"
    stages = [s for _, s, _ in seen if s]
    assert [s for s in STAGES if s in stages] == list(dict.fromkeys(stages))  # in AWS's order, none skipped back
    assert set(STAGES) <= set(stages)
    shares = [w for _, s, w in seen if s == "PRODUCTION_TRAFFIC_SHIFT"]
    assert shares[:1] == [50.0] and shares[-1] == 100.0
    assert (50, 50) in weights and weights[-1] == (0, 100)  # DescribeRules: half, then all on the new group
    assert {"can-1", "can-2"} <= served  # the real listener forwarded by those weights
    assert _get(prod) == "can-2"
    assert final["sourceServiceRevisions"][0]["requestedProductionTrafficWeight"] == 0.0
    assert final["targetServiceRevision"]["requestedProductionTrafficWeight"] == 100.0
    assert final["deploymentCircuitBreaker"]["status"] == "MONITORING_COMPLETE"


def test_behind_an_nlb_linear_steps_take_the_stage_delays_on_the_clock(aws_sandbox, aws_client, aws_wait, no_faults):
    """ECS adds ten minutes to PRE_SCALE_UP, TEST_TRAFFIC_SHIFT and each production step behind an NLB."""
    ecs = aws_client("ecs")
    first, _ = _follow(ecs, aws_wait, _deploy(ecs, aws_wait, "native-nlb", "lin-1", _config("BLUE_GREEN")))
    assert first["status"] == "SUCCESSFUL"
    saved = aws_sandbox.ctx.clock
    aws_sandbox.ctx.clock = SandboxClock(3000)  # ten sandbox minutes = 0.2 real seconds
    try:
        config = _config("LINEAR", linearConfiguration={"stepPercent": 50.0, "stepBakeTimeInMinutes": 0})
        final, seen = _follow(ecs, aws_wait, _deploy(ecs, aws_wait, "native-nlb", "lin-2", config))
    finally:
        aws_sandbox.ctx.clock = saved
    assert final["status"] == "SUCCESSFUL"
    assert [w for _, s, w in seen if s == "PRODUCTION_TRAFFIC_SHIFT"] == [50.0, 100.0]
    assert _get(_url(aws_sandbox, "native-nlb-nlb", 80)) == "lin-2"
    # Four delayed stages (pre-scale-up, test shift, two production steps) of ten minutes each at
    # 3000x: a lower bound the sandbox cannot beat however loaded the machine is.
    assert (final["finishedAt"] - final["startedAt"]).total_seconds() >= 4 * 600 / 3000


def test_an_injected_fault_trips_the_breaker_and_rolls_back(aws_sandbox, aws_client, aws_wait, no_faults):
    ecs, elb = aws_client("ecs"), aws_client("elbv2")
    first, _ = _follow(ecs, aws_wait, _deploy(ecs, aws_wait, "native-alb", "ok-1", _config("BLUE_GREEN")))
    assert first["status"] == "SUCCESSFUL"
    before, weights = _taskdef_of(ecs, "native-alb"), _prod_weights(elb, aws_sandbox, "native-alb")
    aws_sandbox.set_faults("deploy:native-alb")
    arn = _deploy(ecs, aws_wait, "native-alb", "ok-2", _config("CANARY"))
    final, seen = _follow(ecs, aws_wait, arn)
    assert final["status"] == "ROLLBACK_SUCCESSFUL"
    assert "circuit breaker" in final["statusReason"]
    assert final["deploymentCircuitBreaker"]["status"] == "TRIGGERED"
    assert final["deploymentCircuitBreaker"]["failureCount"] >= final["deploymentCircuitBreaker"]["threshold"] == 3
    assert final["rollback"]["serviceRevisionArn"] == final["sourceServiceRevisions"][0]["arn"]
    assert ("ROLLBACK_IN_PROGRESS" in [s for s, _, _ in seen]) or final["rollback"]["startedAt"]
    assert _taskdef_of(ecs, "native-alb") == before
    assert _prod_weights(elb, aws_sandbox, "native-alb") == weights  # traffic never left the previous revision
    assert _get(_url(aws_sandbox, "native-alb-alb", 80)) == "ok-1"


def test_unhealthy_green_tasks_roll_back_without_a_fault(aws_sandbox, aws_client, aws_wait, no_faults):
    ecs = aws_client("ecs")
    _follow(ecs, aws_wait, _deploy(ecs, aws_wait, "native-alb", "h-1", _config("BLUE_GREEN")))
    arn = _deploy(ecs, aws_wait, "native-alb", "h-2", _config("BLUE_GREEN"), health_status=500)
    final, seen = _follow(ecs, aws_wait, arn, timeout=120)
    assert final["status"] == "ROLLBACK_SUCCESSFUL"
    assert "PRODUCTION_TRAFFIC_SHIFT" not in [s for _, s, _ in seen]
    assert _get(_url(aws_sandbox, "native-alb-alb", 80)) == "h-1"


def test_stop_service_deployment_rolls_back_and_refuses_what_aws_refuses(aws_sandbox, aws_client, aws_wait,
                                                                          no_faults):  # fmt: skip
    ecs = aws_client("ecs")
    _follow(ecs, aws_wait, _deploy(ecs, aws_wait, "native-alb", "s-1", _config("BLUE_GREEN")))
    before = _taskdef_of(ecs, "native-alb")
    saved = aws_sandbox.timings.deploy_step
    aws_sandbox.timings.deploy_step = 2.0
    try:
        arn = _deploy(ecs, aws_wait, "native-alb", "s-2", _config("BLUE_GREEN"))
        with pytest.raises(ClientError) as abort:
            ecs.stop_service_deployment(serviceDeploymentArn=arn, stopType="ABORT")
        assert abort.value.response["Error"]["Code"] == "InvalidParameterException"
        assert ecs.stop_service_deployment(serviceDeploymentArn=arn, stopType="ROLLBACK")["serviceDeploymentArn"] == arn
        status = ecs.describe_service_deployments(serviceDeploymentArns=[arn])["serviceDeployments"][0]["status"]
        assert status in ("ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS")
    finally:
        aws_sandbox.timings.deploy_step = saved
    final, _ = _follow(ecs, aws_wait, arn)
    assert final["status"] == "ROLLBACK_SUCCESSFUL" and "StopServiceDeployment" in final["statusReason"]
    assert _taskdef_of(ecs, "native-alb") == before
    with pytest.raises(ClientError) as done:
        ecs.stop_service_deployment(serviceDeploymentArn=arn, stopType="ROLLBACK")
    assert done.value.response["Error"]["Code"] == "ConflictException"
    with pytest.raises(ClientError) as unknown:
        ecs.stop_service_deployment(serviceDeploymentArn=arn[:-3] + "zzz", stopType="ROLLBACK")
    assert unknown.value.response["Error"]["Code"] == "ServiceDeploymentNotFoundException"


def test_a_rule_without_both_target_groups_rolls_back_with_awss_message(aws_sandbox, aws_client, aws_wait,
                                                                         no_faults):  # fmt: skip
    ecs, elb = aws_client("ecs"), aws_client("elbv2")
    _follow(ecs, aws_wait, _deploy(ecs, aws_wait, "native-alb", "n-1", _config("BLUE_GREEN")))
    listener = aws_sandbox.seeded.services["native-alb"].listener_arns[0]
    weights = _prod_weights(elb, aws_sandbox, "native-alb")
    serving = max(weights, key=lambda g: weights[g])
    elb.modify_listener(ListenerArn=listener, DefaultActions=[{"Type": "forward", "TargetGroupArn": serving}])
    test_listener = aws_sandbox.seeded.services["native-alb"].listener_arns[1]
    test_action = elb.describe_listeners(ListenerArns=[test_listener])["Listeners"][0]["DefaultActions"]
    elb.modify_listener(ListenerArn=test_listener, DefaultActions=[{"Type": "forward", "TargetGroupArn": serving}])
    try:
        final, _ = _follow(ecs, aws_wait, _deploy(ecs, aws_wait, "native-alb", "n-2", _config("BLUE_GREEN")))
    finally:
        groups = [{"TargetGroupArn": g, "Weight": w} for g, w in weights.items()]
        elb.modify_listener(
            ListenerArn=listener, DefaultActions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": groups}}]
        )
        elb.modify_listener(ListenerArn=test_listener, DefaultActions=test_action)  # fmt: skip
    assert final["status"] == "ROLLBACK_SUCCESSFUL"
    assert final["statusReason"] == (
        "Service deployment rolled back because of invalid networking configuration. Both targetGroup and "
        "alternateTargetGroup must be associated with the productionListenerRule or testListenerRule."
    )


# -- refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "word"),
    [
        (_config("CANARY", canaryConfiguration={"canaryPercent": 0.05}), "canaryPercent"),
        (_config("CANARY", canaryConfiguration={"canaryPercent": 10.25}), "canaryPercent"),
        (_config("LINEAR", linearConfiguration={"stepPercent": 2.9}), "stepPercent"),
        (_config("LINEAR", linearConfiguration={"stepPercent": 10.0, "stepBakeTimeInMinutes": 1441}), "stepBake"),
        ({**_config("BLUE_GREEN"), "bakeTimeInMinutes": 1441}, "bakeTimeInMinutes"),
        (_config("LINEAR", canaryConfiguration={"canaryPercent": 10.0}), "canaryConfiguration"),
    ],
)
def test_out_of_range_settings_are_refused_and_nothing_changes(aws_client, aws_wait, config, word, no_faults):
    ecs = aws_client("ecs")
    _settle(ecs, "native-alb", aws_wait)
    before = ecs.describe_services(cluster="test-cluster", services=["native-alb"])["services"][0]
    taskdef = _taskdef(ecs, "native-alb", image_for(ecs, "native-alb", "never"))
    with pytest.raises(ClientError) as refused:
        ecs.update_service(cluster="test-cluster", service="native-alb", taskDefinition=taskdef,
                           deploymentConfiguration=config)  # fmt: skip
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
    assert word in refused.value.response["Error"]["Message"]
    after = ecs.describe_services(cluster="test-cluster", services=["native-alb"])["services"][0]
    assert after["taskDefinition"] == before["taskDefinition"]
    assert after["currentServiceDeployment"] == before["currentServiceDeployment"]
    assert after["deploymentConfiguration"] == before["deploymentConfiguration"]


def test_a_load_balancer_without_an_alternate_target_group_is_refused(aws_client, aws_wait, no_faults):
    ecs = aws_client("ecs")
    _settle(ecs, "order-api", aws_wait)
    before = ecs.describe_services(cluster="test-cluster", services=["order-api"])["services"][0]
    with pytest.raises(ClientError) as refused:
        ecs.update_service(cluster="test-cluster", service="order-api", forceNewDeployment=True,
                           deploymentConfiguration=_config("BLUE_GREEN"))  # fmt: skip
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
    assert "alternateTargetGroupArn" in refused.value.response["Error"]["Message"]
    after = ecs.describe_services(cluster="test-cluster", services=["order-api"])["services"][0]
    assert after["currentServiceDeployment"] == before["currentServiceDeployment"]


# -- the API's shapes -----------------------------------------------------------------------------


def test_list_and_describe_answer_in_awss_shapes(aws_client, aws_wait, no_faults):
    ecs = aws_client("ecs")
    first = _deploy(ecs, aws_wait, "native-alb", "l-1", _config("BLUE_GREEN"))
    _follow(ecs, aws_wait, first)
    second = _deploy(ecs, aws_wait, "native-alb", "l-2", _config("BLUE_GREEN"))
    _follow(ecs, aws_wait, second)
    listed = ecs.list_service_deployments(cluster="test-cluster", service="native-alb")["serviceDeployments"]
    assert [d["serviceDeploymentArn"] for d in listed[:2]] == [second, first]  # newest first
    assert all(d["serviceArn"].endswith(":service/test-cluster/native-alb") for d in listed)
    assert second.split(":service-deployment/")[1].startswith("test-cluster/native-alb/")
    page = ecs.list_service_deployments(cluster="test-cluster", service="native-alb", maxResults=1)
    assert len(page["serviceDeployments"]) == 1 and page["nextToken"]
    rest = ecs.list_service_deployments(cluster="test-cluster", service="native-alb", nextToken=page["nextToken"])
    assert rest["serviceDeployments"][0]["serviceDeploymentArn"] == first
    assert not ecs.list_service_deployments(cluster="test-cluster", service="native-alb",
                                            status=["ROLLBACK_FAILED"])["serviceDeployments"]  # fmt: skip
    described = ecs.describe_service_deployments(serviceDeploymentArns=[second, second[:-2] + "xx"])
    assert described["failures"] == [{"arn": second[:-2] + "xx", "reason": "MISSING"}]
    (deployment,) = described["serviceDeployments"]
    revision = deployment["targetServiceRevision"]["arn"]
    assert ":service-revision/test-cluster/native-alb/" in revision
    (described_revision,) = ecs.describe_service_revisions(serviceRevisionArns=[revision])["serviceRevisions"]
    assert described_revision["taskDefinition"] == _taskdef_of(ecs, "native-alb")
    assert described_revision["loadBalancers"][0]["advancedConfiguration"]["alternateTargetGroupArn"]
    with pytest.raises(ClientError) as too_many:
        ecs.describe_service_deployments(serviceDeploymentArns=[second] * 21)
    assert too_many.value.response["Error"]["Code"] == "InvalidParameterException"
    with pytest.raises(ClientError) as no_service:
        ecs.list_service_deployments(cluster="test-cluster", service="nope")
    assert no_service.value.response["Error"]["Code"] == "ServiceNotFoundException"


def test_rolling_updates_get_service_deployments_too(aws_client, aws_wait, app_image, no_faults):
    ecs = aws_client("ecs")
    _settle(ecs, "order-api", aws_wait)
    before = _taskdef_of(ecs, "order-api")
    taskdef = _taskdef(ecs, "order-api", image_for(ecs, "order-api", "roll-broken", exit_at_start=True))
    arn = ecs.update_service(cluster="test-cluster", service="order-api", taskDefinition=taskdef,
                             deploymentConfiguration={"deploymentCircuitBreaker": {"enable": True, "rollback": True}}
                             )["service"]["currentServiceDeployment"]  # fmt: skip
    final, _ = _follow(ecs, aws_wait, arn, timeout=120)
    assert final["status"] == "ROLLBACK_SUCCESSFUL"
    assert "lifecycleStage" not in final and "requestedProductionTrafficWeight" not in final["targetServiceRevision"]
    assert final["rollback"]["serviceRevisionArn"] == final["sourceServiceRevisions"][0]["arn"]
    assert _taskdef_of(ecs, "order-api") == before


def test_the_unmodified_aws_cli_lists_and_describes_service_deployments(aws_sandbox, aws_client, aws_wait, no_faults):
    ecs = aws_client("ecs")
    arn = _deploy(ecs, aws_wait, "native-nlb", "cli-1", _config("BLUE_GREEN"))
    _follow(ecs, aws_wait, arn)
    env = {**os.environ, "AWS_ENDPOINT_URL": aws_sandbox.endpoint_url, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1"}  # fmt: skip
    env.pop("AWS_PROFILE", None)

    def aws(*argv: str) -> Any:
        proc = subprocess.run([sys.executable, "-m", "awscli", *argv, "--output", "json"], env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    listed = aws("ecs", "list-service-deployments", "--cluster", "test-cluster", "--service", "native-nlb")
    assert listed["serviceDeployments"][0]["serviceDeploymentArn"] == arn
    assert listed["serviceDeployments"][0]["status"] == "SUCCESSFUL"
    described = aws("ecs", "describe-service-deployments", "--service-deployment-arns", arn)
    assert described["serviceDeployments"][0]["lifecycleStage"] == "CLEAN_UP"


# -- the in-place controller switch ----------------------------------------------------------------


def test_a_code_deploy_service_switches_to_the_ecs_controller_in_place(aws_sandbox, aws_client, aws_wait, no_faults):
    ecs, elb = aws_client("ecs"), aws_client("elbv2")
    seeded = aws_sandbox.seeded.services["switch-api"]
    blue, green = seeded.target_group_arns
    service = ecs.describe_services(cluster="test-cluster", services=["switch-api"])["services"][0]
    (task_set,) = service["taskSets"]
    rules = [next(r["RuleArn"] for r in elb.describe_rules(ListenerArn=arn)["Rules"] if r["IsDefault"])
             for arn in seeded.listener_arns]  # fmt: skip
    groups = [{"TargetGroupArn": blue, "Weight": 1}, {"TargetGroupArn": green, "Weight": 0}]
    both = {"Type": "forward", "ForwardConfig": {"TargetGroups": groups}}
    for listener in seeded.listener_arns:
        elb.modify_listener(ListenerArn=listener, DefaultActions=[both])
    role = "arn:aws:iam::123456789012:role/deployfw-ecs-infrastructure-role"  # seeded with the native services
    lb = {"targetGroupArn": blue, "containerName": "app", "containerPort": 8080,
          "advancedConfiguration": {"alternateTargetGroupArn": green, "productionListenerRule": rules[0],
                                    "testListenerRule": rules[1], "roleArn": role}}  # fmt: skip
    updated = ecs.update_service(
        cluster="test-cluster", service="switch-api", deploymentController={"type": "ECS"},
        deploymentConfiguration=_config("BLUE_GREEN"), loadBalancers=[lb],
    )["service"]  # fmt: skip
    assert updated["deploymentController"] == {"type": "ECS"}
    final, _ = _follow(ecs, aws_wait, updated["currentServiceDeployment"])
    assert final["status"] == "SUCCESSFUL"
    after = ecs.describe_services(cluster="test-cluster", services=["switch-api"])["services"][0]
    assert after["taskSets"] == [] and after["taskDefinition"] == task_set["taskDefinition"]
    assert [d["status"] for d in after["deployments"]] == ["PRIMARY"]
    assert after["runningCount"] == 1
    assert _get(_url(aws_sandbox, "switch-api-alb", 80)).startswith("placeholder")
    # Now an ordinary ECS-native service: the next deployment is a blue/green of its own.
    final2, _ = _follow(ecs, aws_wait, _deploy(ecs, aws_wait, "switch-api", "sw-2", _config("BLUE_GREEN")))
    assert final2["status"] == "SUCCESSFUL"
    assert _get(_url(aws_sandbox, "switch-api-alb", 80)) == "sw-2"


def test_the_switch_is_refused_during_a_codedeploy_deployment(aws_client, aws_wait, no_faults):
    ecs, cd = aws_client("ecs"), aws_client("codedeploy")
    image = image_for(ecs, "stop-api", "mid-1")
    taskdef = _taskdef(ecs, "stop-api", image)
    appspec = ("version: 0.0\nResources:\n  - TargetService:\n      Type: AWS::ECS::Service\n"
               f"      Properties:\n        TaskDefinition: \"{taskdef}\"\n        LoadBalancerInfo:\n"
               "          ContainerName: app\n          ContainerPort: 8080\n")  # fmt: skip
    deployment = cd.create_deployment(applicationName="stop-api-app", deploymentGroupName="stop-api-dg",
                                      revision={"revisionType": "AppSpecContent",
                                                "appSpecContent": {"content": appspec}})["deploymentId"]  # fmt: skip
    try:
        with pytest.raises(ClientError) as refused:
            ecs.update_service(cluster="test-cluster", service="stop-api", deploymentController={"type": "ECS"})
        assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
        assert "ongoing service deployment" in refused.value.response["Error"]["Message"]
        service = ecs.describe_services(cluster="test-cluster", services=["stop-api"])["services"][0]
        assert service["deploymentController"] == {"type": "CODE_DEPLOY"}
    finally:
        cd.stop_deployment(deploymentId=deployment, autoRollbackEnabled=True)
        aws_wait(lambda: cd.get_deployment(deploymentId=deployment)["deploymentInfo"]["status"]
                 in ("Stopped", "Failed", "Succeeded"), timeout=60)  # fmt: skip


def test_an_alarm_in_alarm_state_rolls_the_deployment_back(aws_client, aws_wait, no_faults):
    ecs, cloudwatch = aws_client("ecs"), aws_client("cloudwatch")
    _follow(ecs, aws_wait, _deploy(ecs, aws_wait, "native-nlb", "al-1", _config("BLUE_GREEN")))
    before = _taskdef_of(ecs, "native-nlb")
    cloudwatch.put_metric_alarm(
        AlarmName="native-nlb-errors", MetricName="Errors", Namespace="App", Statistic="Sum", Period=60,
        EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanThreshold",
    )  # fmt: skip
    cloudwatch.set_alarm_state(AlarmName="native-nlb-errors", StateValue="ALARM", StateReason="test")
    try:
        alarms = {"alarmNames": ["native-nlb-errors"], "enable": True, "rollback": True}
        arn = _deploy(ecs, aws_wait, "native-nlb", "al-2", _config("BLUE_GREEN", alarms=alarms))
        final, _ = _follow(ecs, aws_wait, arn)
    finally:
        cloudwatch.delete_alarms(AlarmNames=["native-nlb-errors"])
    assert final["status"] == "ROLLBACK_SUCCESSFUL" and "native-nlb-errors" in final["statusReason"]
    assert final["alarms"] == {"status": "TRIGGERED", "alarmNames": ["native-nlb-errors"],
                               "triggeredAlarmNames": ["native-nlb-errors"]}  # fmt: skip
    assert _taskdef_of(ecs, "native-nlb") == before
