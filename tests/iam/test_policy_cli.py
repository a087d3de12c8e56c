"""``deployfw iam policy`` on the bundled example: exact ARNs, "*" only where IAM allows nothing narrower.

Held to AWS's service authorization data (:class:`deployfw.testing.iam.Catalogue`): every action
exists, every ARN has the shape of a resource type of its action, and every ``"*"`` belongs to an
action IAM defines without a resource type - listed with its reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from deployfw.testing import run_cli, terminal_env
from deployfw.testing.iam import Catalogue, arn_matches_format

REPOSITORY = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
REGION = "ap-northeast-2"


def policy(*args: str, cwd: Path = REPOSITORY) -> dict[str, Any]:
    done = run_cli(terminal_env(), cwd, "iam", "policy", "--json", "--account", ACCOUNT, *args)
    assert done.code == 0, done.output
    return dict(json.loads(done.stdout))


def statements(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in doc["policy"]["Statement"]}


def listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


@pytest.fixture(scope="module")
def ci() -> dict[str, Any]:
    return policy("--for", "ci")


def test_every_action_exists_and_every_arn_fits_its_resource_type(ci: dict[str, Any]) -> None:
    catalogue = Catalogue.load()
    for principal in ("ci", "codebuild", "jenkins", "pipeline"):
        doc = ci if principal == "ci" else policy("--for", principal)
        assert doc["policy"]["Statement"], principal
        for statement in doc["policy"]["Statement"]:
            for action in listed(statement["Action"]):
                assert catalogue.exists(action), f"{principal}: {action} is no IAM action"
                formats = catalogue.arn_formats(action)
                for arn in listed(statement["Resource"]):
                    if arn == "*":
                        assert not formats, f"{action} has resource types {formats}: '*' is too wide"
                    else:
                        assert any(arn_matches_format(arn, f) for f in formats), f"{action}: {arn} not in {formats}"


def test_star_only_for_listed_exceptions_with_reasons(ci: dict[str, Any]) -> None:
    stars = {s["Sid"] for s in ci["policy"]["Statement"] if s["Resource"] == "*"}
    exceptions = {e["sid"]: e for e in ci["exceptions"]}
    assert stars == set(exceptions) == {"CodeDeployStop", "EcsReadTaskDefinition", "CodeDeployServerTargets",
                                        "CodeDeployServerInstances", "ElbReadListenerRules"}  # fmt: skip
    assert all("no resource type" in e["reason"] for e in exceptions.values())
    catalogue = Catalogue.load()
    for exception in exceptions.values():
        assert all(catalogue.resource_types(a) == [] for a in exception["actions"])


def test_resources_are_the_examples_exact_arns(ci: dict[str, Any]) -> None:
    found = statements(ci)
    assert ci["account"] == ACCOUNT and ci["region"] == REGION
    assert ci["envs"] == [None, "broken", "mixed", "native", "prod"]
    assert listed(found["EcsUpdateService"]["Resource"]) == [
        f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/shop-prod/product-api",
        f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/shop/product-api",
    ]
    assert f"arn:aws:codedeploy:{REGION}:{ACCOUNT}:deploymentgroup:shop-user-api/user-api" in listed(
        found["CodeDeployDeploy"]["Resource"]
    )
    assert found["CodeBuildBuilds"]["Resource"] == f"arn:aws:codebuild:{REGION}:{ACCOUNT}:project/order-api-build"
    assert found["CodeBuildReadLogs"]["Resource"] == (
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/codebuild/order-api-build:log-stream:*"
    )
    families = listed(found["EcsRegisterTaskDefinition"]["Resource"])
    assert f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/shop-user-api:*" in families and len(families) == 4
    # ci pushes only what it builds itself: order-api builds in CodeBuild in every environment
    assert not any("order-api" in arn for arn in listed(found["EcrPush"]["Resource"]))


def test_passrole_only_on_the_task_definitions_roles_and_only_to_ecs(ci: dict[str, Any]) -> None:
    template = json.loads((REPOSITORY / "taskdef.json").read_text())
    role = template["executionRoleArn"].replace("${ACCOUNT_ID}", ACCOUNT)
    passing = [s for s in ci["policy"]["Statement"] if "iam:PassRole" in listed(s["Action"])]
    assert passing == [{
        "Sid": "PassTaskRoles",
        "Effect": "Allow",
        "Action": "iam:PassRole",
        "Resource": role,
        "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
    }]  # fmt: skip


def test_one_environment_names_only_its_resources() -> None:
    prod = policy("-e", "prod", "--for", "ci")
    services = listed(statements(prod)["EcsDescribeService"]["Resource"])
    assert services and all(":service/shop-prod/" in arn for arn in services)
    assert prod["envs"] == ["prod"]


def test_build_principals_get_the_push_of_the_modules_they_build() -> None:
    codebuild = policy("--for", "codebuild")
    assert codebuild["trust_policy"]["Statement"][0]["Principal"] == {"Service": "codebuild.amazonaws.com"}
    found = statements(codebuild)
    assert found["EcrPush"]["Resource"] == f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/order-api"
    assert "logs:PutLogEvents" in found["CodeBuildWriteLogs"]["Action"]
    jenkins = policy("--for", "jenkins")
    assert jenkins["trust_policy"] is None
    assert listed(statements(jenkins)["EcrPush"]["Resource"]) == [
        f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/product-api",
        f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/user-api",
    ]


def test_setup_and_optional_needs_only_when_asked(ci: dict[str, Any]) -> None:
    assert "EcrCreateRepository" not in statements(ci) and "CodeDeployTraffic" not in statements(ci)
    assert statements(policy("--for", "ci", "--include-optional"))["CodeDeployTraffic"]["Resource"] == "*"
    with_setup = statements(policy("--for", "ci", "--include-setup"))
    assert with_setup["EcrCreateRepository"]["Action"] == "ecr:CreateRepository"


def test_plain_output_is_the_policy_document_and_the_exceptions_go_to_stderr(ci: dict[str, Any]) -> None:
    done = run_cli(terminal_env(), REPOSITORY, "iam", "policy", "--account", ACCOUNT)
    assert done.code == 0, done.output
    assert json.loads(done.stdout) == ci["policy"]
    assert 'Resource "*" in EcsReadTaskDefinition (ecs:DescribeTaskDefinition)' in done.stderr


def test_cloudformation_and_terraform_forms() -> None:
    done = run_cli(terminal_env(), REPOSITORY, "iam", "policy", "--for", "codebuild", "--format", "cloudformation",
                   "--account", ACCOUNT)  # fmt: skip
    template = json.loads(done.stdout)["Resources"]
    assert template["DeployfwShopCodebuildPolicy"]["Type"] == "AWS::IAM::ManagedPolicy"
    role = template["DeployfwShopCodebuildRole"]["Properties"]
    assert role["ManagedPolicyArns"] == [{"Ref": "DeployfwShopCodebuildPolicy"}]
    done = run_cli(terminal_env(), REPOSITORY, "iam", "policy", "--format", "terraform", "--account", ACCOUNT)
    tf = json.loads(done.stdout)["resource"]["aws_iam_policy"]["deployfw_shop_ci"]
    assert json.loads(tf["policy"])["Statement"]


def test_bad_input_is_exit_2_and_names_the_problem(tmp_path: Path) -> None:
    done = run_cli(terminal_env(), REPOSITORY, "iam", "policy", "--for", "everyone", "--account", ACCOUNT)
    assert done.code == 2 and "everyone" in done.output
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "buildspec.yml").write_text("version: 0.2\nphases:\n  build:\n    commands: [echo]\n")
    (tmp_path / "modules.yaml").write_text(
        "version: 1\nproject: x\nmodules:\n  a:\n    path: a\n"
        "    deploy: {backend: ecs-bluegreen, taskdef: nope.json}\n"
        "    registry: {backend: ecr}\n    build: {backend: local}\n"
    )
    done = run_cli(terminal_env(), tmp_path, "iam", "policy", "--account", ACCOUNT)
    assert done.code == 2, done.output
    assert "nope.json" in done.stderr and "Traceback" not in done.output


def test_a_plugin_declares_its_run_wide_calls(tmp_path: Path) -> None:
    """The notify plugin's SNS topic and the SSM parameter holding a webhook URL are in the ci policy."""
    from run_helpers import copy_example

    repo = copy_example(tmp_path / "repo")
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:deploys"
    with (repo / "modules.yaml").open("a") as config:
        config.write(f"\nnotify:\n  sns: [{{topic_arn: '{topic}'}}]\n  slack: [{{url_from: 'ssm:/deployfw/slack'}}]\n")
    found = statements(policy("--for", "ci", cwd=repo))
    assert found["NotifyPublish"]["Action"] == "sns:Publish" and found["NotifyPublish"]["Resource"] == topic
    assert found["NotifyReadParameter"]["Resource"] == f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/deployfw/slack"
    assert "NotifyPublish" not in statements(policy("--for", "ci"))  # the example itself notifies nobody


def test_a_buildspecs_secrets_are_read_by_its_builder(tmp_path: Path) -> None:
    from run_helpers import commit_all, copy_example

    repo = copy_example(tmp_path / "repo")
    for module in ("user-api", "order-api"):
        buildspec = repo / "examples/shop/services" / module / "buildspec.yml"
        text = buildspec.read_text()
        env = "env:\n  parameter-store:\n    TOKEN: /shop/token\n  secrets-manager:\n    DB: shop/db:password\n"
        buildspec.write_text(text.replace("phases:", env + "phases:", 1))
    commit_all(repo, "secrets")
    ci = statements(policy("--for", "ci", cwd=repo))  # user-api builds here (local) in the default environment
    assert ci["BuildParameters"] == {"Sid": "BuildParameters", "Effect": "Allow", "Action": "ssm:GetParameter",
                                     "Resource": f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/shop/token"}  # fmt: skip
    assert ci["BuildSecrets"]["Resource"] == f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:shop/db-??????"
    codebuild = statements(policy("--for", "codebuild", cwd=repo))  # order-api: CodeBuild resolves them itself
    assert codebuild["BuildParameters"]["Action"] == "ssm:GetParameters"
