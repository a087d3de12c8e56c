"""Servers seeded from modules.yaml (EC2 instances by tag), and nothing they run outlives the sandbox.

A repository of its own with one ``codedeploy-server`` module whose group selects EC2 instances
by tag: ``deployfw sandbox`` starts the instances from the config, ``deployfw run`` builds the
bundle (``deployfw bundle build --push`` in the buildspec) and deploys it; its ApplicationStart
leaves a long-running process on every instance. Those processes die with the sandbox - after a
clean stop and after SIGKILL alike.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any

from servers_kit import instances

from deployfw.testing import GitRepoBuilder, SandboxProcess, run_cli

MODULES = """\
version: 1
project: idc
region: us-east-1
modules:
  api:
    path: api
    build: {backend: local}
    registry: {backend: s3, bucket: idc-bundles}
    deploy: {backend: codedeploy-server, bundle: api/bundle, deployment_config: CodeDeployDefault.AllAtOnce,
             ec2_tags: {Role: api}}
"""
BUILDSPEC = """\
version: 0.2
phases:
  build:
    commands:
      - deployfw bundle build api/bundle --push
"""
APPSPEC = """\
version: 0.0
os: linux
files:
  - source: app
    destination: /opt/api
hooks:
  ApplicationStart:
    - location: start.sh
      timeout: 30
"""
START = """#!/bin/sh
cd "${DEPLOYFW_INSTANCE_ROOT:-}/opt/api"
nohup python3 -c 'import time; time.sleep(3600)' >/dev/null 2>&1 </dev/null &
"""


def _app_processes(roots: list[str]) -> list[int]:
    """Processes whose working directory is in one of the instances' roots (the apps the scripts started)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cwd = os.readlink(f"/proc/{entry}/cwd")
            except OSError:
                continue
            if any(cwd.startswith(root) for root in roots):
                found.append(int(entry))
    return found


def _gone(roots: list[str], seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while _app_processes(roots):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _deploy(git_repo: Callable[..., GitRepoBuilder]) -> tuple[GitRepoBuilder, SandboxProcess, list[str]]:
    repo = git_repo({"modules.yaml": MODULES, "api/buildspec.yml": BUILDSPEC, "api/bundle/appspec.yml": APPSPEC,
                     "api/bundle/app/version.txt": "1", "api/bundle/start.sh": START})  # fmt: skip
    (repo.path / "api/bundle/start.sh").chmod(0o755)
    repo.commit({"api/bundle/version.txt": "executable bit recorded"})
    box = SandboxProcess(repo.path, timings={"deploy_step": 0.05}).start()
    fleet: dict[str, Any] = instances(box.endpoint)
    assert len(fleet) == 2 and all(name.startswith("i-") and row["tags"] == {"Role": "api"}
                                   for name, row in fleet.items())  # fmt: skip
    done = run_cli(box.run_env(), repo.path, "run")
    assert done.code == 0, done.output
    fleet = instances(box.endpoint)
    assert all(row["app_running"] for row in fleet.values())
    roots = [row["root"] for row in fleet.values()]
    assert len(_app_processes(roots)) >= 2
    return repo, box, roots


def test_ec2_instances_by_tag_and_a_clean_stop_ends_their_apps(git_repo: Callable[..., GitRepoBuilder]) -> None:
    _, box, roots = _deploy(git_repo)
    box.stop()
    assert _gone(roots)


def test_apps_die_with_a_sandbox_killed_outright(git_repo: Callable[..., GitRepoBuilder]) -> None:
    _, box, roots = _deploy(git_repo)
    assert box.proc is not None
    os.killpg(box.proc.pid, signal.SIGKILL)  # no clean-up code runs
    box.proc.wait()
    box.stop()
    assert _gone(roots), "the instances' PID namespaces (or the death signal) take their processes down"
