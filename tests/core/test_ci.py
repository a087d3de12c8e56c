"""Base/head from CI variables: each CI system, flags winning, and "no base".

The unit tests pin how each CI's variables are read; the CLI tests prove the
values actually steer ``deployfw detect`` on a real repository.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from deployfw.ci import detect_ci
from deployfw.testing.gitrepo import GitRepoBuilder

CONFIG = """\
version: 1
defaults:
  build: {backend: local}
  registry: {backend: ecr}
  deploy: {backend: ecs-rolling, cluster: c}
modules:
  lib: {path: lib, kind: library}
  a: {path: svc/a, depends_on: [lib]}
  b: {path: svc/b}
"""
JENKINS = {"JOB_NAME": "shop/main", "BUILD_NUMBER": "7", "JENKINS_URL": "https://ci.example/"}
ZERO = "0" * 40


@pytest.fixture
def repo(git_repo: Callable[..., GitRepoBuilder]) -> GitRepoBuilder:
    """Three commits: c0 initial, c1 changes a, c2 changes b (HEAD)."""
    repo = git_repo({"modules.yaml": CONFIG, "lib/l": "1\n", "svc/a/x": "1\n", "svc/b/y": "1\n"})
    repo.c0 = repo.head  # type: ignore[attr-defined]
    repo.c1 = repo.commit({"svc/a/x": "2\n"})  # type: ignore[attr-defined]
    repo.c2 = repo.commit({"svc/b/y": "2\n"})  # type: ignore[attr-defined]
    return repo


def detect(cli: Callable[..., Any], repo: GitRepoBuilder, *args: str) -> dict[str, Any]:
    return cli(["detect", "--json", *args], cwd=repo.path).json()


def names(result: dict[str, Any]) -> list[str]:
    return [m["name"] for m in result["modules"]]


def github_event(tmp_path: Path, event: dict[str, Any]) -> str:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event), encoding="utf-8")
    return str(path)


# ---- reading the variables ---------------------------------------------------------------------


def test_terminal_without_ci_variables() -> None:
    ctx = detect_ci({"HOME": "/root"})
    assert (ctx.name, ctx.base, ctx.head, ctx.is_ci) == ("terminal", None, None, False)


def test_another_ci_system_is_known_by_ci_true() -> None:
    """GitLab, CircleCI, Buildkite...: no commit variables deployfw reads, but a CI agent all the same."""
    for value in ("true", "1", "TRUE"):
        ctx = detect_ci({"CI": value})
        assert (ctx.name, ctx.title, ctx.base, ctx.head, ctx.is_ci) == ("ci", "CI", None, None, True)
    assert detect_ci({"CI": "false"}).name == "terminal"
    assert detect_ci({"CI": "true", **JENKINS}).name == "jenkins"  # a CI we know says more


def test_jenkins_needs_its_job_variables() -> None:
    """GIT_COMMIT alone (a developer's shell) is not Jenkins."""
    assert detect_ci({"GIT_COMMIT": "abc", "GIT_PREVIOUS_SUCCESSFUL_COMMIT": "def"}).name == "terminal"
    ctx = detect_ci({**JENKINS, "GIT_COMMIT": "abc", "GIT_PREVIOUS_SUCCESSFUL_COMMIT": "def", "BUILD_URL": "u"})
    assert (ctx.name, ctx.base, ctx.head, ctx.build_url) == ("jenkins", "def", "abc", "u")
    assert ctx.base_source == "GIT_PREVIOUS_SUCCESSFUL_COMMIT"


def test_jenkins_first_build_has_no_base() -> None:
    ctx = detect_ci({**JENKINS, "GIT_COMMIT": "abc", "GIT_PREVIOUS_SUCCESSFUL_COMMIT": ""})
    assert (ctx.name, ctx.base, ctx.head) == ("jenkins", None, "abc")


def test_codebuild_variables_and_console_link() -> None:
    ctx = detect_ci(
        {
            "CODEBUILD_BUILD_ID": "shop-deploy:1234",
            "CODEBUILD_WEBHOOK_PREV_COMMIT": "old",
            "CODEBUILD_RESOLVED_SOURCE_VERSION": "new",
            "AWS_REGION": "ap-northeast-2",
        }
    )
    assert (ctx.name, ctx.base, ctx.head) == ("codebuild", "old", "new")
    assert ctx.build_url is not None
    assert ctx.build_url.startswith("https://ap-northeast-2.console.aws.amazon.com/")
    assert "shop-deploy%3A1234" in ctx.build_url


@pytest.mark.parametrize(
    ("event", "base"),
    [
        ({"before": "a" * 40, "after": "b" * 40}, "a" * 40),
        ({"pull_request": {"base": {"sha": "c" * 40}, "head": {"sha": "d" * 40}}, "before": "e" * 40}, "c" * 40),
        ({"before": ZERO}, None),  # first push of a new branch
        ({}, None),
    ],
    ids=["push", "pull_request", "zero-before", "empty"],
)
def test_github_event_file(tmp_path: Path, event: dict[str, Any], base: str | None) -> None:
    env = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_PATH": github_event(tmp_path, event), "GITHUB_SHA": "f" * 40}
    ctx = detect_ci(env)
    assert (ctx.name, ctx.base, ctx.head) == ("github", base, "f" * 40)


def test_github_unreadable_event_file_means_no_base(tmp_path: Path) -> None:
    (tmp_path / "event.json").write_text("{not json", encoding="utf-8")
    ctx = detect_ci({"GITHUB_ACTIONS": "true", "GITHUB_EVENT_PATH": str(tmp_path / "event.json")})
    assert ctx.base is None
    assert detect_ci({"GITHUB_ACTIONS": "true", "GITHUB_EVENT_PATH": str(tmp_path / "missing")}).base is None


# ---- the variables steer detect ----------------------------------------------------------------


def test_jenkins_range_drives_detect(cli: Any, repo: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {**JENKINS, "GIT_PREVIOUS_SUCCESSFUL_COMMIT": repo.c0, "GIT_COMMIT": repo.c1}.items():
        monkeypatch.setenv(key, value)
    result = detect(cli, repo)
    assert (result["base"], result["head"], names(result)) == (repo.c0, repo.c1, ["a"])


def test_codebuild_range_drives_detect(cli: Any, repo: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEBUILD_BUILD_ID", "shop:1")
    monkeypatch.setenv("CODEBUILD_WEBHOOK_PREV_COMMIT", repo.c1)
    monkeypatch.setenv("CODEBUILD_RESOLVED_SOURCE_VERSION", repo.c2)
    result = detect(cli, repo)
    assert (result["base"], result["head"], names(result)) == (repo.c1, repo.c2, ["b"])


@pytest.mark.parametrize("kind", ["push", "pull_request"])
def test_github_range_drives_detect(
    cli: Any, repo: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kind: str
) -> None:
    event = {"before": repo.c1} if kind == "push" else {"pull_request": {"base": {"sha": repo.c1}}}
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_EVENT_PATH", github_event(tmp_path, event))
    monkeypatch.setenv("GITHUB_SHA", repo.c2)
    result = detect(cli, repo)
    assert (result["base"], result["head"], names(result)) == (repo.c1, repo.c2, ["b"])


def test_github_zero_before_selects_everything(
    cli: Any, repo: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_EVENT_PATH", github_event(tmp_path, {"before": ZERO}))
    result = detect(cli, repo)
    assert result["base"] is None
    assert result["modules"] == [
        {"name": "a", "kind": "service", "reasons": ["no base"]},
        {"name": "b", "kind": "service", "reasons": ["no base"]},
        {"name": "lib", "kind": "library", "reasons": ["no base"]},
    ]


def test_flags_win_over_ci_variables(cli: Any, repo: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {**JENKINS, "GIT_PREVIOUS_SUCCESSFUL_COMMIT": repo.c0, "GIT_COMMIT": repo.c1}.items():
        monkeypatch.setenv(key, value)
    result = detect(cli, repo, "--base", repo.c1, "--head", repo.c2)
    assert (result["base"], result["head"], names(result)) == (repo.c1, repo.c2, ["b"])
    # --base alone: head still comes from CI (GIT_COMMIT), not from HEAD
    result = detect(cli, repo, "--base", repo.c0)
    assert (result["head"], names(result)) == (repo.c1, ["a"])


def test_no_base_selects_every_module(cli: Any, repo: Any) -> None:
    result = detect(cli, repo)
    assert result["base"] is None
    assert result["head"] == repo.c2
    assert {m["name"]: m["reasons"] for m in result["modules"]} == {
        "a": ["no base"],
        "b": ["no base"],
        "lib": ["no base"],
    }
    assert cli(["detect"], cwd=repo.path).lines == ["a", "b", "lib"]


def test_ci_base_unknown_to_the_repository_falls_back(cli: Any, repo: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {**JENKINS, "GIT_PREVIOUS_SUCCESSFUL_COMMIT": "1" * 40}.items():
        monkeypatch.setenv(key, value)
    result = detect(cli, repo)
    assert result["base"] is None
    assert names(result) == ["a", "b", "lib"]
    reason = result["modules"][0]["reasons"][0]
    assert reason.startswith("no base: GIT_PREVIOUS_SUCCESSFUL_COMMIT=111111111111")


@pytest.mark.parametrize(
    "env",
    [
        {**JENKINS, "GIT_PREVIOUS_SUCCESSFUL_COMMIT": ZERO, "GIT_COMMIT": "abc"},
        {
            "CODEBUILD_BUILD_ID": "p:1",
            "CODEBUILD_WEBHOOK_PREV_COMMIT": ZERO,
            "CODEBUILD_RESOLVED_SOURCE_VERSION": "abc",
        },
    ],
    ids=["jenkins", "codebuild"],
)
def test_zero_previous_commit_is_no_base(env: dict[str, str]) -> None:
    """A branch's first webhook build names the all-zero SHA: that is "no base", not a commit to fetch."""
    ctx = detect_ci(env)
    assert (ctx.base, ctx.head) == (None, "abc")
