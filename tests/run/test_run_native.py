"""The example's ``native`` environment: payment-api as an ECS-native canary behind its NLB, end to end.

Tests build on each other in file order, like a user's session: a run succeeds and the
unmodified AWS CLI lists its service deployment; a fault rolls payment-api back while
product-api deploys; ``plan`` shows the live checks; ``deployfw migrate`` switches the default
environment's CODE_DEPLOY payment-api in place and the next run deploys it ECS-natively.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from run_helpers import commit_all

from deployfw.testing import CliResult, SandboxProcess

REGION = "ap-northeast-2"
# The ECS-native backend's end-to-end run on a scaled clock: the canary's bake and the NLB's
# stage delays (tens of sandbox minutes) are waited out, fifty sandbox minutes per real second.
SANDBOX_TIME_SCALE = 3000.0


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in report["modules"]}


def taskdef_of(sandbox: SandboxProcess, service: str, cluster: str = "shop") -> str:
    found = sandbox.client("ecs").describe_services(cluster=cluster, services=[service])["services"][0]
    return str(found["taskDefinition"])


@pytest.fixture(scope="module")
def first(deployfw: Callable[..., CliResult], example: Path) -> tuple[CliResult, dict[str, Any]]:
    done = deployfw("-e", "native", "run", "-m", "payment-api", "-m", "product-api", "--report", "out/n1.json")
    return done, json.loads((example / "out/n1.json").read_text())


def test_a_canary_behind_the_nlb_deploys(first: tuple[CliResult, dict[str, Any]], sandbox: SandboxProcess) -> None:
    done, report = first
    assert done.code == 0, done.output
    payment = by_name(report)["payment-api"]
    deploy = payment["deploy"]
    assert payment["status"] == "succeeded" and deploy["backend"] == "ecs-native"
    assert deploy["strategy"] == "CANARY" and deploy["status"] == "SUCCESSFUL" and deploy["rolled_back"] is False
    assert ":service-deployment/shop/payment-api-native/" in deploy["id"]
    assert taskdef_of(sandbox, "payment-api-native") == deploy["task_definition"]
    assert deploy["production_traffic"] == 100.0 and "service deployment" in done.stderr


def test_the_unmodified_aws_cli_shows_it_successful(first: tuple[CliResult, dict[str, Any]],
                                                    sandbox: SandboxProcess) -> None:  # fmt: skip
    env = {**sandbox.run_env(), "AWS_DEFAULT_REGION": REGION, "AWS_MAX_ATTEMPTS": "1"}

    def aws(*argv: str) -> Any:
        proc = subprocess.run([sys.executable, "-m", "awscli", *argv, "--output", "json"], env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    arn = by_name(first[1])["payment-api"]["deploy"]["id"]
    listed = aws("ecs", "list-service-deployments", "--cluster", "shop", "--service", "payment-api-native")
    assert listed["serviceDeployments"][0] == {**listed["serviceDeployments"][0], "serviceDeploymentArn": arn,
                                               "status": "SUCCESSFUL"}  # fmt: skip
    (described,) = aws("ecs", "describe-service-deployments", "--service-deployment-arns", arn)["serviceDeployments"]
    assert described["status"] == "SUCCESSFUL" and described["lifecycleStage"] == "CLEAN_UP"
    assert described["deploymentConfiguration"]["canaryConfiguration"] == {"canaryPercent": 10.0,
                                                                           "canaryBakeTimeInMinutes": 5}  # fmt: skip
    assert described["targetServiceRevision"]["requestedProductionTrafficWeight"] == 100.0


def test_a_deploy_fault_rolls_payment_api_back_and_leaves_the_other_module_alone(
    first: tuple[CliResult, dict[str, Any]], deployfw: Callable[..., CliResult], example: Path,
    sandbox: SandboxProcess,
) -> None:  # fmt: skip
    previous = by_name(first[1])["payment-api"]["deploy"]["task_definition"]
    (example / "examples/shop/libs/common/src/shop_common/__init__.py").open("a").write("\n# native fault run\n")
    commit_all(example, "change common: both services rebuild")
    sandbox.set_faults("deploy:payment-api")
    try:
        done = deployfw("-e", "native", "run", "-m", "payment-api", "-m", "product-api", "--report", "out/n2.json")
    finally:
        sandbox.set_faults("")
    report = json.loads((example / "out/n2.json").read_text())
    assert done.code == 1, done.output
    payment, product = by_name(report)["payment-api"], by_name(report)["product-api"]
    assert payment["status"] == "failed" and payment["deploy"]["rolled_back"] is True
    assert payment["deploy"]["status"] == "ROLLBACK_SUCCESSFUL" and "rolled back" in payment["error"]
    assert taskdef_of(sandbox, "payment-api-native") == previous  # the service runs the previous task definition
    assert product["status"] == "succeeded" and product["deploy"]["rolled_back"] is False
    assert report["status"] == "failed"


def test_status_and_rollback_know_the_ecs_native_service(
    first: tuple[CliResult, dict[str, Any]], deployfw: Callable[..., CliResult], example: Path,
    sandbox: SandboxProcess,
) -> None:  # fmt: skip
    earlier = by_name(first[1])["payment-api"]["deploy"]["task_definition"]
    again = deployfw("-e", "native", "run", "-m", "payment-api", "--report", "out/n-again.json")
    assert again.code == 0, again.output
    deployed = by_name(json.loads((example / "out/n-again.json").read_text()))["payment-api"]["deploy"]
    done = deployfw("-e", "native", "status", "--json")
    assert done.code == 0, done.output
    (payment,) = [m for m in json.loads(done.stdout)["modules"] if m["name"] == "payment-api"]
    assert payment["backend"] == "ecs-native" and payment["live"]["strategy"] == "CANARY"
    assert payment["live"]["task_definition"] == deployed["task_definition"] != earlier
    assert payment["live"]["in_progress"] is False and payment["state"] == "in sync"

    rolled = deployfw("-e", "native", "rollback", "payment-api")
    assert rolled.code == 0, rolled.output
    assert taskdef_of(sandbox, "payment-api-native") == earlier  # back through an ECS-native deployment
    assert "service deployment" in rolled.stderr
    # a rollback holds the module (a pin) until released; the next tests deploy it again
    assert deployfw("-e", "native", "unpin", "payment-api").code == 0


def test_plan_shows_the_live_checks(deployfw: Callable[..., CliResult]) -> None:
    done = deployfw("-e", "native", "plan", "-m", "payment-api", "--json")
    assert done.code == 0, done.output
    live = json.loads(done.stdout)["live"]
    assert live["not_run"] is None
    rows = {row["check"]: row for row in live["rows"]}
    assert all(row["ok"] and row["module"] == "payment-api" for row in live["rows"])
    assert {"controller", "load-balancer", "listener-rules", "infrastructure-role"} <= set(rows)
    assert "iam:PassRole" in rows["infrastructure-role"]["detail"]
    assert "arn:aws:iam::123456789012:role/deployfw-ecs-infrastructure-role" in rows["infrastructure-role"]["detail"]


def test_doctor_checks_the_native_service_read_only(
    deployfw: Callable[..., CliResult], sandbox: SandboxProcess
) -> None:
    sandbox.clear_requests()
    done = deployfw("-e", "native", "doctor", "--json")
    rows = [r for r in json.loads(done.stdout)["rows"] if r["module"] == "payment-api"]
    checks = {r["check"]: r for r in rows}
    assert {"cluster", "service", "controller", "load-balancer", "listener-rules", "infrastructure-role"} <= set(checks)
    assert all(checks[c]["ok"] for c in ("controller", "load-balancer", "listener-rules")), rows
    reads = ("Describe", "Get", "List", "BatchGet", "SimulatePrincipalPolicy")
    written = [r["operation"] for r in sandbox.requests() if not r["operation"].startswith(reads)]
    assert written == [], written


def test_plan_fails_a_code_deploy_service_configured_for_ecs_native_with_the_fix(
    deployfw: Callable[..., CliResult], example: Path
) -> None:
    config = (example / "modules.yaml").read_text()
    (example / "modules.yaml").write_text(config.replace("service: payment-api-native\n", "service: payment-api\n"))
    try:
        done = deployfw("-e", "native", "plan", "-m", "payment-api")
    finally:
        (example / "modules.yaml").write_text(config)
    assert done.code == 1, done.output
    assert "FAIL  payment-api: controller: service shop/payment-api uses the CODE_DEPLOY deployment controller" in (
        done.stdout
    )
    assert "fix: switch it in place: `deployfw migrate payment-api --to ecs-native" in done.stdout


def test_migrate_plans_then_switches_and_the_next_run_deploys_ecs_natively(
    deployfw: Callable[..., CliResult], example: Path, sandbox: SandboxProcess
) -> None:
    ecs = sandbox.client("ecs")
    assert deployfw("migrate", "payment-api", "--to", "ecs-native").code == 2  # the role is needed
    role = "deployfw-ecs-infrastructure-role"
    planned = deployfw("migrate", "payment-api", "--to", "ecs-native", "--role", role)
    assert planned.code == 0, planned.output
    assert "nothing changed" in planned.stdout and "ModifyListener production" in planned.stdout
    service = ecs.describe_services(cluster="shop", services=["payment-api"])["services"][0]
    assert service["deploymentController"] == {"type": "CODE_DEPLOY"}

    applied = deployfw("migrate", "payment-api", "--to", "ecs-native", "--role", role, "--yes")
    assert applied.code == 0, applied.output
    service = ecs.describe_services(cluster="shop", services=["payment-api"])["services"][0]
    assert service["deploymentController"] == {"type": "ECS"} and service["taskSets"] == []
    advanced = service["loadBalancers"][0]["advancedConfiguration"]
    assert advanced["roleArn"].endswith(f":role/{role}") and advanced["alternateTargetGroupArn"]
    again = deployfw("migrate", "payment-api", "--to", "ecs-native", "--role", role)
    assert again.code == 0 and "nothing to migrate" in again.stdout

    # modules.yaml is untouched; the user puts the printed section in place, then deploys.
    printed = planned.stdout.split("afterwards the module's deploy section should read:\n", 1)[1]
    section = yaml.safe_load(printed.split("nothing changed", 1)[0])
    deploy = section["modules"]["payment-api"]["deploy"]
    assert deploy["backend"] == "ecs-native" and deploy["strategy"] == "BLUE_GREEN"
    assert deploy["load_balancer_type"] == "network"
    text = (example / "modules.yaml").read_text()
    assert "deploy: {backend: ecs-nlb}" in text
    (example / "modules.yaml").write_text(text.replace("deploy: {backend: ecs-nlb}",
                                                       "deploy: " + json.dumps(deploy)))  # fmt: skip
    commit_all(example, "payment-api deploys ECS-natively")
    done = deployfw("run", "-m", "payment-api", "--report", "out/n3.json")
    assert done.code == 0, done.output
    payment = by_name(json.loads((example / "out/n3.json").read_text()))["payment-api"]
    assert payment["deploy"]["backend"] == "ecs-native" and payment["deploy"]["status"] == "SUCCESSFUL"
    assert ":service-deployment/shop/payment-api/" in payment["deploy"]["id"]
    assert taskdef_of(sandbox, "payment-api") == payment["deploy"]["task_definition"]
    assert os.environ.get("AWS_ENDPOINT_URL") != sandbox.run_env()["AWS_ENDPOINT_URL"]  # nothing leaked here
