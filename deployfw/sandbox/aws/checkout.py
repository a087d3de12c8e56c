"""Materialise the local repository at a source version, as CodeBuild's DOWNLOAD_SOURCE does.

``git archive`` (through gitpython) gives a clean tree of exactly the requested commit
without touching the user's working copy or index, which other engineers' tools and
the running deployfw may be using at the same time.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path


def resolve(repo_root: Path, revision: str | None) -> str:
    """The commit SHA ``revision`` names (default HEAD); raises ValueError if unknown."""
    import git

    repo = git.Repo(repo_root)
    rev = revision or "HEAD"
    if rev.startswith("refs/heads/") and rev not in {r.path for r in repo.references}:
        rev = "HEAD"
    try:
        return str(repo.commit(rev).hexsha)
    except Exception as exc:  # gitpython raises several types for a bad rev
        raise ValueError(f"source version {revision!r} not found in {repo_root}: {exc}") from None


def export(repo_root: Path, sha: str, dest: Path) -> None:
    """Write the tree of commit ``sha`` into ``dest``."""
    import git

    buffer = io.BytesIO()
    git.Repo(repo_root).archive(buffer, treeish=sha, format="tar")
    buffer.seek(0)
    with tarfile.open(fileobj=buffer) as tar:
        tar.extractall(dest, filter="data")
