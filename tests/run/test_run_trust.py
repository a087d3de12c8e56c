"""What a run builds and when it calls a module up to date, judged from the outside.

* Images come from the commit: an untracked or modified file changes neither the content tag nor
  the pushed digest, which equals a clean clone's build of the same commit. ``--allow-dirty``
  builds the working tree under a run-only tag and leaves the content tag alone.
* ``--rebuild`` builds although an image with the content tag exists.
* Drift: a service moved off its recorded task definition (a hand deploy) is deployed again by the
  next run, or only reported with ``--drift report``.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from run_helpers import MODULES, SERVICES

from deployfw.testing import CliResult, SandboxProcess, run_cli
from deployfw.testing.requestlog import calls

USER_API = "examples/shop/services/user-api"


def module_of(report_path: Path, name: str) -> dict[str, Any]:
    report = json.loads(report_path.read_text())
    return next(m for m in report["modules"] if m["name"] == name)


def tagged(sandbox: SandboxProcess, repository: str, tag: str) -> str | None:
    ecr = sandbox.client("ecr")
    try:
        found = ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])["imageDetails"]
    except ecr.exceptions.ImageNotFoundException:
        return None
    return str(found[0]["imageDigest"]) if found else None


@pytest.fixture
def dirty_user_api(example: Path) -> Iterator[Path]:
    """user-api with an untracked file and an uncommitted edit (put back afterwards)."""
    app = example / USER_API / "app"
    server = app / "server.py"
    original = server.read_text()
    (app / "untracked.txt").write_text("not committed\n")
    server.write_text(original + "\n# an uncommitted edit\n")
    yield app
    server.write_text(original)
    (app / "untracked.txt").unlink()


def test_uncommitted_files_reach_no_image_and_the_digest_equals_a_clean_clones(
    deployfw: Callable[..., CliResult], example: Path, sandbox: SandboxProcess, dirty_user_api: Path, tmp_path: Path
) -> None:
    dirty_report, clean_report, loose_report = (tmp_path / f"{n}.json" for n in ("dirty", "clean", "loose"))
    push = ("run", "-m", "user-api", "--stop-after", "push", "--rebuild")

    dirty = deployfw(*push, "--report", str(dirty_report))

    assert dirty.code == 0, dirty.output[-3000:]
    assert "working tree has 2 uncommitted change(s)" in dirty.output
    assert f"builds use commit {_head(example)[:12]} only" in dirty.output
    built = module_of(dirty_report, "user-api")["build"]
    assert built["reused"] is False and built["source"] == "commit"

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(example), str(clone)], check=True)
    clean = run_cli(sandbox.run_env(), clone, *push, "--report", str(clean_report))

    assert clean.code == 0, clean.output[-3000:]
    assert "uncommitted" not in clean.output
    from_clone = module_of(clean_report, "user-api")["build"]
    assert from_clone["content_tag"] == built["content_tag"]
    assert from_clone["digest"] == built["digest"]  # the same bytes: the dirty files reached neither build

    loose = deployfw("run", "-m", "user-api", "--stop-after", "push", "--allow-dirty", "--report", str(loose_report))

    assert loose.code == 0, loose.output[-3000:]
    worktree = module_of(loose_report, "user-api")["build"]
    assert worktree["source"] == "working tree" and worktree["reused"] is False
    assert worktree["content_tag"].startswith(f"dirty-{_head(example)[:12]}-")
    assert worktree["digest"] != built["digest"]  # the working tree's files went in
    assert tagged(sandbox, "user-api", worktree["content_tag"]) == worktree["digest"]
    # ... under its run-only tag: the content and commit tags still name the clean image
    assert tagged(sandbox, "user-api", built["content_tag"]) == built["digest"]
    assert tagged(sandbox, "user-api", _head(example)) == built["digest"]
    assert not list((example / ".deployfw" / "builds").iterdir())  # every checkout was removed


def test_rebuild_ignores_content_tag_reuse(deployfw: Callable[..., CliResult], tmp_path: Path) -> None:
    first, again, rebuilt = (tmp_path / f"{n}.json" for n in ("first", "again", "rebuilt"))
    push = ("run", "-m", "product-api", "--stop-after", "push")
    assert deployfw(*push, "--report", str(first)).code == 0
    assert deployfw(*push, "--report", str(again)).code == 0
    assert module_of(again, "product-api")["build"]["reused"] is True

    done = deployfw(*push, "--rebuild", "--report", str(rebuilt))

    assert done.code == 0, done.output[-3000:]
    build = module_of(rebuilt, "product-api")["build"]
    assert build["reused"] is False and build["status"] == "SUCCEEDED"
    assert build["digest"] == module_of(first, "product-api")["build"]["digest"]  # reproducible: same bytes again
    plan = json.loads(deployfw("plan", "-m", "product-api", "--rebuild", "--json").stdout)
    assert plan["modules"][0]["rebuild"] is True


def test_drift_is_deployed_again_or_reported(
    deployfw: Callable[..., CliResult], sandbox: SandboxProcess, tmp_path: Path
) -> None:
    assert deployfw("run").code == 0
    settled = json.loads(deployfw("plan", "--json").stdout)
    assert [m["name"] for m in settled["up_to_date"]] == list(MODULES)  # no false drift after a deploy
    assert settled["modules"] == []

    recorded, by_hand = _deploy_by_hand(sandbox, "product-api")
    planned = json.loads(deployfw("plan", "--json").stdout)
    reported = json.loads(deployfw("plan", "--drift", "report", "--json").stdout)

    assert [m["name"] for m in planned["modules"]] == ["product-api"]
    short = (recorded.rsplit("/", 1)[-1], by_hand.rsplit("/", 1)[-1])
    reason = f"drift: live task definition {short[1]} is not the recorded {short[0]}"
    assert planned["modules"][0]["reasons"] == [reason]
    assert reported["modules"] == [] and "product-api" in [m["name"] for m in reported["up_to_date"]]
    assert any(n.startswith("product-api: drift:") and "--drift report" in n for n in reported["notes"])

    sandbox.clear_requests()
    done = deployfw("run", "--report", str(tmp_path / "drift.json"))

    assert done.code == 0, done.output[-3000:]
    report = json.loads((tmp_path / "drift.json").read_text())
    assert [m["name"] for m in report["modules"]] == ["product-api"]
    assert report["modules"][0]["build"]["reused"] is True  # the head's image, only deployed again
    assert calls(sandbox.requests(), "UpdateService")  # deployed
    # one describe per up-to-date module, no more
    assert len(calls(sandbox.requests(), "DescribeServices")) >= len(SERVICES)
    assert json.loads(deployfw("plan", "--json").stdout)["modules"] == []  # back in line: up to date again


def _deploy_by_hand(sandbox: SandboxProcess, service: str) -> tuple[str, str]:
    """Register a copy of the service's task definition and move the service onto it, as a person would."""
    ecs = sandbox.client("ecs")
    current = ecs.describe_services(cluster="shop", services=[service])["services"][0]["taskDefinition"]
    definition = ecs.describe_task_definition(taskDefinition=current)["taskDefinition"]
    keep = ("family", "containerDefinitions", "networkMode", "requiresCompatibilities", "cpu", "memory",
            "executionRoleArn", "taskRoleArn")  # fmt: skip
    new = ecs.register_task_definition(**{k: definition[k] for k in keep if definition.get(k)})
    arn = new["taskDefinition"]["taskDefinitionArn"]
    ecs.update_service(cluster="shop", service=service, taskDefinition=arn)
    deadline = time.monotonic() + 120
    while True:  # until the rolling deployment is over (a deployment in progress is not judged as drift)
        live = ecs.describe_services(cluster="shop", services=[service])["services"][0]
        if [d.get("rolloutState") for d in live["deployments"]] == ["COMPLETED"]:
            return current, arn
        assert time.monotonic() < deadline, live["deployments"]
        time.sleep(0.1)


def _head(repo: Path) -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip
