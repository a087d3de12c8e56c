"""What a build reads: a clean checkout of the head commit, never the working tree as it happens to be.

A content tag names a module's inputs *at a commit* (git tree objects, :mod:`deployfw.builds.content`),
so the image pushed under it must be built from exactly that commit. CodeBuild does this by
construction (``CODEBUILD_SRC_DIR`` is a fresh clone); a build on this machine (the ``local`` backend,
``deployfw build`` on a Jenkins agent) used to run in the working tree, where an untracked file or an
uncommitted edit went into the image and then, under the commit's content tag, into every later run
that reused it. So every such build gets its own checkout of the commit:

- :func:`commit_checkout` writes the commit's tree into a new folder under ``.deployfw/builds/`` with
  a private index file (``git read-tree`` + ``git checkout-index``): the user's index, working tree
  and ``.git`` are never touched, any number of builds can check out at once, and the files are what
  a clone would give (checkout filters and attributes apply; ``git archive``'s export-ignore and
  export-subst do not). The folder is removed when the build ends; folders a killed process left
  behind are removed by the next checkout.
- :func:`working_tree_changes` lists what differs from the commit (modified, staged, deleted and
  untracked files; ignored ones and deployfw's own ``.deployfw/`` do not count), so a run can say in
  one line that uncommitted work is *not* being built.
- ``--allow-dirty`` builds the working tree on purpose: such an image is pushed under
  :func:`dirty_tag` - unique to the run, never a content tag - so it can neither be reused nor
  poison the content-tag cache.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from deployfw.backends import ModuleJob
from deployfw.builds.content import config_prefix, module_inputs, select_files
from deployfw.config import Config, Module
from deployfw.gitrepo import GitRepo

BUILDS_DIR = Path(".deployfw") / "builds"
_STATE_DIR = ".deployfw"
_SHOWN = 3  # dirty paths named in the one-line notice


@dataclass(frozen=True)
class WorkingTree:
    """What the working tree holds beyond the head commit, relative to the config root."""

    paths: tuple[str, ...]

    @property
    def dirty(self) -> bool:
        return bool(self.paths)

    def touching(self, config: Config, module: Module) -> list[str]:
        """The changed paths among ``module``'s build inputs (what its content tag covers)."""
        rows = select_files(((p, p) for p in self.paths), *module_inputs(config, module))
        return [path for path, _ in rows]

    def notice(self, head: str, *, allow_dirty: bool) -> str | None:
        """The one line a run prints about uncommitted work, or None for a clean tree."""
        if not self.paths:
            return None
        shown = ", ".join(self.paths[:_SHOWN]) + (f" and {len(self.paths) - _SHOWN} more" if len(self.paths) > _SHOWN
                                                  else "")  # fmt: skip
        if allow_dirty:
            return (f"working tree has {len(self.paths)} uncommitted change(s) ({shown}); --allow-dirty: modules "
                    f"whose inputs they touch build from the working tree under a run-only tag, never reused")
        return (f"working tree has {len(self.paths)} uncommitted change(s) ({shown}); builds use commit "
                f"{head[:12]} only (commit them, or pass --allow-dirty to build them)")


def working_tree_changes(repo: GitRepo, config_root: Path) -> WorkingTree:
    """Every path under ``config_root`` that differs from HEAD or is untracked (ignored files excluded)."""
    prefix = config_prefix(repo.root, config_root)
    lead = f"{prefix}/" if prefix else ""
    paths = []
    for path in repo.status_paths([prefix or "."]):
        if not path.startswith(lead):
            continue
        rel = path[len(lead) :]
        if _STATE_DIR in rel.split("/"):
            continue  # deployfw's own state, checkouts and render output
        paths.append(rel)
    return WorkingTree(tuple(sorted(set(paths))))


@contextlib.contextmanager
def commit_checkout(config: Config, repo: GitRepo, commit: str, label: str) -> Iterator[Path]:
    """A fresh checkout of ``commit`` for one build; yields the folder standing for the config root.

    ``label`` (the module name) only makes the folder recognisable. Removed afterwards, whatever happens.
    """
    builds = config.root / BUILDS_DIR
    builds.mkdir(parents=True, exist_ok=True)
    _remove_orphans(builds)
    safe = "".join(c if c.isalnum() or c in "_.-" else "-" for c in label)
    folder = builds / f"{os.getpid()}-{safe}-{secrets.token_hex(4)}"
    folder.mkdir()
    try:
        tree = folder / "src"
        repo.checkout_to(commit, tree, index_file=folder / "index")
        (folder / "index").unlink(missing_ok=True)
        prefix = config_prefix(repo.root, config.root)
        yield tree / prefix if prefix else tree
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _remove_orphans(builds: Path) -> None:
    """Remove checkouts whose process is gone (a killed run cannot clean up after itself)."""
    for entry in _entries(builds):
        pid_text = entry.name.split("-", 1)[0]
        if pid_text.isdigit() and not _alive(int(pid_text)):
            shutil.rmtree(entry, ignore_errors=True)


def _entries(folder: Path) -> Sequence[Path]:
    try:
        return [p for p in folder.iterdir() if p.is_dir()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: not ours to judge
    return True


@contextlib.contextmanager
def build_workdir(job: ModuleJob) -> Iterator[Path]:
    """Where ``job``'s buildspec runs: a clean checkout of the run's head (or the working tree, on purpose).

    The folder stands for the repository root, as ``CODEBUILD_SRC_DIR`` does in CodeBuild.
    """
    config = job.ctx.config
    if job.from_worktree:
        tag = job.image.content_tag if job.image else "-"
        job.log(f"building the working tree as it is (--allow-dirty), tag {tag}")
        yield config.root
        return
    with commit_checkout(config, GitRepo(config.root), job.ctx.head, job.module.name) as tree:
        job.log(f"building a clean checkout of {job.ctx.head[:12]} ({tree.relative_to(config.root)})")
        yield tree
