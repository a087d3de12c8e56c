"""The one boundary to git: plain ``git`` processes, no library in between.

Only what change detection and the runner need: resolve revisions, find the
merge-base, list changed paths, read a file at a revision, and deepen a shallow
clone. Rename detection is switched off on purpose: a rename then appears as a
deletion plus an addition, which is exactly "both sides of a rename count" and
is also cheaper for git to compute on large diffs.

Changed paths come from ``git diff`` between the two commits rather than from
``git diff-tree``: the plumbing command reads the whole index first (200k entries
in a large repository: ten times the time and 70 MB against 17 MB, and worse in
a sparse checkout, where it checks every skipped path on disk), while a
commit-to-commit ``git diff`` never touches it. The flags pin everything the
porcelain would take from user configuration (see :data:`_DIFF_FLAGS`).

Each call is one ``git`` process started with :mod:`subprocess`. gitpython was
used here before; its import (which also runs ``git version`` twice) cost more
than the three git processes ``deployfw detect`` needs, and it added nothing
those few commands need (gitpython stays in the test kit, which builds
repositories). The repository root is found by looking for ``.git`` upwards,
as git does, unless ``GIT_DIR``/``GIT_WORK_TREE`` say otherwise.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

from deployfw.errors import ExternalError, InputError

# ``git diff`` reads ui configuration that ``diff-tree`` ignores; these flags undo every
# setting that could change which paths are listed or in what order.
_DIFF_FLAGS = (
    "--no-color",
    "--no-ext-diff",
    "--no-renames",  # diff.renames: a rename is a deletion plus an addition here
    "--ignore-submodules=none",  # diff.ignoreSubmodules / submodule.*.ignore
    "-O/dev/null",  # diff.orderFile: keep git's path order
    "-z",
    "--name-only",
)
_OBJECT_ID = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?\Z")  # SHA-1 or SHA-256


class GitError(Exception):
    """A git command exited non-zero; ``stderr`` is git's own explanation."""

    def __init__(self, args: Sequence[str], stderr: str) -> None:
        super().__init__(f"git {' '.join(args)}: {stderr.strip()}")
        self.stderr = stderr


def _find_root(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` holding ``.git`` (a folder, or a file for worktrees)."""
    here = start.resolve()
    for folder in (here, *here.parents):
        if os.path.lexists(folder / ".git"):
            return folder
    return None


class GitRepo:
    """A repository on disk; every git command is one ``git`` process run in its root."""

    def __init__(self, path: Path) -> None:
        path = Path(path)
        root = None if {"GIT_DIR", "GIT_WORK_TREE"} & os.environ.keys() else _find_root(path)
        if root is None:
            try:
                top = self._run_in(path, "rev-parse", "--show-toplevel").strip()
            except (GitError, OSError):
                raise InputError(f"{path} is not inside a git repository") from None
            root = Path(top)
        self.root = root.resolve()

    @staticmethod
    def _run_in(cwd: Path, *args: str) -> str:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
        if proc.returncode != 0:
            raise GitError(args, proc.stderr.decode("utf-8", "replace"))
        return proc.stdout.decode("utf-8", "surrogateescape")

    def _git(self, *args: str) -> str:
        return self._run_in(self.root, *args)

    def resolve(self, rev: str) -> str | None:
        """Full SHA of the commit ``rev`` names, or None when this clone does not have it."""
        try:
            return self._git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").strip() or None
        except GitError:
            return None

    def resolve_all(self, revs: Sequence[str]) -> list[str] | None:
        """Full SHAs of several commits with one ``git rev-parse``; None unless every answer is certain.

        ``--verify`` takes one revision per call, and each git start-up costs milliseconds
        at detect's scale. Without it, one argument can expand to several lines (ranges
        such as ``a..b``) or be taken as an option, so the answer is used only when every
        argument is a plain name and each gave exactly one object id; otherwise the caller
        resolves them one by one with :meth:`resolve`, which also says which one is missing.
        """
        if not revs or any(not rev or rev.startswith("-") for rev in revs):
            return None
        try:
            out = self._git("rev-parse", *(f"{rev}^{{commit}}" for rev in revs), "--").strip()
        except GitError:
            return None
        lines = out.split("\n")
        if lines[-1:] != ["--"] or len(lines) != len(revs) + 1:
            return None
        shas = lines[:-1]
        return shas if all(_OBJECT_ID.match(sha) for sha in shas) else None

    def merge_base(self, base: str, head: str) -> str | None:
        try:
            return self._git("merge-base", base, head).strip() or None
        except GitError:
            return None

    def changed_paths(self, old: str, new: str) -> list[str]:
        """Every path added, modified, deleted or renamed (both names) between two commits."""
        try:
            out = self._git("diff", *_DIFF_FLAGS, old, new, "--")
        except GitError as exc:
            raise ExternalError(f"git diff {old[:12]} {new[:12]} failed: {exc.stderr.strip()}") from None
        return [p for p in out.split("\0") if p]

    def read(self, rev: str, path: str) -> str | None:
        """Text of ``path`` at ``rev``, or None when it does not exist there."""
        proc = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=self.root, capture_output=True, check=False)
        return proc.stdout.decode("utf-8", "replace") if proc.returncode == 0 else None

    def is_shallow(self) -> bool:
        try:
            return self._git("rev-parse", "--is-shallow-repository").strip() == "true"
        except GitError:
            return False

    def deepen(self, remote: str = "origin") -> str | None:
        """Fetch the full history of a shallow clone; returns why it failed, or None."""
        try:
            remotes = self._git("remote").split()
        except GitError as exc:
            return f"cannot list remotes: {exc.stderr.strip()}"
        if remote not in remotes:
            return f"no remote {remote!r} to fetch history from"
        try:
            self._git("fetch", "--unshallow", "--quiet", remote)
        except GitError as exc:
            return f"fetching history from {remote} failed: {exc.stderr.strip() or exc}"
        return None

    def list_files(self, rev: str, paths: list[str]) -> list[tuple[str, str]]:
        """``(blob sha, path)`` of every file under ``paths`` at ``rev``: a cheap content fingerprint."""
        if not paths:
            return []
        out = self._git("ls-tree", "-r", "-z", rev, "--", *paths)
        rows = []
        for entry in out.split("\0"):
            if entry:
                meta, name = entry.split("\t", 1)
                rows.append((meta.split()[2], name))
        return rows
