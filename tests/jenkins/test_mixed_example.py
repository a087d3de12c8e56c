"""The bundled example's ``mixed`` environment, end to end from a clean clone.

user-api, product-api and legacy-api build on the sandbox's Jenkins double (folder jobs
running ``deployfw build MODULE``), order-api on the sandbox's CodeBuild and payment-api
here; the four ECS services deploy through CodeDeploy/ECS, legacy-api's revision bundle
through CodeDeploy to its servers - all in one run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from deployfw.testing import terminal_env

REPOSITORY = Path(__file__).resolve().parents[2]
MODULES = ("legacy-api", "order-api", "payment-api", "product-api", "user-api")
BUILT_BY = {"order-api": "codebuild", "payment-api": "local", "product-api": "jenkins", "user-api": "jenkins",
            "legacy-api": "jenkins"}  # fmt: skip


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean clone of this repository's committed HEAD."""
    path = tmp_path_factory.mktemp("mixed") / "shop"
    subprocess.run(["git", "clone", "--quiet", str(REPOSITORY), str(path)], check=True)
    return path


def deployfw(cwd: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deployfw", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_mixed_environment_deploys_every_module_from_a_clean_clone(clone: Path) -> None:
    # as a Jenkins pipeline runs it (JENKINS_URL itself comes from the sandbox)
    pipeline = {"JOB_NAME": "shop-deploy", "BUILD_NUMBER": "7", "BUILD_URL": "https://ci.example/job/shop-deploy/7/"}
    done = deployfw(
        clone,
        "-e", "mixed", "--sandbox", "run", "--all", "--junit", "out.xml", "--report", "out.json",
        env=terminal_env(**pipeline, DEPLOYFW_SANDBOX_TIME_SCALE="60"),  # a terminal's clock: AWS's waits, paced
    )  # fmt: skip

    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((clone / "out.json").read_text())
    assert report["status"] == "succeeded" and report["env"] == "mixed"
    assert report["ci_url"] == pipeline["BUILD_URL"]
    modules = {m["name"]: m for m in report["modules"]}
    assert sorted(modules) == list(MODULES)
    for name, module in modules.items():
        assert module["status"] == "succeeded", module
        assert module["build"]["backend"] == BUILT_BY[name]
        if name == "legacy-api":  # a revision bundle in S3, deployed to the group's instances
            assert module["image"] is None and module["artifact"].startswith("s3://shop-revisions/shop/legacy-api/")
            assert [i["status"] for i in module["deploy"]["instances"]] == ["Succeeded", "Succeeded"]
        else:
            assert module["image"] and "@sha256:" in module["image"]
        assert module["deploy"]["id"]
    for name in ("user-api", "product-api", "legacy-api"):
        build = modules[name]["build"]
        assert build["job"] == f"shop/{name}-build" and build["result"] == "SUCCESS"
        assert build["url"].endswith(f"/job/shop/job/{name}-build/{build['number']}/")
    # the Jenkins consoles were streamed into the run's log with the module prefix
    assert "user-api     build  | Finished: SUCCESS" in done.stderr
    assert "product-api  build  | deployfw build product-api: SUCCEEDED" in done.stderr
    assert "legacy-api   build  | deployfw build legacy-api: SUCCEEDED" in done.stderr

    suite = ET.parse(clone / "out.xml").getroot()
    cases = [(c.get("classname"), c.get("name")) for c in suite.iter("testcase")]
    expected = {(f"deployfw.{m}", stage) for m in MODULES for stage in ("build", "push", "deploy")}
    assert len(cases) == len(expected) and set(cases) == expected
    assert not [c for c in suite.iter("testcase") if len(c)], "no failure or skipped elements"
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["ci_url"] == pipeline["BUILD_URL"] and properties["run_id"] == report["run_id"]
