"""Helpers for the ``deployfw run`` tests: a copy of the example repository and what the runs expect of it.

The sandbox process, the in-process CLI and the request-log filters come from the public
kit (:mod:`deployfw.testing`): the sandbox runs in its own process, the way a user runs
``deployfw sandbox`` in another shell, because moto keeps its state in process-wide
dictionaries - an in-process sandbox would share ECR images and services with other test
directories' sandboxes and make "no image pushed" or "a fresh build" depend on which tests
ran before. What stays here is specific to these tests: the example copy, its services and
the secret key that must never be printed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

from deployfw.testing import SandboxProcess

REPOSITORY = Path(__file__).resolve().parents[2]
SERVICES = ("order-api", "payment-api", "product-api", "user-api")  # on ECS
SERVERS = ("legacy-api",)  # on EC2/on-premises servers, through CodeDeploy (codedeploy-server)
MODULES = tuple(sorted(SERVICES + SERVERS))
BLUEGREEN = ("order-api", "payment-api", "user-api")  # ecs-bluegreen and ecs-nlb: CodeDeploy
SECRET = "deployfwTESTsecret-7c1e94b2a55d"  # recognisable: must never reach a log, report or JUnit file


def copy_example(dest: Path) -> Path:
    """The repository's tracked files as they are on disk (uncommitted edits too), committed in a new repo.

    ``git archive HEAD`` would miss work in progress in this checkout; ``git ls-files``
    lists what is tracked and the copy takes each file's current content.
    """
    listed = (
        subprocess.run(["git", "ls-files", "-z"], cwd=REPOSITORY, capture_output=True, check=True)
        .stdout.decode()
        .split("\0")
    )
    for rel in filter(None, listed):
        source = REPOSITORY / rel
        if not source.is_file():  # deleted in the working tree
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    git(dest, "init", "--quiet", "--initial-branch=main")
    commit_all(dest, "example")
    return dest


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}  # fmt: skip
    return subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True).stdout


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


def start_sandbox(
    config: Path, timings: Mapping[str, float], time_scale: float | None = None
) -> Iterator[SandboxProcess]:
    """Generator body for a fixture: a sandbox seeded from ``config`` that stops at teardown."""
    with SandboxProcess(config.parent, config=config, timings=timings, time_scale=time_scale) as box:
        yield box
