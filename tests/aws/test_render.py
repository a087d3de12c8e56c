"""Rendering: placeholders, the CodePipeline artifact, and every check made before AWS is called."""

from __future__ import annotations

import base64
import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from aws_helpers import ACCOUNT, APPSPEC, DIGEST, REGION, TASKDEF, load, module_files
from seed_templates import SEED_APPSPEC, SEED_TASKDEF

from deployfw.config import load_config
from deployfw.errors import InputError, Problem
from deployfw_aws.render import ARTIFACT_LIMIT, preflight_problems, render_module, write_artifacts

IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/user-api@{DIGEST}"
BLUEGREEN = {"backend": "ecs-bluegreen", "cluster": "test-cluster", "service": "user-api"}


def problems_of(root: Path, module: str = "user-api", env: str | None = None) -> list[Problem]:
    config = load(root, env)
    with pytest.raises(InputError) as caught:
        render_module(config, config.modules[module], IMAGE, account_id=ACCOUNT, region=REGION)
    return caught.value.problems


def line_of(root: Path, rel: str, needle: str) -> int:
    return next(n for n, line in enumerate((root / rel).read_text().splitlines(), 1) if needle in line)


def test_renders_placeholders_and_puts_the_image_by_digest(repo: Any) -> None:
    root = repo(
        {"user-api": {**BLUEGREEN, "family": "user-api-td"}},
        module_files("user-api"),
        environments={"prod": {"defaults": {}}},
    )
    config = load(root, "prod")
    rendered = render_module(config, config.modules["user-api"], IMAGE, account_id=ACCOUNT, region=REGION)

    td = rendered.taskdef
    assert td["family"] == "user-api-td"
    assert td["executionRoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/ecs-task-exc-role"
    container = td["containerDefinitions"][0]
    assert container["image"] == IMAGE
    assert {"name": "DEPLOY_ENV", "value": "prod"} in container["environment"]
    assert {"name": "REGION", "value": REGION} in container["environment"]
    assert (rendered.container, rendered.container_port) == ("app", 8080)
    spec = yaml.safe_load(rendered.appspec_text() or "")
    props = spec["Resources"][0]["TargetService"]["Properties"]
    assert props["TaskDefinition"] == "<TASK_DEFINITION>"
    assert props["LoadBalancerInfo"] == {"ContainerName": "app", "ContainerPort": 8080}
    arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/user-api-td:3"
    assert (
        yaml.safe_load(rendered.appspec_text(arn) or "")["Resources"][0]["TargetService"]["Properties"][
            "TaskDefinition"
        ]
        == arn
    )


def test_writes_the_codepipeline_artifact(repo: Any, tmp_path: Path) -> None:
    root = repo({"user-api": BLUEGREEN}, module_files("user-api"), environments={"dev": {}})
    config = load(root, "dev")
    rendered = render_module(config, config.modules["user-api"], IMAGE, account_id=ACCOUNT, region=REGION)

    written = write_artifacts(rendered, tmp_path / "out")

    assert sorted(p.name for p in written) == [
        "appspec.yaml",
        "imageDetail.json",
        "imagedefinitions.json",
        "taskdef.json",
    ]
    out = tmp_path / "out"
    assert json.loads((out / "imagedefinitions.json").read_text()) == [{"name": "app", "imageUri": IMAGE}]
    assert json.loads((out / "imageDetail.json").read_text()) == {"ImageURI": IMAGE}
    assert json.loads((out / "taskdef.json").read_text())["family"] == "user-api"  # ${FAMILY} defaults to service
    assert "<TASK_DEFINITION>" in (out / "appspec.yaml").read_text()


def test_rolling_artifact_has_no_appspec(repo: Any, tmp_path: Path) -> None:
    root = repo(
        {"order-api": {"backend": "ecs-rolling", "cluster": "c"}},
        module_files("order-api", appspec=None),
        environments={"dev": {}},
    )
    config = load(root, "dev")
    rendered = render_module(config, config.modules["order-api"], IMAGE, account_id=ACCOUNT, region=REGION)
    assert sorted(p.name for p in write_artifacts(rendered, tmp_path)) == [
        "imageDetail.json",
        "imagedefinitions.json",
        "taskdef.json",
    ]


def test_seed_container_name_mismatch_names_both_containers(repo: Any) -> None:
    root = repo(
        {"test-api": {**BLUEGREEN, "service": "test-api", "appspec": "appspec.yml", "taskdef": "taskdef.json"}},
        {"appspec.yml": SEED_APPSPEC, "taskdef.json": SEED_TASKDEF},
    )
    problems = problems_of(root, "test-api")

    [mismatch] = [p for p in problems if "ContainerName" in (p.key or "")]
    assert mismatch.file == "appspec.yml"
    assert mismatch.line == line_of(root, "appspec.yml", "ContainerName")
    assert mismatch.key == "Resources[0].TargetService.Properties.LoadBalancerInfo.ContainerName"
    assert "'test-api-server'" in mismatch.message and "'aws-cicd-test-api'" in mismatch.message
    assert "appspec.yml:8: Resources[0]" in str(mismatch)


def test_seed_health_check_path_disagrees_with_the_target_group_path(repo: Any) -> None:
    appspec = SEED_APPSPEC.replace('"test-api-server"', '"aws-cicd-test-api"')
    root = repo(
        {
            "test-api": {
                **BLUEGREEN,
                "appspec": "appspec.yml",
                "taskdef": "taskdef.json",
                "health_check_path": "/health-check",
            }
        },
        {"appspec.yml": appspec, "taskdef.json": SEED_TASKDEF},
    )
    [problem] = problems_of(root, "test-api")

    assert problem.file == "taskdef.json"
    assert problem.key == "containerDefinitions[0].healthCheck.command"
    assert problem.line == line_of(root, "taskdef.json", '"command"')
    assert "/api/v1/health-check" in problem.message and "/health-check" in problem.message
    assert "modules.test-api.deploy.health_check_path" in problem.message


def test_matching_health_check_path_is_fine(repo: Any) -> None:
    root = repo(
        {"user-api": {**BLUEGREEN, "health_check_path": "/health"}}, module_files("user-api"), environments={"dev": {}}
    )
    assert preflight_problems(load(root, "dev"), load(root, "dev").modules["user-api"]) == []


def test_unknown_placeholder_has_file_and_line(repo: Any) -> None:
    taskdef = copy.deepcopy(TASKDEF)
    taskdef["containerDefinitions"][0]["environment"].append({"name": "TAG", "value": "${IMAGE_TAG}"})
    root = repo({"user-api": BLUEGREEN}, module_files("user-api", taskdef), environments={"dev": {}})
    [problem] = problems_of(root, env="dev")
    assert problem.file == "services/user-api/taskdef.json"
    assert problem.line == line_of(root, problem.file, "${IMAGE_TAG}")
    assert "unknown placeholder ${IMAGE_TAG}" in problem.message


def test_env_placeholder_needs_an_environment(repo: Any) -> None:
    root = repo({"user-api": BLUEGREEN}, module_files("user-api"))
    [problem] = problems_of(root)
    assert problem.line == line_of(root, "services/user-api/taskdef.json", "${ENV}")
    assert "${ENV} needs an environment" in problem.message


def test_dollar_escape_and_second_image_placeholder(repo: Any) -> None:
    taskdef = copy.deepcopy(TASKDEF)
    container = taskdef["containerDefinitions"][0]
    container["environment"] = [{"name": "SHELLY", "value": "$${HOME}/x"}]
    root = repo({"user-api": BLUEGREEN}, module_files("user-api", taskdef))
    config = load(root)
    rendered = render_module(config, config.modules["user-api"], IMAGE, account_id=ACCOUNT, region=REGION)
    assert rendered.taskdef["containerDefinitions"][0]["environment"] == [{"name": "SHELLY", "value": "${HOME}/x"}]

    container["command"] = ["<IMAGE2_NAME>"]
    root = repo({"user-api": BLUEGREEN}, module_files("user-api", taskdef))
    [problem] = problems_of(root)
    assert "<IMAGE2_NAME>" in problem.message and "one image per module" in problem.message


def test_task_definition_checked_against_botocore_shape(repo: Any) -> None:
    taskdef = copy.deepcopy(TASKDEF)
    taskdef["networkMode"] = "awsvp"
    container = taskdef["containerDefinitions"][0]
    container["cpu"] = "256"  # an integer in a container, a string at task level
    container["healthcheck"] = {"command": ["CMD", "true"]}  # wrong case: ECS ignores nothing
    del container["name"]
    container["name"] = "app"  # move to the end: still valid
    taskdef["taskDefinitionArn"] = "arn:aws:ecs:us-east-1:1:task-definition/x:1"  # describe output: dropped
    taskdef["revision"] = 4
    root = repo({"user-api": BLUEGREEN}, module_files("user-api", taskdef), environments={"dev": {}})
    problems = {p.key: p for p in problems_of(root, env="dev")}
    file = "services/user-api/taskdef.json"

    unknown = problems["containerDefinitions[0].healthcheck"]
    assert (unknown.file, unknown.line) == (file, line_of(root, file, '"healthcheck"'))
    assert "unknown key" in unknown.message and "healthCheck" in unknown.message
    wrong = problems["containerDefinitions[0].cpu"]
    text = (root / file).read_text().splitlines()
    assert wrong.line and '"cpu": "256"' in text[wrong.line - 1]
    assert wrong.line > line_of(root, file, "containerDefinitions")
    assert "'256' is a str" in wrong.message and "integer" in wrong.message
    assert "'awsvp' is not one of" in problems["networkMode"].message
    assert set(problems) == {"containerDefinitions[0].healthcheck", "containerDefinitions[0].cpu", "networkMode"}


def test_container_cpu_line_is_the_containers_own(repo: Any) -> None:
    taskdef = copy.deepcopy(TASKDEF)
    taskdef["containerDefinitions"][0]["cpu"] = "256"
    root = repo({"user-api": BLUEGREEN}, module_files("user-api", taskdef), environments={"dev": {}})
    [problem] = problems_of(root, env="dev")
    lines = (root / "services/user-api/taskdef.json").read_text().splitlines()
    assert problem.line is not None and lines[problem.line - 1].strip().rstrip(",") == '"cpu": "256"'
    assert problem.line > line_of(root, "services/user-api/taskdef.json", "containerDefinitions")


def test_invalid_json_reports_its_line(repo: Any) -> None:
    text = json.dumps(TASKDEF, indent=2).replace('"essential": true,', '"essential": true,,')
    root = repo({"user-api": BLUEGREEN}, module_files("user-api", text), environments={"dev": {}})
    [problem] = problems_of(root, env="dev")
    assert problem.line == line_of(root, "services/user-api/taskdef.json", "essential")
    assert "invalid JSON" in problem.message


def test_appspec_port_must_be_mapped(repo: Any) -> None:
    root = repo(
        {"user-api": BLUEGREEN},
        module_files("user-api", appspec=APPSPEC.replace("8080", "9090")),
        environments={"dev": {}},
    )
    [problem] = problems_of(root, env="dev")
    assert problem.file == "services/user-api/appspec.yaml"
    assert problem.key == "Resources[0].TargetService.Properties.LoadBalancerInfo.ContainerPort"
    assert problem.line == line_of(root, problem.file, "ContainerPort")
    assert "9090" in problem.message and "8080" in problem.message


def test_container_option_must_exist(repo: Any) -> None:
    root = repo({"user-api": {**BLUEGREEN, "container": "web"}}, module_files("user-api"), environments={"dev": {}})
    problems = problems_of(root, env="dev")
    assert any(p.key == "containerDefinitions" and "'web'" in p.message and "'app'" in p.message for p in problems)


def test_appspec_yaml_syntax_error_has_a_line(repo: Any) -> None:
    broken = APPSPEC.replace("ContainerPort: 8080", "ContainerPort: [8080")
    root = repo({"user-api": BLUEGREEN}, module_files("user-api", appspec=broken), environments={"dev": {}})
    problems = problems_of(root, env="dev")
    assert any(p.file == "services/user-api/appspec.yaml" and p.line and "YAML" in p.message for p in problems)


def test_missing_template_points_at_the_config_key_and_its_line(repo: Any) -> None:
    root = repo({"user-api": {**BLUEGREEN, "taskdef": "services/user-api/nope.json"}}, module_files("user-api"))
    [problem] = problems_of(root)
    assert (problem.file, problem.key) == ("modules.yaml", "modules.user-api.deploy.taskdef")
    assert problem.line == line_of(root, "modules.yaml", "nope.json")
    assert "taskdef template services/user-api/nope.json not found" in problem.message


def test_a_missing_template_named_in_defaults_is_located_there(repo: Any) -> None:
    root = repo({"user-api": BLUEGREEN}, module_files("user-api"), environments={"dev": {}})
    doc = yaml.safe_load((root / "modules.yaml").read_text())
    doc["defaults"]["deploy"] = {"appspec": "shared/appspec.yml"}
    (root / "modules.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    [problem] = problems_of(root, env="dev")
    assert (problem.key, problem.line) == ("defaults.deploy.appspec", line_of(root, "modules.yaml", "shared/appspec"))
    assert "looked in services/user-api/ first, then the repository root" in problem.message


def test_a_default_template_nobody_named_is_located_at_the_module(repo: Any) -> None:
    root = repo({"user-api": BLUEGREEN}, module_files("user-api", appspec=None), environments={"dev": {}})
    [problem] = problems_of(root, env="dev")
    assert (problem.file, problem.key) == ("modules.yaml", "modules.user-api.deploy.appspec")
    assert problem.line == line_of(root, "modules.yaml", "deploy:")  # the nearest key that exists
    assert "neither services/user-api/appspec.yaml nor appspec.yaml" in problem.message


def test_templates_resolve_in_the_module_folder_first_then_the_root(repo: Any) -> None:
    """``taskdef: taskdef.json`` is the module's own file where it has one, the shared root one otherwise."""
    own = json.loads(json.dumps(TASKDEF))
    own["family"] = "own-family"
    shared = json.loads(json.dumps(TASKDEF))
    shared["family"] = "shared-family"
    files = {**module_files("user-api", taskdef=own), **module_files("order-api"),
             "taskdef.json": json.dumps(shared)}  # fmt: skip
    del files["services/order-api/taskdef.json"]
    spec = {**BLUEGREEN, "taskdef": "taskdef.json"}
    root = repo({"user-api": spec, "order-api": {**spec, "service": "order-api"}}, files, environments={"dev": {}})
    config = load(root, "dev")

    assert config.modules["user-api"].deploy.options["taskdef"] == "services/user-api/taskdef.json"  # type: ignore[union-attr]
    assert config.modules["order-api"].deploy.options["taskdef"] == "taskdef.json"  # type: ignore[union-attr]
    assert "services/user-api/taskdef.json" in config.modules["user-api"].files  # detection follows the same rule
    assert "taskdef.json" in config.modules["order-api"].files
    for name, family in (("user-api", "own-family"), ("order-api", "shared-family")):
        rendered = render_module(config, config.modules[name], IMAGE, account_id=ACCOUNT, region=REGION)
        assert rendered.taskdef["family"] == family


def test_nlb_refuses_canary_before_any_aws_call_naming_the_backend_that_allows_it(repo: Any) -> None:
    root = repo(
        {
            "nlb-api": {
                "backend": "ecs-nlb",
                "cluster": "c",
                "deployment_config": "CodeDeployDefault.ECSCanary10Percent5Minutes",
            }
        },
        module_files("nlb-api"),
        environments={"dev": {}},
    )
    config = load(root, "dev")
    [problem] = preflight_problems(config, config.modules["nlb-api"])
    assert problem.key == "modules.nlb-api.deploy.deployment_config" and problem.line
    assert "ecs-native" in problem.message and "CodeDeployDefault.ECSAllAtOnce" in problem.message


def test_nlb_refuses_canary_in_preflight_even_without_the_schema(repo: Any) -> None:
    root = repo(
        {
            "nlb-api": {
                "backend": "ecs-nlb",
                "cluster": "c",
                "deployment_config": "CodeDeployDefault.ECSLinear10PercentEvery1Minutes",
            }
        },
        module_files("nlb-api"),
        environments={"dev": {}},
    )
    config = load_config(root / "modules.yaml", env="dev")  # no catalog: section schemas not applied
    [problem] = preflight_problems(config, config.modules["nlb-api"])
    assert problem.key == "modules.nlb-api.deploy.deployment_config"
    assert "CodeDeployDefault.ECSAllAtOnce" in problem.message and "Network Load Balancer" in problem.message


def test_artifact_over_three_megabytes_is_refused(repo: Any) -> None:
    taskdef = copy.deepcopy(TASKDEF)
    noise = [{"name": f"BLOB{i}", "value": base64.b64encode(os.urandom(800_000)).decode()} for i in range(4)]
    taskdef["containerDefinitions"][0]["environment"] = noise
    root = repo({"user-api": BLUEGREEN}, module_files("user-api", taskdef))
    [problem] = problems_of(root)
    assert (problem.file, problem.key) == ("services/user-api/taskdef.json", "artifact")
    assert "3 MB" in problem.message
    assert ARTIFACT_LIMIT == 3 * 1024 * 1024


def test_account_and_region_come_from_an_ecr_image_when_not_given(repo: Any) -> None:
    root = repo({"user-api": BLUEGREEN}, module_files("user-api"), environments={"dev": {}})
    config = load(root, "dev")
    rendered = render_module(config, config.modules["user-api"], IMAGE, account_id=None, region=None)
    assert rendered.taskdef["executionRoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/ecs-task-exc-role"


def test_render_command_takes_the_account_id(repo: Any, tmp_path: Path) -> None:
    from deployfw.testing import run_cli, terminal_env

    root = repo({"user-api": BLUEGREEN}, module_files("user-api"), environments={"dev": {}})
    image = f"registry.example.com/user-api@{DIGEST}"  # not ECR: it names no account
    out = tmp_path / "out"

    missing = run_cli(terminal_env(), root, "-e", "dev", "render", "user-api", "--image", image)
    assert missing.code == 2
    assert "${ACCOUNT_ID} needs the AWS account id (deployfw render: --account-id" in missing.stderr

    bad = run_cli(terminal_env(), root, "-e", "dev", "render", "user-api", "--image", image, "--account-id", "12")
    assert bad.code == 2 and "an AWS account id is 12 digits" in bad.stderr

    done = run_cli(terminal_env(), root, "-e", "dev", "render", "user-api", "--image", image,
                   "--account-id", "111122223333", "--out", str(out))  # fmt: skip
    assert done.code == 0, done.output
    taskdef = json.loads((out / "taskdef.json").read_text())
    assert taskdef["executionRoleArn"] == "arn:aws:iam::111122223333:role/ecs-task-exc-role"
    assert taskdef["containerDefinitions"][0]["image"] == image

    no_env = run_cli(terminal_env(), root, "render", "user-api", "--image", image, "--account-id", "111122223333")
    assert no_env.code == 2 and "${ENV} needs an environment (--env)" in no_env.stderr
