"""Helpers for the status/rollback/state/recovery tests: an example copy and commits to it.

The sandbox process and the in-process CLI come from the public kit
(:mod:`deployfw.testing`): the sandbox runs in a process of its own (``deployfw sandbox``
in another shell, as a user runs it) because moto keeps its state process-wide and these
tests need a world where only their own runs deployed anything. What stays here is the
example copy these tests deploy and the commits they make to it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from deployfw.testing import SandboxProcess

REPOSITORY = Path(__file__).resolve().parents[2]


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}  # fmt: skip
    return subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True).stdout


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


def copy_example(dest: Path) -> Path:
    """This checkout's tracked files as they are on disk, committed in a new repository."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPOSITORY, capture_output=True, check=True).stdout
    for rel in filter(None, listed.decode().split("\0")):
        source = REPOSITORY / rel
        if source.is_file():
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    git(dest, "init", "--quiet", "--initial-branch=main")
    commit_all(dest, "example")
    return dest


def change(repo: Path, module: str, text: str) -> str:
    """Commit a change to ``module``'s source; returns the new HEAD."""
    path = repo / "examples" / "shop" / "services" / module / "app" / "server.py"
    path.write_text(path.read_text() + f"\n# {text}\n")
    return commit_all(repo, f"{module}: {text}")


def primary_task_definition(sandbox: SandboxProcess, service: str) -> str:
    """The task definition serving production traffic of a CodeDeploy blue/green service in the sandbox."""
    found = sandbox.client("ecs").describe_services(cluster="shop", services=[service])["services"][0]
    return str(next(ts["taskDefinition"] for ts in found["taskSets"] if ts["status"] == "PRIMARY"))
