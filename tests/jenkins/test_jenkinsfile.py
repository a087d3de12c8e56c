"""The shipped Jenkinsfile, run the way Jenkins runs it - no Jenkins needed for its shell steps.

Jenkins runs each ``sh`` step as ``sh -xe SCRIPT`` in the workspace (a checkout of the commit),
with the job's parameters and its own variables in the environment, and nothing activated. So
this test takes the ``sh`` steps out of the Jenkinsfile in order and runs them exactly so, in a
committed copy of this checkout, with a PATH on which no deployfw is installed: the file's own
``python3 -m venv .venv && .venv/bin/pip install .`` installs it, and ``.venv/bin/deployfw run``
(called by path, never activated) must then build and deploy every module against the sandbox -
the buildspecs' own ``deployfw image build`` included.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from deployfw.testing import SandboxProcess

pytestmark = pytest.mark.long

REPOSITORY = Path(__file__).resolve().parents[2]
IMAGES = ("order-api", "payment-api", "product-api", "user-api")  # on ECS: images
BUNDLES = ("legacy-api",)  # on servers: revision bundles in S3
MODULES = tuple(sorted(IMAGES + BUNDLES))
# `sh '...'` / `sh '''...'''` steps (Groovy single-quoted strings: no interpolation, no escapes used here).
_SH_STEP = re.compile(r"\bsh\s+(?:'''(?P<long>.*?)'''|'(?P<short>[^'\n]*)')", re.S)


def sh_steps(jenkinsfile: str) -> list[str]:
    """The pipeline's ``sh`` scripts in order; ``//`` comment lines (the per-module job example) do not run."""
    code = "\n".join(line for line in jenkinsfile.splitlines() if not line.lstrip().startswith("//"))
    return [m.group("long") if m.group("long") is not None else m.group("short") for m in _SH_STEP.finditer(code)]


def test_the_steps_are_found() -> None:
    steps = sh_steps((REPOSITORY / "Jenkinsfile").read_text())
    assert len(steps) == 2
    assert steps[0].startswith("python3 -m venv .venv") and ".venv/bin/deployfw" in steps[1]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The checkout Jenkins would make: this checkout's tracked files (work in progress too), committed."""
    dest = tmp_path_factory.mktemp("jenkinsfile") / "workspace"
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPOSITORY, capture_output=True, check=True).stdout
    for rel in filter(None, listed.decode().split("\0")):
        if (REPOSITORY / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPOSITORY / rel, dest / rel)
    identity = {"GIT_AUTHOR_NAME": "j", "GIT_AUTHOR_EMAIL": "j@example.com", "GIT_COMMITTER_NAME": "j",
                "GIT_COMMITTER_EMAIL": "j@example.com"}  # fmt: skip
    for argv in (["init", "-q", "--initial-branch=main"], ["add", "-A"], ["commit", "-qm", "workspace"]):
        subprocess.run(["git", *argv], cwd=dest, env={**os.environ, **identity}, check=True)
    return dest


def agent_path(tools: Path) -> str:
    """An agent's PATH: this interpreter's base python3 (alone in ``tools``: the base installation may hold a
    deployfw, as CI's does after installing this checkout), and no folder that holds a deployfw."""
    tools.mkdir(parents=True, exist_ok=True)
    for name in ("python3", "python"):
        link = tools / name
        if not link.exists():
            link.symlink_to(Path(sys.base_prefix) / "bin" / "python3")
    rest = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and not (Path(p) / "deployfw").exists()]
    return os.pathsep.join(dict.fromkeys([str(tools), *rest]))


@pytest.mark.timeout(1800)  # a pip install into a new venv and a whole deploy, on a possibly loaded agent
def test_jenkinsfile_as_shipped_deploys_every_module(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    steps = sh_steps((workspace / "Jenkinsfile").read_text())
    # The sandbox too runs without deployfw on its PATH: its CodeBuild stand-in must hand builds its own.
    path = agent_path(workspace.parent / "agent-bin")
    monkeypatch.setenv("PATH", path)
    with SandboxProcess(workspace, timings={"deploy_step": 0.05, "rolling_step": 0.05}) as box:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=workspace, capture_output=True, text=True,
                              check=True).stdout.strip()  # fmt: skip
        env = box.run_env(
            PATH=path,
            # what Jenkins sets: its own variables, the job's parameters, the checkout's commit
            JOB_NAME="shop-deploy", BUILD_NUMBER="12", BUILD_URL="https://ci.example/job/shop-deploy/12/",
            WORKSPACE=str(workspace), GIT_COMMIT=head,
            DEPLOY_ENV="", DRY_RUN="false", MODULES="",
            PIP_DISABLE_PIP_VERSION_CHECK="1",
        )  # fmt: skip
        assert shutil.which("deployfw", path=env["PATH"]) is None, "the agent must not have deployfw installed"
        outputs = []
        for step in steps:
            done = subprocess.run(["sh", "-xe", "-c", step], cwd=workspace, env=env, capture_output=True,
                                  text=True, timeout=900)  # fmt: skip
            outputs.append(done.stdout + done.stderr)
            errors = "\n".join(line for line in outputs[-1].splitlines() if "error" in line.lower())[-6000:]
            assert done.returncode == 0, f"step failed ({done.returncode}):\n{step}\n{outputs[-1][-6000:]}\n{errors}"

    assert "command not found" not in outputs[-1]
    report = json.loads((workspace / "deployfw-report.json").read_text())
    assert report["status"] == "succeeded", outputs[-1][-6000:]
    assert report["ci_url"] == "https://ci.example/job/shop-deploy/12/"
    assert sorted(m["name"] for m in report["modules"]) == list(MODULES)
    for module in report["modules"]:
        assert module["status"] == "succeeded", module
        assert module["build"]["reused"] is False
        if module["name"] in IMAGES:
            assert module["image"].split("@")[1].startswith("sha256:")
        else:
            assert module["artifact"].startswith("s3://") and "@" in module["artifact"]  # the bundle, by ETag
    assert (workspace / "deployfw-html" / "index.html").is_file()
    cases = ET.parse(workspace / "deployfw-junit.xml").getroot().iter("testcase")
    assert {c.get("classname", "").rsplit(".", 1)[-1] for c in cases} >= set(MODULES)
