"""``deployfw run`` deploys the example's legacy-api to its IDC servers, against a sandbox process.

In file order, as a team would live it: the first run deploys the bundle to every instance of
the group and the app answers on each instance's address; a second revision replaces the first
(the first revision's ApplicationStop stops its app); a revision whose ValidateService fails
makes ``run`` exit 1 naming the instance, the event, the script and its last output, and leaves
the previous revision serving; ``rollback`` and ``status`` work as for ECS modules; the
unmodified AWS CLI deploys to the same group; a bad AppSpec stops ``run`` with exit 2 before any
AWS call that changes something.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from servers_kit import commit_all, copy_shop, event, http_get, instances

from deployfw.testing import CliResult, SandboxProcess, mutating, run_cli

MODULE = "legacy-api"
APP = "examples/shop/services/legacy-api/app/server.py"
APPSPEC = "examples/shop/services/legacy-api/appspec.yml"


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_shop(tmp_path_factory.mktemp("servers"))


@pytest.fixture(scope="module")
def sandbox(example: Path) -> Iterator[SandboxProcess]:
    with SandboxProcess(example, timings={"deploy_step": 0.05, "rolling_step": 0.05}) as box:
        yield box


@pytest.fixture(scope="module")
def deployfw(sandbox: SandboxProcess, example: Path) -> Callable[..., CliResult]:
    def invoke(*argv: str) -> CliResult:
        return run_cli(sandbox.run_env(), example, *argv)

    return invoke


def report(example: Path, name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((example / name).read_text())["modules"][0]
    return found


def serving(sandbox: SandboxProcess) -> dict[str, str]:
    """instance -> what its legacy-api answers (the revision it was built from)."""
    fleet = instances(sandbox.endpoint)
    return {name: json.loads(http_get(row["address"], 8080, "/"))["service"] for name, row in fleet.items()
            if name.startswith(f"{MODULE}-")}  # fmt: skip


@pytest.fixture(scope="module")
def first(deployfw: Callable[..., CliResult], example: Path) -> dict[str, Any]:
    done = deployfw("run", "-m", MODULE, "--report", "out/first.json")
    assert done.code == 0, done.output
    return report(example, "out/first.json")


def test_run_deploys_to_every_instance_and_the_app_answers_on_each_address(
    first: dict[str, Any], sandbox: SandboxProcess
) -> None:
    assert first["status"] == "succeeded" and first["image"] is None
    assert first["artifact"].startswith("s3://shop-revisions/shop/legacy-api/content-")
    content_tag = first["build"]["content_tag"]
    assert first["artifact"].endswith(f"{content_tag}.zip@{first['build']['digest']}")
    deploy = first["deploy"]
    assert deploy["backend"] == "codedeploy-server" and deploy["task_definition"] is None
    assert deploy["deployment_config"] == "CodeDeployDefault.OneAtATime" and deploy["rolled_back"] is False
    fleet = {n: r for n, r in instances(sandbox.endpoint).items() if n.startswith(f"{MODULE}-")}
    assert len(fleet) >= 2
    assert deploy["instances"] == [{"id": n, "status": "Succeeded", "failed_event": None} for n in sorted(fleet)]
    assert all(row["revision"] == first["artifact"] and row["app_running"] for row in fleet.values())
    assert set(serving(sandbox).values()) == {f"legacy-api@{content_tag}"}
    addresses = [row["address"] for row in fleet.values()]
    assert len(set(addresses)) == len(addresses), "each instance has its own address; the app binds 8080 on each"


def test_the_same_content_is_not_bundled_again(
    first: dict[str, Any], deployfw: Callable[..., CliResult], example: Path, sandbox: SandboxProcess
) -> None:
    sandbox.clear_requests()
    done = deployfw("run", "-m", MODULE, "--report", "out/again.json")
    assert done.code == 0, done.output
    again = report(example, "out/again.json")
    assert again["build"]["reused"] is True and again["artifact"] == first["artifact"]
    assert not [r for r in sandbox.requests() if r["operation"] == "PutObject"], "no bundle uploaded again"


def test_a_second_revision_replaces_the_first_through_its_application_stop(
    first: dict[str, Any], deployfw: Callable[..., CliResult], example: Path, sandbox: SandboxProcess
) -> None:
    app = example / APP
    app.write_text(app.read_text() + "\n# revision 2\n")
    commit_all(example, "legacy-api revision 2")
    done = deployfw("run", "-m", MODULE, "--report", "out/second.json")
    assert done.code == 0, done.output
    second = report(example, "out/second.json")
    assert second["artifact"] != first["artifact"]
    assert set(serving(sandbox).values()) == {f"legacy-api@{second['build']['content_tag']}"}
    codedeploy = sandbox.client("codedeploy")
    for instance in second["deploy"]["instances"]:
        found = codedeploy.get_deployment_target(deploymentId=second["deploy"]["id"], targetId=instance["id"])
        stop = event(found["deploymentTarget"]["instanceTarget"], "ApplicationStop")
        assert stop["status"] == "Succeeded" and "legacy-api stopped (pid" in stop["diagnostics"]["logTail"]
    for row in instances(sandbox.endpoint).values():
        pids = (Path(row["root"]) / "var/run/legacy-api.pid").read_text().split()
        assert len(pids) == 1


def test_a_revision_failing_validate_service_exits_1_names_it_and_the_previous_revision_serves_again(
    deployfw: Callable[..., CliResult], example: Path, sandbox: SandboxProcess
) -> None:
    before = serving(sandbox)
    done = deployfw("-e", "broken", "run", "-m", MODULE, "--report", "out/broken.json")
    assert done.code == 1, done.output
    broken = report(example, "out/broken.json")
    failed = [i for i in broken["deploy"]["instances"] if i["status"] == "Failed"]
    assert failed and failed[0]["failed_event"] == "ValidateService"
    error = broken["error"]
    assert f"instance {failed[0]['id']} failed in ValidateService, script scripts/validate.sh" in error
    assert "failed with exit code 1" in error and "last output:" in error
    assert "this image was built with SHOP_BROKEN_BUILD set; exiting at start" in error  # the app's last words
    assert broken["status"] == "failed" and broken["deploy"]["rolled_back"] is True
    assert broken["deploy"]["rollback_status"] == "Succeeded"
    assert serving(sandbox) == before, "the previous revision is back and answering on every instance"


def test_status_and_rollback_work_for_a_server_module(
    first: dict[str, Any], deployfw: Callable[..., CliResult], sandbox: SandboxProcess
) -> None:
    done = deployfw("status", "--json")
    assert done.code == 0, done.output
    module = next(m for m in json.loads(done.stdout)["modules"] if m["name"] == MODULE)
    assert module["state"] == "in sync" and module["live"]["revision"] == module["last_success"]["extra"]["revision"]
    back = deployfw("rollback", MODULE)
    assert back.code == 0, back.output
    assert set(serving(sandbox).values()) == {f"legacy-api@{first['build']['content_tag']}"}
    fleet = instances(sandbox.endpoint)
    assert all(row["revision"] == first["artifact"] for name, row in fleet.items() if name.startswith(MODULE))


def test_the_unmodified_aws_cli_deploys_to_the_same_group(first: dict[str, Any], sandbox: SandboxProcess) -> None:
    bucket, _, rest = first["artifact"][len("s3://"):].partition("/")
    key, _, etag = rest.rpartition("@")
    env = sandbox.run_env()

    def aws(*argv: str) -> str:
        # awscli from this interpreter: `aws` is on PATH only when its venv is activated
        done = subprocess.run([sys.executable, "-m", "awscli", *argv], env=env, capture_output=True, text=True,
                              timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    deployment = aws("deploy", "create-deployment", "--application-name", "shop-legacy-api",
                     "--deployment-group-name", MODULE, "--s3-location",
                     f"bucket={bucket},key={key},bundleType=zip,eTag={etag}",
                     "--query", "deploymentId", "--output", "text").strip()  # fmt: skip
    aws("deploy", "wait", "deployment-successful", "--deployment-id", deployment)
    target = json.loads(aws("deploy", "get-deployment-target", "--deployment-id", deployment,
                            "--target-id", f"{MODULE}-1"))["deploymentTarget"]["instanceTarget"]  # fmt: skip
    assert target["status"] == "Succeeded"
    assert [e["status"] for e in target["lifecycleEvents"]] == ["Succeeded"] * 7


def test_a_bad_appspec_exits_2_with_file_line_key_and_changes_nothing(
    deployfw: Callable[..., CliResult], example: Path, sandbox: SandboxProcess
) -> None:
    appspec = example / APPSPEC
    good = appspec.read_text()
    appspec.write_text(good.replace("ValidateService:", "ValidateServce:"))
    commit_all(example, "typo in the appspec")
    sandbox.clear_requests()
    try:
        done = deployfw("run", "-m", MODULE)
    finally:
        appspec.write_text(good)
        commit_all(example, "appspec fixed")
    assert done.code == 2, done.output
    line = next(n for n, text in enumerate(good.splitlines(), 1) if text.strip() == "ValidateService:")
    assert f"{APPSPEC}:{line}: hooks.ValidateServce: not an EC2/on-premises lifecycle event" in done.stderr
    assert mutating(sandbox.requests()) == []
