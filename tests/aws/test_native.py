"""ecs-native: UpdateService with the strategy, its service deployment followed to SUCCESSFUL or a rollback."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from aws_helpers import load, make_job, module_files

from deployfw.backends import ChecksLive, Describes, ModuleJob, Recovers, Redeploys
from deployfw.state import DeployRecord, Scope
from deployfw_aws.deploy_common import Backoff
from deployfw_aws.native import RUN_TAG, NativeDeploy
from deployfw_aws.native_settings import NativeSettings

FAST = Backoff(first=0.05, factor=2.0, cap=0.2)
SCALE_TO_SEE_THE_CANARY = 60.0
"""The canary's one-minute bake lasts a real second, five of FAST's longest pauses: on the instant
clock it lasted one sandbox tick, and a poller slowed by a loaded machine could miss it."""
NATIVE = {"backend": "ecs-native", "cluster": "test-cluster", "strategy": "CANARY", "canary_percent": 20,
          "canary_bake_time_minutes": 1, "bake_time_minutes": 1}  # fmt: skip


@pytest.fixture
def job_for(repo: Any, sandbox: Any, infra: Any) -> Callable[..., ModuleJob]:
    def make(module: str = "native-api", deploy: dict[str, Any] | None = None) -> ModuleJob:
        root = repo({module: deploy or NATIVE}, module_files(module, appspec=None), environments={"dev": {}})
        job = make_job(load(root, "dev"), module, sandbox.endpoint_url)
        settle(sandbox, module)
        return job

    return make


def settle(sandbox: Any, service: str) -> None:
    """Wait until an earlier test's service deployment (or its rollback) of the shared service is over."""
    ecs = sandbox.client("ecs")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        current = service_of(sandbox, service).get("currentServiceDeployment")
        found = ecs.describe_service_deployments(serviceDeploymentArns=[current])["serviceDeployments"] if current \
            else []  # fmt: skip
        if not found or found[0]["status"] not in ("PENDING", "IN_PROGRESS", "ROLLBACK_REQUESTED",
                                                   "ROLLBACK_IN_PROGRESS", "STOP_REQUESTED"):  # fmt: skip
            return
        time.sleep(0.05)
    raise AssertionError(f"service {service} never settled")


def service_of(sandbox: Any, name: str) -> dict[str, Any]:
    return sandbox.client("ecs").describe_services(cluster="test-cluster", services=[name])["services"][0]


def operations(sandbox: Any) -> list[str]:
    return [e["operation"] for e in sandbox.requests()]


def test_the_backend_has_the_whole_contract(sandbox: Any) -> None:
    deployer = NativeDeploy.__new__(NativeDeploy)
    assert all(isinstance(deployer, ability) for ability in (Recovers, Describes, Redeploys, ChecksLive))


def test_a_canary_deploys_and_says_how_traffic_moved(job_for: Any, sandbox: Any) -> None:
    from deployfw.sandbox.clock import SandboxClock

    job = job_for()
    before = service_of(sandbox, "native-api")["taskDefinition"]
    sandbox.clear_requests()

    saved, sandbox.ctx.clock = sandbox.ctx.clock, SandboxClock(SCALE_TO_SEE_THE_CANARY)
    try:
        outcome = NativeDeploy(job.ctx, backoff=FAST).deploy(job)
    finally:
        sandbox.ctx.clock = saved

    assert outcome.ok, outcome.error
    assert outcome.deployment_id and ":service-deployment/test-cluster/native-api/" in outcome.deployment_id
    assert outcome.details["status"] == "SUCCESSFUL" and outcome.details["strategy"] == "CANARY"
    assert outcome.details["production_traffic"] == 100.0 and outcome.details["previous_task_definition"] == before
    service = service_of(sandbox, "native-api")
    assert service["taskDefinition"] == outcome.task_definition != before
    config = service["deploymentConfiguration"]
    assert config["strategy"] == "CANARY" and config["bakeTimeInMinutes"] == 1
    assert config["canaryConfiguration"] == {"canaryPercent": 20.0, "canaryBakeTimeInMinutes": 1}
    assert config["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    tags = sandbox.client("ecs").list_tags_for_resource(resourceArn=outcome.task_definition)["tags"]
    assert {"key": RUN_TAG, "value": job.ctx.run_id} in tags
    ops = operations(sandbox)
    assert ops.count("UpdateService") == 1 and ops.count("RegisterTaskDefinition") == 1
    assert "ListServiceDeployments" not in ops  # found through currentServiceDeployment
    log = job.log.text()  # type: ignore[attr-defined]
    assert "production traffic 20% new / 80% previous" in log and "SUCCESSFUL" in log


def test_a_canary_behind_an_nlb_is_allowed(job_for: Any, sandbox: Any) -> None:
    job = job_for("native-net", {**NATIVE, "load_balancer_type": "network"})

    outcome = NativeDeploy(job.ctx, backoff=FAST).deploy(job)

    assert outcome.ok, outcome.error
    assert "behind an NLB" in job.log.text()  # type: ignore[attr-defined]


def test_an_injected_fault_is_a_rolled_back_failure(job_for: Any, sandbox: Any) -> None:
    job = job_for()
    before = service_of(sandbox, "native-api")["taskDefinition"]
    sandbox.set_faults("deploy:native-api")
    try:
        outcome = NativeDeploy(job.ctx, backoff=FAST).deploy(job)
    finally:
        sandbox.set_faults("")

    assert not outcome.ok and outcome.rolled_back and outcome.recorded == "rolled_back"
    assert outcome.details["status"] == "ROLLBACK_SUCCESSFUL"
    assert outcome.error and "circuit breaker" in outcome.error and "rolled back" in outcome.error
    assert outcome.details["circuit_breaker_failures"] >= 3
    assert service_of(sandbox, "native-api")["taskDefinition"] == before


def test_cancel_stops_the_deployment_with_rollback_and_follows_it(job_for: Any, sandbox: Any) -> None:
    job = job_for()
    before = service_of(sandbox, "native-api")["taskDefinition"]
    sandbox.clear_requests()
    polls = []

    def interrupt(seconds: float) -> None:
        polls.append(seconds)
        if len(polls) == 2:
            job.ctx.cancel.set()
        time.sleep(min(seconds, 0.05))

    outcome = NativeDeploy(job.ctx, sleep=interrupt, backoff=FAST).deploy(job)

    assert not outcome.ok and outcome.error and outcome.error.startswith("cancelled")
    assert outcome.rolled_back and outcome.details["status"] == "ROLLBACK_SUCCESSFUL"
    assert operations(sandbox).count("StopServiceDeployment") == 1
    assert service_of(sandbox, "native-api")["taskDefinition"] == before


def test_a_timeout_stops_the_deployment_with_rollback(job_for: Any, sandbox: Any) -> None:
    """One minute on a clock 200 times fast (0.3 s) is less than the ten stages of at least 0.1 s each ever take."""
    job = job_for(deploy={**NATIVE, "timeout_minutes": 1})

    outcome = NativeDeploy(job.ctx, backoff=FAST, clock=lambda: time.monotonic() * 200).deploy(job)

    assert not outcome.ok and outcome.error and outcome.error.startswith("timed out after")
    assert outcome.rolled_back


def test_a_code_deploy_service_is_refused_with_the_migration_command(job_for: Any, sandbox: Any) -> None:
    job = job_for("bg-api", {**NATIVE})
    sandbox.clear_requests()

    outcome = NativeDeploy(job.ctx).deploy(job)

    assert not outcome.ok and outcome.error
    assert "CODE_DEPLOY" in outcome.error and "deployfw migrate bg-api --to ecs-native" in outcome.error
    assert not {"RegisterTaskDefinition", "UpdateService"} & set(operations(sandbox))


def test_a_service_without_an_alternate_target_group_is_refused_unchanged(job_for: Any, sandbox: Any) -> None:
    job = job_for("roll-api", {**NATIVE})
    sandbox.clear_requests()

    rows = NativeDeploy(job.ctx).live_checks(job)
    outcome = NativeDeploy(job.ctx).deploy(job)

    failed = [r for r in rows if not r.ok]
    assert [r.check for r in failed] == ["load-balancer"] and "alternateTargetGroupArn" in failed[0].detail
    assert failed[0].fix and "alternate target group" in failed[0].fix
    assert not outcome.ok and outcome.error and "alternateTargetGroupArn" in outcome.error
    assert "UpdateService" not in operations(sandbox)


def test_rolling_through_ecs_native_follows_the_service_deployment(job_for: Any, sandbox: Any) -> None:
    job = job_for("roll-api", {"backend": "ecs-native", "cluster": "test-cluster", "strategy": "ROLLING"})

    outcome = NativeDeploy(job.ctx, backoff=FAST).deploy(job)

    assert outcome.ok, outcome.error
    assert outcome.details["status"] == "SUCCESSFUL" and outcome.details["production_traffic"] is None
    assert service_of(sandbox, "roll-api")["deploymentConfiguration"]["strategy"] == "ROLLING"


def test_live_checks_pass_and_note_the_role_to_pass(job_for: Any) -> None:
    job = job_for()
    rows = NativeDeploy(job.ctx).live_checks(job)
    assert [(r.check, r.ok) for r in rows] == [
        ("cluster", True), ("service", True), ("controller", True), ("load-balancer", True),
        ("infrastructure-role", True), ("listener-rules", True),
    ]  # fmt: skip
    role = rows[4].detail
    assert "iam:PassRole" in role and "deployfw-ecs-infrastructure-role" in role


def test_a_code_deploy_service_fails_the_controller_check_with_the_migration(job_for: Any) -> None:
    job = job_for("bg-api", {**NATIVE})
    rows = NativeDeploy(job.ctx).live_checks(job)
    failed = [r for r in rows if not r.ok]
    assert [r.check for r in failed] == ["controller"] and "CODE_DEPLOY" in failed[0].detail
    assert failed[0].fix and "deployfw migrate bg-api --to ecs-native" in failed[0].fix


def test_a_killed_runs_deployment_is_located_and_recovered(job_for: Any, sandbox: Any) -> None:
    """A run registered its task definition, started the deployment and died before recording its ARN."""
    job = job_for()
    ecs = sandbox.client("ecs")
    taskdef = service_of(sandbox, "native-api")["taskDefinition"]
    family = ecs.describe_task_definition(taskDefinition=taskdef)["taskDefinition"]
    fresh = ecs.register_task_definition(
        family=family["family"], networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256",
        memory="512", containerDefinitions=family["containerDefinitions"],
    )["taskDefinition"]["taskDefinitionArn"]  # fmt: skip
    started = ecs.update_service(cluster="test-cluster", service="native-api", taskDefinition=fresh,
                                 forceNewDeployment=True)["service"]["currentServiceDeployment"]  # fmt: skip
    deployer = NativeDeploy(job.ctx, backoff=FAST)

    assert deployer.locate(job, "killed-run", None) is None  # nothing registered: nothing can exist
    assert deployer.locate(job, "killed-run", fresh) == started
    outcome = deployer.recover(job, started)

    assert outcome.ok and outcome.deployment_id == started and outcome.task_definition == fresh
    gone = deployer.recover(job, started.rsplit("/", 1)[0] + "/doesnotexist")
    assert gone.gone and gone.recorded == "abandoned"


def test_rollback_redeploys_a_recorded_task_definition(job_for: Any, sandbox: Any) -> None:
    job = job_for()
    deployer = NativeDeploy(job.ctx, backoff=FAST)
    first = deployer.deploy(job)
    assert first.ok, first.error
    second = deployer.deploy(job_for())
    assert second.ok, second.error
    record = DeployRecord(Scope("123456789012", "us-east-1"), "native-api", "an-earlier-run", "c0ffee",
                          outcome="succeeded", task_definition=first.task_definition)  # fmt: skip

    outcome = deployer.redeploy(job_for(), record)

    assert outcome.ok, outcome.error
    assert service_of(sandbox, "native-api")["taskDefinition"] == first.task_definition
    status = deployer.describe(job)
    assert status["task_definition"] == first.task_definition and status["strategy"] == "CANARY"
    assert status["last_deployment"]["status"] == "SUCCESSFUL" and status["in_progress"] is False


# -- settings, ranges, preflight ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("deploy", "key", "words"),
    [
        ({"strategy": "LINEAR", "canary_percent": 10}, "canary_percent", "applies to strategy CANARY"),
        ({"strategy": "CANARY", "canary_percent": 0.05}, "canary_percent", "0.1 to 100"),
        ({"strategy": "CANARY", "canary_percent": 12.34}, "canary_percent", "multiples of 0.1"),
        ({"strategy": "LINEAR", "linear_step_percent": 2.5}, "linear_step_percent", "from 3 to 100"),
        ({"strategy": "LINEAR", "linear_step_bake_time_minutes": 1441}, "linear_step_bake_time_minutes", "1440"),
        ({"strategy": "ROLLING", "bake_time_minutes": 5}, "bake_time_minutes", "ROLLING"),
        ({"strategy": "BLUE_GREEN", "bake_time_minutes": -1}, "bake_time_minutes", "0 to 1440"),
    ],
)
def test_aws_ranges_are_checked_before_any_call_with_file_line_and_key(
    repo: Any, deploy: dict[str, Any], key: str, words: str
) -> None:
    root = repo({"native-api": {"backend": "ecs-native", "cluster": "c", **deploy}},
                module_files("native-api", appspec=None), environments={"dev": {}})  # fmt: skip
    config = load(root, "dev")
    deployer = NativeDeploy.__new__(NativeDeploy)
    problems = [p for p in deployer.preflight(config.modules["native-api"], config) if p.key and key in p.key]
    assert len(problems) == 1, problems
    assert problems[0].file == "modules.yaml" and problems[0].line and words in problems[0].message


def test_the_deployment_configuration_keeps_the_services_other_settings() -> None:
    current = {"maximumPercent": 200, "minimumHealthyPercent": 100, "strategy": "CANARY",
               "canaryConfiguration": {"canaryPercent": 5.0}, "bakeTimeInMinutes": 7}  # fmt: skip
    linear = NativeSettings("LINEAR", linear_step_percent=25.0).deployment_configuration(current)
    assert linear == {"maximumPercent": 200, "minimumHealthyPercent": 100, "strategy": "LINEAR",
                      "deploymentCircuitBreaker": {"enable": True, "rollback": True}, "bakeTimeInMinutes": 5,
                      "linearConfiguration": {"stepPercent": 25.0}}  # fmt: skip
    canary = NativeSettings("CANARY", alarms=("errors",)).deployment_configuration(current)
    assert canary["bakeTimeInMinutes"] == 7 and canary["canaryConfiguration"] == {"canaryPercent": 5.0}
    assert canary["alarms"] == {"alarmNames": ["errors"], "enable": True, "rollback": True}
    assert "bakeTimeInMinutes" not in NativeSettings("ROLLING").deployment_configuration(current)


def test_the_default_deadline_counts_the_strategys_waits() -> None:
    settings = NativeSettings("LINEAR", bake_time_minutes=60, linear_step_percent=10, linear_step_bake_time_minutes=10)
    assert settings.expected_minutes(network=False) == 60 + 9 * 10
    assert settings.expected_minutes(network=True) == 60 + 9 * 10 + 10 * (2 + 10)
    assert NativeSettings("CANARY", canary_percent=100).expected_minutes(network=False) == 5
