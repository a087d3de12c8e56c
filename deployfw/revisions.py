"""Decide which two commits to compare, and from where.

Order (DESIGN.md): ``--base/--head`` flags; then CI variables; otherwise there is
no base and every module is affected. A base named by flag that does not exist
is the user's mistake (exit 2); one from CI variables may point at a commit this
clone never had (force-push, shallow clone), so it becomes a fallback with a
reason instead. Shallow clones are deepened once before giving up.
"""

from __future__ import annotations

from dataclasses import dataclass

from deployfw.ci import CIContext
from deployfw.errors import InputError
from deployfw.gitrepo import GitRepo


@dataclass(frozen=True)
class Range:
    """The commits a detection compares; ``merge_base`` None means "everything"."""

    base: str | None
    head: str
    merge_base: str | None
    fallback: str | None  # why everything is affected, when it is


def resolve_range(repo: GitRepo, ci: CIContext, base: str | None, head: str | None) -> Range:
    head_rev = head or ci.head or "HEAD"
    base_rev = base or ci.base
    if base_rev:
        # The common case - both commits exist - costs one git call instead of two; anything
        # else takes the one-by-one path below, which knows which revision is missing.
        both = repo.resolve_all([head_rev, base_rev])
        if both is not None:
            return range_from(repo, both[1], both[0])
    head_sha = resolve_commit(repo, head_rev)
    if head_sha is None:
        origin = "--head" if head else "CI variables" if ci.head else "the repository"
        raise InputError(f"head revision {head_rev!r} (from {origin}) is not a commit in {repo.root}")

    if base:
        base_sha = resolve_commit(repo, base)
        if base_sha is None:
            raise InputError(f"--base {base!r} is not a commit in this repository")
    elif ci.base:
        base_sha = resolve_commit(repo, ci.base)
        if base_sha is None:
            return Range(None, head_sha, None, f"no base: {ci.base_source}={ci.base[:12]} not in this clone")
    else:
        return Range(None, head_sha, None, "no base")
    return range_from(repo, base_sha, head_sha)


def range_from(repo: GitRepo, base_sha: str, head_sha: str) -> Range:
    """The range from the merge-base of two resolved commits, deepening a shallow clone once if needed."""
    merge_base = repo.merge_base(base_sha, head_sha)
    if merge_base is None and repo.is_shallow():
        repo.deepen()
        merge_base = repo.merge_base(base_sha, head_sha)
    if merge_base is None:
        return Range(base_sha, head_sha, None, f"no base: {base_sha[:12]} shares no history with head")
    return Range(base_sha, head_sha, merge_base, None)


def resolve_commit(repo: GitRepo, rev: str) -> str | None:
    """Resolve ``rev``, deepening a shallow clone once if it is missing."""
    sha = repo.resolve(rev)
    if sha is None and repo.is_shallow() and repo.deepen() is None:
        sha = repo.resolve(rev)
    return sha
