"""``deployfw doctor`` against an IAM-enforcing sandbox seeded from the example: it passes, and each
broken thing - a deleted deployment group, a controller the backend cannot drive, a policy statement
the CI principal lacks - fails its own check with its fix, while the doctor changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from iam_helpers import ACCOUNT, Principals

from deployfw.testing import SandboxProcess, run_cli

pytestmark = pytest.mark.sandbox
READ_ONLY = ("Describe", "Get", "List", "BatchGet", "Simulate")


def doctor(sandbox: SandboxProcess, repo: Path, *argv: str, config: str | None = None) -> tuple[int, dict]:
    """``deployfw doctor --json ARGV`` as the sandbox's administrator; the request log must show only reads."""
    sandbox.clear_requests()
    done = run_cli(sandbox.run_env(), repo, *(("-c", config) if config else ()), "doctor", "--json", *argv)
    assert done.code in (0, 1), done.output
    log = sandbox.requests()
    assert log, "the doctor asked AWS nothing"
    writes = [f"{r['service']}:{r['operation']}" for r in log if not r["operation"].startswith(READ_ONLY)]
    assert writes == [], "the doctor changed something"
    return done.code, json.loads(done.stdout)


def rows(found: dict, module: str, check: str) -> list[dict]:
    return [r for r in found["rows"] if r["module"] == module and r["check"] == check]


def test_the_seeded_sandbox_passes_every_check(sandbox: SandboxProcess, example: Path) -> None:
    code, found = doctor(sandbox, example)
    assert code == 0 and found["ok"], [r for r in found["rows"] if not r["ok"]]
    assert found["caller"].endswith(":user/deployfw-admin")
    checks = {(r["module"], r["check"]) for r in found["rows"]}
    for module in ("order-api", "payment-api", "product-api", "user-api"):
        assert {(module, "cluster"), (module, "service"), (module, "controller"), (module, "ecr-repository"),
                (module, "iam")} <= checks  # fmt: skip
    for module in ("order-api", "payment-api", "user-api"):
        assert {(module, "codedeploy-application"), (module, "deployment-group"), (module, "listeners")} <= checks
    assert rows(found, "payment-api", "nlb-config")[0]["ok"]
    assert rows(found, "order-api", "codebuild-project")[0]["ok"]


def test_a_missing_statement_fails_the_iam_check_with_the_statement_to_add(
    principals: Principals, sandbox: SandboxProcess, example: Path
) -> None:
    ci = f"arn:aws:iam::{ACCOUNT}:user/ci"
    code, found = doctor(sandbox, example, "--principal", ci)
    assert code == 0, [r for r in found["rows"] if not r["ok"]]
    principals.grant("ci", principals.without("ci", "EcsUpdateService"))
    try:
        code, found = doctor(sandbox, example, "--principal", ci)
    finally:
        principals.grant("ci")
    assert code == 1 and found["principal"] == ci
    failed = [r for r in found["rows"] if not r["ok"]]
    assert [(r["module"], r["check"]) for r in failed] == [("product-api", "iam")]
    service = f"arn:aws:ecs:ap-northeast-2:{ACCOUNT}:service/shop/product-api"
    assert "ecs:UpdateService" in failed[0]["detail"] and service in failed[0]["detail"]
    statement = json.loads(failed[0]["fix"].removeprefix("add to its policy: "))
    assert statement == {"Sid": "EcsUpdateService", "Effect": "Allow", "Action": "ecs:UpdateService",
                         "Resource": service}  # fmt: skip


def test_a_controller_the_backend_cannot_drive_fails_with_the_way_across(
    sandbox: SandboxProcess, example: Path
) -> None:
    # user-api's service has the CODE_DEPLOY controller; a config that deploys it with ecs-rolling cannot
    text = (example / "modules.yaml").read_text().replace(
        "  user-api:\n    path: examples/shop/services/user-api\n",
        "  user-api:\n    path: examples/shop/services/user-api\n    deploy: {backend: ecs-rolling}\n",
    )
    (example / "rolling.yaml").write_text(text)
    code, found = doctor(sandbox, example, config="rolling.yaml")
    assert code == 1
    failed = [r for r in found["rows"] if not r["ok"]]
    assert [(r["module"], r["check"]) for r in failed] == [("user-api", "controller")]
    assert "CODE_DEPLOY" in failed[0]["detail"] and "ecs-rolling needs ECS" in failed[0]["detail"]
    assert "--deployment-controller type=ECS" in failed[0]["fix"] and "ecs-bluegreen" in failed[0]["fix"]


def test_a_deleted_deployment_group_fails_its_check(sandbox: SandboxProcess, example: Path) -> None:
    sandbox.client("codedeploy").delete_deployment_group(applicationName="shop-order-api",
                                                         deploymentGroupName="order-api")  # fmt: skip
    code, found = doctor(sandbox, example)
    assert code == 1
    failed = [r for r in found["rows"] if not r["ok"]]
    assert [(r["module"], r["check"]) for r in failed] == [("order-api", "deployment-group")]
    assert "does not exist" in failed[0]["detail"]
    assert "create-deployment-group" in failed[0]["fix"] and "serviceName=order-api" in failed[0]["fix"]


def test_text_output_and_bad_input(sandbox: SandboxProcess, example: Path) -> None:
    done = run_cli(sandbox.run_env(), example, "doctor")
    assert done.code == 1  # the group deleted above
    assert "FAIL  -/order-api" in done.stdout and "fix: create it" in done.stdout
    done = run_cli(sandbox.run_env(), example, "-e", "nowhere", "doctor")
    assert done.code == 2 and "nowhere" in done.stderr
