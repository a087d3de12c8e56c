"""Base/head resolution on real repositories: unknown revisions, unrelated history, shallow clones.

CI systems clone shallowly (CodeBuild and Jenkins both default to depth 1 in
many setups), so the base commit is often missing. A missing base must be
fetched; if it cannot be found at all, a base the user typed is an error (exit 2)
while a base from CI variables degrades to "everything" with a reason.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import git
import pytest

from deployfw.ci import detect_ci
from deployfw.errors import InputError
from deployfw.gitrepo import GitRepo
from deployfw.revisions import resolve_range
from deployfw.testing.gitrepo import GitRepoBuilder

CONFIG = """\
version: 1
defaults:
  build: {backend: local}
  registry: {backend: ecr}
  deploy: {backend: ecs-rolling, cluster: c}
modules:
  a: {path: svc/a}
  b: {path: svc/b}
"""
JENKINS = {"JOB_NAME": "shop", "BUILD_NUMBER": "3", "JENKINS_URL": "https://ci.example/"}
MISSING = "2" * 40


@pytest.fixture
def origin(git_repo: Callable[..., GitRepoBuilder]) -> GitRepoBuilder:
    """Four commits; the interesting range c1..c3 changes a then b."""
    repo = git_repo({"modules.yaml": CONFIG, "svc/a/x": "0\n", "svc/b/y": "0\n"}, name="origin")
    repo.c0 = repo.head  # type: ignore[attr-defined]
    repo.c1 = repo.commit({"svc/a/x": "1\n"})  # type: ignore[attr-defined]
    repo.c2 = repo.commit({"svc/a/x": "2\n"})  # type: ignore[attr-defined]
    repo.c3 = repo.commit({"svc/b/y": "3\n"})  # type: ignore[attr-defined]
    return repo


def shallow_clone(origin: GitRepoBuilder, target: Path) -> Path:
    git.Git().clone("--depth", "1", "--quiet", f"file://{origin.path}", str(target))
    assert (target / ".git" / "shallow").exists()
    return target


def test_shallow_clone_fetches_missing_base(cli: Any, origin: Any, tmp_path: Path) -> None:
    clone = shallow_clone(origin, tmp_path / "clone")
    assert GitRepo(clone).resolve(origin.c1) is None  # really not there before detect
    result = cli(["detect", "--json", "--base", origin.c1], cwd=clone).json()
    assert result["base"] == origin.c1
    assert result["head"] == origin.c3
    assert {m["name"]: m["reasons"] for m in result["modules"]} == {
        "a": ["changed: svc/a/x"],
        "b": ["changed: svc/b/y"],
    }
    assert not (clone / ".git" / "shallow").exists()  # history was deepened


def test_shallow_clone_ci_base_is_fetched_too(
    cli: Any, origin: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clone = shallow_clone(origin, tmp_path / "clone")
    for key, value in {**JENKINS, "GIT_PREVIOUS_SUCCESSFUL_COMMIT": origin.c2, "GIT_COMMIT": origin.c3}.items():
        monkeypatch.setenv(key, value)
    result = cli(["detect", "--json"], cwd=clone).json()
    assert (result["base"], [m["name"] for m in result["modules"]]) == (origin.c2, ["b"])


def test_base_flag_that_does_not_exist_is_exit_2(cli: Any, origin: Any, tmp_path: Path) -> None:
    clone = shallow_clone(origin, tmp_path / "clone")
    result = cli(["detect", "--base", MISSING], cwd=clone)
    assert result.code == 2
    assert result.out == ""
    assert len(result.errors) == 1
    assert result.errors[0].startswith("deployfw: error: ")
    assert result.errors[0].endswith(f"--base {MISSING!r} is not a commit in this repository")
    # the same in a full repository, with a name instead of a SHA
    result = cli(["detect", "--base", "no-such-branch"], cwd=origin.path)
    assert result.code == 2
    assert "no-such-branch" in result.err


def test_head_flag_that_does_not_exist_is_exit_2(cli: Any, origin: Any) -> None:
    result = cli(["detect", "--base", origin.c0, "--head", "nope"], cwd=origin.path)
    assert result.code == 2
    assert "head revision 'nope' (from --head)" in result.errors[0]


def test_missing_ci_base_falls_back_to_everything(
    cli: Any, origin: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clone = shallow_clone(origin, tmp_path / "clone")
    for key, value in {**JENKINS, "GIT_PREVIOUS_SUCCESSFUL_COMMIT": MISSING}.items():
        monkeypatch.setenv(key, value)
    result = cli(["detect", "--json"], cwd=clone)
    assert result.code == 0, result.err
    data = result.json()
    assert data["base"] is None
    assert data["head"] == origin.c3
    reason = f"no base: GIT_PREVIOUS_SUCCESSFUL_COMMIT={MISSING[:12]} not in this clone"
    assert data["modules"] == [
        {"name": "a", "kind": "service", "reasons": [reason]},
        {"name": "b", "kind": "service", "reasons": [reason]},
    ]


def test_shallow_clone_without_remote_does_not_crash(origin: Any, tmp_path: Path) -> None:
    """The origin is gone: deepening fails quietly, a flag base is still exit 2."""
    clone = shallow_clone(origin, tmp_path / "clone")
    git.Repo(clone).delete_remote("origin")
    repo = GitRepo(clone)
    assert repo.deepen() == "no remote 'origin' to fetch history from"
    with pytest.raises(InputError):
        resolve_range(repo, detect_ci({}), origin.c1, None)
    ci = detect_ci({**JENKINS, "GIT_PREVIOUS_SUCCESSFUL_COMMIT": origin.c1})
    rng = resolve_range(repo, ci, None, None)
    assert (rng.merge_base, rng.head) == (None, origin.c3)
    assert rng.fallback is not None and "not in this clone" in rng.fallback


def test_unrelated_histories_fall_back_with_reason(git_repo: Callable[..., GitRepoBuilder], origin: Any) -> None:
    """A base with no common ancestor (an orphan branch) cannot be compared: everything, with why."""
    origin.repo.git.checkout("--orphan", "other")
    other = origin.commit({"svc/a/x": "orphan\n"})
    rng = resolve_range(GitRepo(origin.path), detect_ci({}), other, origin.c3)
    assert rng.base == other
    assert rng.merge_base is None
    assert rng.fallback == f"no base: {other[:12]} shares no history with head"


def test_range_uses_merge_base(origin: Any) -> None:
    origin.checkout(origin.c1, new_branch="feature")
    feature = origin.commit({"svc/b/y": "feature\n"})
    rng = resolve_range(GitRepo(origin.path), detect_ci({}), "main", feature)
    assert (rng.base, rng.head, rng.merge_base, rng.fallback) == (origin.c3, feature, origin.c1, None)


def test_resolve_all_answers_only_when_every_revision_is_one_commit(origin: Any) -> None:
    """One ``rev-parse`` for base and head; anything doubtful goes back to one-by-one ``--verify``."""
    repo = GitRepo(origin.path)
    assert repo.resolve_all(["HEAD", "main~2"]) == [origin.c3, origin.c1]
    assert repo.resolve_all([origin.c2[:10], "HEAD"]) == [origin.c2, origin.c3]
    assert repo.resolve_all(["HEAD", MISSING]) is None
    assert repo.resolve_all(["HEAD", "main~1..main"]) is None  # a range expands to two lines
    assert repo.resolve_all(["HEAD", "--all"]) is None  # options are never passed through
    assert repo.resolve_all(["HEAD", ""]) is None
    assert repo.resolve_all([]) is None
    for rev in ("HEAD", "main~2", origin.c2[:10]):
        assert repo.resolve_all([rev]) == [repo.resolve(rev)]


def test_range_with_a_tree_or_range_base_matches_one_by_one_resolution(cli: Any, origin: Any) -> None:
    """Revisions the combined call refuses still get the one-by-one answers and messages."""
    tree = origin.repo.git.rev_parse("HEAD^{tree}")
    result = cli(["detect", "--base", tree], cwd=origin.path)
    assert result.code == 2
    assert f"--base {tree!r} is not a commit in this repository" in result.err
    result = cli(["detect", "--base", "main~2..main"], cwd=origin.path)
    assert result.code == 2
    rng = resolve_range(GitRepo(origin.path), detect_ci({}), "main~2", "main")
    assert (rng.base, rng.head, rng.merge_base) == (origin.c1, origin.c3, origin.c1)
