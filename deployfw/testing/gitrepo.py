"""Real git repositories for tests, built from a dict of files.

Change detection must be tested against real git (renames, deletions, merge
bases, shallow clones), never a mock, so the kit makes creating one a single
line: ``repo = git_repo({"modules.yaml": "...", "svc/a/x.py": "print(1)"})``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

import git

_IDENTITY = {
    "GIT_AUTHOR_NAME": "deployfw tests",
    "GIT_AUTHOR_EMAIL": "tests@deployfw.invalid",
    "GIT_COMMITTER_NAME": "deployfw tests",
    "GIT_COMMITTER_EMAIL": "tests@deployfw.invalid",
}


class GitRepoBuilder:
    """A git repository in ``path`` with helpers to write, delete, rename and commit."""

    def __init__(self, path: Path, files: Mapping[str, str] | None = None, *, branch: str = "main") -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.repo = git.Repo.init(self.path, initial_branch=branch)
        with self.repo.config_writer() as cfg:
            cfg.set_value("user", "name", _IDENTITY["GIT_AUTHOR_NAME"])
            cfg.set_value("user", "email", _IDENTITY["GIT_AUTHOR_EMAIL"])
            cfg.set_value("commit", "gpgsign", "false")
        if files:
            self.commit(files, message="initial")

    def write(self, files: Mapping[str, str | None]) -> None:
        """Write files (``None`` deletes one) without committing."""
        for rel, content in files.items():
            target = self.path / rel
            if content is None:
                if target.exists():
                    self.repo.index.remove([rel], working_tree=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")

    def rename(self, old: str, new: str) -> None:
        (self.path / new).parent.mkdir(parents=True, exist_ok=True)
        self.repo.git.mv(old, new)

    def commit(self, files: Mapping[str, str | None] | None = None, *, message: str = "change") -> str:
        """Apply ``files`` and commit everything; returns the new commit's SHA."""
        if files:
            self.write(files)
        self.repo.git.add("-A")
        self.repo.git.commit("-m", message, "--allow-empty", env={**os.environ, **_IDENTITY})
        return self.head

    @property
    def head(self) -> str:
        return self.repo.head.commit.hexsha

    def checkout(self, rev: str, *, new_branch: str | None = None) -> None:
        if new_branch:
            self.repo.git.checkout("-b", new_branch, rev)
        else:
            self.repo.git.checkout(rev)


def copy_checkout(source: Path, dest: Path, *, message: str = "copy") -> GitRepoBuilder:
    """``source``'s tracked files as they are on disk (uncommitted edits too), committed in a new repository.

    For end-to-end tests of a repository's own example: ``git archive HEAD`` would miss
    the work in progress being tested, a plain copy would take build output and ignored
    files along. Files tracked but deleted on disk are left out.
    """
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=source, capture_output=True, check=True).stdout
    for rel in filter(None, listed.decode().split("\0")):
        origin = Path(source) / rel
        if origin.is_file():
            target = Path(dest) / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, target)
    builder = GitRepoBuilder(dest)
    builder.commit(message=message)
    return builder
