"""``deployfw run`` on the whole bundled example against the sandbox, checked through plain AWS calls.

The first run (module fixture) builds, pushes and deploys all four services; the
tests then look at what a user would: the report, the JUnit file, and the sandbox's
ECS/ELB/CodeDeploy state through boto3. Later tests build on it in file order: a
second ``--all`` run reuses every image, a deploy fault rolls one module back, and
``--stop-after push`` writes CodePipeline's files.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from run_helpers import BLUEGREEN, MODULES, SECRET, SERVERS, SERVICES

from deployfw.testing import CliResult, SandboxProcess, calls

DEPLOY_KEYS = {"backend", "id", "task_definition", "rolled_back"}
MODULE_KEYS = {"name", "status", "reason", "image", "build", "deploy", "error"}
TOP_KEYS = {"status", "env", "base", "head", "modules"}
TASKDEF_ARN = "arn:aws:ecs:ap-northeast-2:123456789012:task-definition/"


@pytest.fixture(scope="module")
def first(
    deployfw: Callable[..., CliResult], example: Path, sandbox: SandboxProcess
) -> tuple[CliResult, dict[str, Any]]:
    sandbox.clear_requests()
    done = deployfw("run", "--all", "--report", "out/first.json", "--junit", "out/first.xml")
    return done, json.loads((example / "out/first.json").read_text())


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in report["modules"]}


def test_whole_example_deploys_and_exits_0(first: tuple[CliResult, dict[str, Any]], example: Path) -> None:
    done, report = first
    assert done.code == 0, done.output
    assert set(report) >= TOP_KEYS and report["status"] == "succeeded"
    assert report["env"] is None and report["base"] is None
    assert report["head"] == (example / ".git/refs/heads/main").read_text().strip()
    assert [m["name"] for m in report["modules"]] == list(MODULES), "services only, never the library"
    for module in report["modules"]:
        assert set(module) >= MODULE_KEYS, module
        assert set(module["deploy"]) >= DEPLOY_KEYS, module["deploy"]
        assert module["status"] == "succeeded" and module["error"] is None, module
        assert module["reason"] == "selected with --all"
        if module["name"] in SERVERS:  # a revision bundle deployed to servers: no image, no task definition
            assert module["image"] is None and module["deploy"]["task_definition"] is None
            assert module["artifact"].startswith(f"s3://shop-revisions/shop/{module['name']}/content-")
            assert [i["status"] for i in module["deploy"]["instances"]] == ["Succeeded", "Succeeded"]
            continue
        assert module["image"].startswith(f"123456789012.dkr.ecr.ap-northeast-2.amazonaws.com/{module['name']}@sha256:")
        assert module["build"]["reused"] is False and module["build"]["backend"] in ("local", "codebuild")
        assert module["deploy"]["rolled_back"] is False
        assert module["deploy"]["task_definition"].startswith(TASKDEF_ARN)
    assert by_name(report)["order-api"]["build"]["backend"] == "codebuild"
    # the summary table on stdout names every module with its outcome
    for name in MODULES:
        assert any(line.split()[:2] == [name, "succeeded"] for line in done.stdout.splitlines()), done.stdout


@pytest.mark.parametrize("name", BLUEGREEN)
def test_bluegreen_primary_task_set_runs_the_reported_digest_behind_the_production_listener(
    first: tuple[CliResult, dict[str, Any]], sandbox: SandboxProcess, name: str
) -> None:
    module = by_name(first[1])[name]
    deploy = module["deploy"]
    codedeploy, ecs, elb = sandbox.client("codedeploy"), sandbox.client("ecs"), sandbox.client("elbv2")
    assert codedeploy.get_deployment(deploymentId=deploy["id"])["deploymentInfo"]["status"] == "Succeeded"
    group = codedeploy.get_deployment_group(
        applicationName=deploy["application"], deploymentGroupName=deploy["deployment_group"]
    )["deploymentGroupInfo"]
    service = group["ecsServices"][0]
    described = ecs.describe_services(cluster=service["clusterName"], services=[service["serviceName"]])
    task_sets = described["services"][0]["taskSets"]
    primary = [t for t in task_sets if t["status"] == "PRIMARY"]
    assert len(primary) == 1, task_sets
    assert primary[0]["taskDefinition"] == deploy["task_definition"]
    taskdef = ecs.describe_task_definition(taskDefinition=primary[0]["taskDefinition"])["taskDefinition"]
    assert [c["image"] for c in taskdef["containerDefinitions"]] == [module["image"]]

    target_group = primary[0]["loadBalancers"][0]["targetGroupArn"]
    pair = group["loadBalancerInfo"]["targetGroupPairInfoList"][0]
    listener_arn = pair["prodTrafficRoute"]["listenerArns"][0]
    listener = elb.describe_listeners(ListenerArns=[listener_arn])["Listeners"][0]
    assert _forwarded_to(listener["DefaultActions"]) == {target_group}


def _forwarded_to(actions: list[dict[str, Any]]) -> set[str]:
    """Target groups receiving traffic from a listener's forward action (weight > 0)."""
    groups: set[str] = set()
    for action in actions:
        if action["Type"] != "forward":
            continue
        weighted = (action.get("ForwardConfig") or {}).get("TargetGroups")
        if weighted:
            groups |= {g["TargetGroupArn"] for g in weighted if g.get("Weight", 1) > 0}
        else:
            groups.add(action["TargetGroupArn"])
    return groups


def test_rolling_service_primary_deployment_uses_the_reported_task_definition(
    first: tuple[CliResult, dict[str, Any]], sandbox: SandboxProcess
) -> None:
    module = by_name(first[1])["product-api"]
    assert module["deploy"]["backend"] == "ecs-rolling"
    ecs = sandbox.client("ecs")
    service = ecs.describe_services(cluster="shop", services=["product-api"])["services"][0]
    primary = [d for d in service["deployments"] if d["status"] == "PRIMARY"]
    assert len(primary) == 1 and primary[0]["rolloutState"] == "COMPLETED"
    assert primary[0]["taskDefinition"] == module["deploy"]["task_definition"] == service["taskDefinition"]
    taskdef = ecs.describe_task_definition(taskDefinition=primary[0]["taskDefinition"])["taskDefinition"]
    assert [c["image"] for c in taskdef["containerDefinitions"]] == [module["image"]]


def test_junit_has_one_passing_case_per_module_and_stage(
    first: tuple[CliResult, dict[str, Any]], example: Path
) -> None:
    root = ET.parse(example / "out/first.xml").getroot()
    cases = [(c.get("classname"), c.get("name")) for c in root.iter("testcase")]
    assert sorted(cases) == sorted((f"deployfw.{m}", s) for m in MODULES for s in ("build", "push", "deploy"))
    assert not [c for c in root.iter("testcase") if len(c)], "no failure or skipped element on a clean run"


def test_the_secret_key_reaches_no_output(first: tuple[CliResult, dict[str, Any]], example: Path) -> None:
    done, _ = first
    for text in (done.stdout, done.stderr, *(p.read_text() for p in (example / "out").iterdir())):
        assert SECRET not in text


def test_second_all_run_reuses_every_image_and_pushes_nothing(
    first: tuple[CliResult, dict[str, Any]], deployfw: Callable[..., CliResult], example: Path, sandbox: SandboxProcess
) -> None:
    assert first[0].code == 0
    first_pushes = calls(sandbox.requests(), "PutImage")
    assert len(first_pushes) >= len(SERVICES), "the first run pushed every image"
    sandbox.clear_requests()

    done = deployfw("run", "--all", "--report", "out/second.json")

    assert done.code == 0, done.output
    report = by_name(json.loads((example / "out/second.json").read_text()))
    requests = sandbox.requests()
    assert calls(requests, "PutImage") == [], "no new image (the commit tag is the same image)"
    assert calls(requests, "StartBuild") == [] and calls(requests, "InitiateLayerUpload") == []
    assert calls(requests, "PutObject") == [], "no new revision bundle either"
    for name in MODULES:
        previous = by_name(first[1])[name]
        assert report[name]["build"]["reused"] is True, report[name]
        assert report[name]["image"] == previous["image"] and report[name]["artifact"] == previous["artifact"]
        assert report[name]["status"] == "succeeded"
        assert "build reused" in next(line for line in done.stdout.splitlines() if line.startswith(name))


def test_deploy_fault_rolls_that_module_back_and_the_others_succeed(
    first: tuple[CliResult, dict[str, Any]], deployfw: Callable[..., CliResult], example: Path, sandbox: SandboxProcess
) -> None:
    sandbox.set_faults("deploy:user-api")
    done = deployfw("run", "--all", "--report", "out/fault.json", "--junit", "out/fault.xml")
    sandbox.set_faults("")

    assert done.code == 1, done.output
    report = json.loads((example / "out/fault.json").read_text())
    assert report["status"] == "failed"
    modules = by_name(report)
    failed = modules["user-api"]
    assert failed["status"] == "failed" and failed["deploy"]["rolled_back"] is True
    assert failed["error"] and failed["deploy"]["id"]
    assert {n: m["status"] for n, m in modules.items() if n != "user-api"} == dict.fromkeys(
        ("legacy-api", "order-api", "payment-api", "product-api"), "succeeded"
    )
    # CodeDeploy agrees, and the production listener still serves the previous task set
    codedeploy = sandbox.client("codedeploy")
    info = codedeploy.get_deployment(deploymentId=failed["deploy"]["id"])["deploymentInfo"]
    assert info["status"] in ("Failed", "Stopped")
    ecs = sandbox.client("ecs")
    service = ecs.describe_services(cluster="shop", services=["user-api"])["services"][0]
    primary = next(t for t in service["taskSets"] if t["status"] == "PRIMARY")
    last_good = by_name(json.loads((example / "out/second.json").read_text()))["user-api"]
    assert primary["taskDefinition"] == last_good["deploy"]["task_definition"] != failed["deploy"]["task_definition"]

    root = ET.parse(example / "out/fault.xml").getroot()
    failures = {(c.get("classname"), c.get("name")): c.find("failure") for c in root.iter("testcase")}
    failure = failures.pop(("deployfw.user-api", "deploy"))
    assert failure is not None and failure.get("message") == failed["error"] and failed["error"] in (failure.text or "")
    assert all(f is None for f in failures.values()), "only user-api's deploy failed"
    assert SECRET not in (example / "out/fault.xml").read_text() + (example / "out/fault.json").read_text()


def test_stop_after_push_writes_codepipeline_artifacts_per_module(
    first: tuple[CliResult, dict[str, Any]], deployfw: Callable[..., CliResult], example: Path, sandbox: SandboxProcess
) -> None:
    sandbox.clear_requests()
    done = deployfw("run", "--all", "--stop-after", "push", "--artifacts-dir", "out/artifacts", "--report",
                    "out/push.json")  # fmt: skip

    assert done.code == 0, done.output
    modules = by_name(json.loads((example / "out/push.json").read_text()))
    assert calls(sandbox.requests(), "CreateDeployment") == [] and calls(sandbox.requests(), "UpdateService") == []
    for name in SERVICES:
        folder = example / "out/artifacts" / name
        expected = {"taskdef.json", "imagedefinitions.json", "imageDetail.json"}
        if name in BLUEGREEN:
            expected.add("appspec.yaml")  # CodeDeploy's ECS action reads it; the rolling action does not
        assert {p.name for p in folder.iterdir()} == expected, name
        image = modules[name]["image"]
        assert json.loads((folder / "imageDetail.json").read_text()) == {"ImageURI": image}
        definitions = json.loads((folder / "imagedefinitions.json").read_text())
        assert [d["imageUri"] for d in definitions] == [image]
        taskdef = json.loads((folder / "taskdef.json").read_text())
        assert [c["image"] for c in taskdef["containerDefinitions"]] in ([image], ["<IMAGE1_NAME>"])
        assert [s["stage"] for s in modules[name]["stages"]] == ["build", "push"]
