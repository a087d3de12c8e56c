"""``GitRepo.changed_paths`` lists exactly what ``git diff-tree`` lists, whatever the user's git config says.

The paths come from a commit-to-commit ``git diff`` (which, unlike ``diff-tree``, does
not read the index); the porcelain reads ui configuration that the plumbing ignores,
so these tests set every such option and compare with ``diff-tree``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import git
import pytest

from deployfw.gitrepo import GitRepo
from deployfw.testing.gitrepo import GitRepoBuilder


def _diff_tree(path: Path, old: str, new: str) -> list[str]:
    out = git.Git(str(path)).diff_tree("-r", "-z", "--name-only", "--no-renames", old, new)
    return [p for p in out.split("\0") if p]


@pytest.fixture
def changed(git_repo: Callable[..., GitRepoBuilder]) -> tuple[GitRepoBuilder, str, str]:
    repo = git_repo({"b/x.txt": "1\n", "a/y.txt": "1\n", "z.txt": "1\n", "odd name\t\u00e9.txt": "1\n", "gone": "x\n"})
    base = repo.head
    repo.rename("a/y.txt", "c/y.txt")
    repo.write({"b/x.txt": "2\n", "new/file": "n\n", "odd name\t\u00e9.txt": "2\n", "gone": None})
    return repo, base, repo.commit()


def test_same_paths_as_diff_tree(changed: tuple[GitRepoBuilder, str, str]) -> None:
    repo, base, head = changed
    assert GitRepo(repo.path).changed_paths(base, head) == _diff_tree(repo.path, base, head)
    assert "a/y.txt" in _diff_tree(repo.path, base, head)  # both sides of the rename


@pytest.mark.parametrize(
    "setting",
    [
        ("diff.renames", "copies"),
        ("diff.orderFile", "order.txt"),
        ("diff.relative", "true"),
        ("diff.external", "false"),
        ("color.ui", "always"),
        ("color.diff", "always"),
        ("core.quotePath", "true"),
        ("diff.noprefix", "true"),
    ],
)
def test_user_configuration_changes_nothing(changed: tuple[GitRepoBuilder, str, str], setting: tuple[str, str]) -> None:
    repo, base, head = changed
    expected = _diff_tree(repo.path, base, head)
    (repo.path / "order.txt").write_text("z.txt\nnew/*\n", encoding="utf-8")
    repo.repo.git.config(*setting)
    assert GitRepo(repo.path / "b").changed_paths(base, head) == expected


def test_submodule_changes_are_listed_even_when_configured_away(git_repo: Callable[..., GitRepoBuilder]) -> None:
    sub = git_repo({"s": "1\n"}, name="sub")
    repo = git_repo({"top": "1\n"}, name="top")
    base = repo.head
    first = sub.head
    (repo.path / "vendor" / "sub").mkdir(parents=True)  # an unpopulated submodule, not a deletion
    repo.repo.git.update_index("--add", "--cacheinfo", f"160000,{first},vendor/sub")
    with_sub = repo.commit()
    second = sub.commit({"s": "2\n"})
    repo.repo.git.update_index("--cacheinfo", f"160000,{second},vendor/sub")
    bumped = repo.commit()
    repo.repo.git.config("diff.ignoreSubmodules", "all")
    for old, new in ((base, with_sub), (with_sub, bumped)):
        assert GitRepo(repo.path).changed_paths(old, new) == _diff_tree(repo.path, old, new) == ["vendor/sub"]
