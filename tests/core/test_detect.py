"""Change detection rules (DESIGN.md "Change detection") on real git repositories.

Every test builds a repository with the ``git_repo`` fixture, commits a change
and runs ``deployfw detect --json`` in-process, so the whole chain (git diff,
ownership, shared globs, config comparison, dependents) is exercised together.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from deployfw.detect import glob_regex
from deployfw.testing.gitrepo import GitRepoBuilder

CONFIG = """\
version: 1
project: shop
shared_paths: [build.gradle, "gradle/**", "*.props"]
defaults:
  build: {backend: local}
  registry: {backend: ecr}
  deploy: {backend: ecs-bluegreen, cluster: test, appspec: appspec.yml}
modules:
  core:
    path: libs/core
    kind: library
  web:
    path: libs/web
    kind: library
    depends_on: [core]
  a:
    path: svc/a
    depends_on: [web]
  ab:
    path: svc/ab
  parent:
    path: svc/p
  child:
    path: svc/p/child
  b:
    path: svc/b
    build: {backend: local, buildspec: svc/b/buildspec.yml}
    deploy: {service: b, taskdef: deploy/b-taskdef.json}
environments:
  prod:
    modules:
      b:
        deploy: {cluster: prod}
"""

FILES = {
    "modules.yaml": CONFIG,
    "build.gradle": "root build\n",
    "settings.gradle": "include 'a'\n",
    "gradle/wrapper/gradle-wrapper.properties": "v=8\n",
    "appspec.yml": "version: 0.0\n",
    "deploy/b-taskdef.json": "{}\n",
    "docs/readme.md": "docs\n",
    "libs/core/Core.java": "class Core {}\n",
    "libs/web/Web.java": "class Web {}\n",
    "svc/a/A.java": "class A {}\n",
    "svc/a/moved.txt": "a file that moves between modules\n" * 5,
    "svc/ab/AB.java": "class AB {}\n",
    "svc/p/P.java": "class P {}\n",
    "svc/p/child/C.java": "class C {}\n",
    "svc/b/B.java": "class B {}\n",
    "svc/b/buildspec.yml": "version: 0.2\n",
}
SERVICES = ["a", "ab", "b", "child", "parent"]

Detect = Callable[..., dict[str, Any]]


@pytest.fixture
def repo(git_repo: Callable[..., GitRepoBuilder]) -> GitRepoBuilder:
    return git_repo(FILES)


@pytest.fixture
def detect_json(cli: Callable[..., Any]) -> Detect:
    """``detect_json(repo, base, head, *extra)`` -> the parsed ``detect --json`` output."""

    def run(repo: GitRepoBuilder, base: str, head: str | None = None, *extra: str) -> dict[str, Any]:
        args = ["-c", str(repo.path / "modules.yaml"), *extra, "detect", "--json", "--base", base]
        if head:
            args += ["--head", head]
        return cli(args, cwd=repo.path).json()

    return run


def change(repo: GitRepoBuilder, files: Mapping[str, str | None]) -> tuple[str, str]:
    """Commit ``files`` on top of HEAD; returns (base, head)."""
    base = repo.head
    return base, repo.commit(files)


def affected(result: dict[str, Any]) -> dict[str, list[str]]:
    return {m["name"]: m["reasons"] for m in result["modules"]}


# ---- ownership ---------------------------------------------------------------------------------


def test_longest_prefix_in_whole_components(repo: GitRepoBuilder, detect_json: Detect) -> None:
    """``svc/ab/x`` belongs to ``ab`` even though ``svc/a`` is a string prefix of it."""
    base, head = change(repo, {"svc/ab/AB.java": "class AB { int x; }\n"})
    result = detect_json(repo, base, head)
    assert affected(result) == {"ab": ["changed: svc/ab/AB.java"]}
    assert result["unowned"] == 0


def test_sibling_with_common_string_prefix_is_not_owner(repo: GitRepoBuilder, detect_json: Detect) -> None:
    base, head = change(repo, {"svc/a/A.java": "class A { int y; }\n"})
    assert affected(detect_json(repo, base, head)) == {"a": ["changed: svc/a/A.java"]}


def test_nested_module_owns_its_folder_and_parent_the_rest(repo: GitRepoBuilder, detect_json: Detect) -> None:
    base, head = change(repo, {"svc/p/child/C.java": "class C { }\n"})
    assert affected(detect_json(repo, base, head)) == {"child": ["changed: svc/p/child/C.java"]}
    base, head = change(repo, {"svc/p/P.java": "class P { }\n", "svc/p/childish/x.txt": "not child\n"})
    assert set(affected(detect_json(repo, base, head))) == {"parent"}


@pytest.mark.parametrize(
    ("files", "path"),
    [
        ({"svc/a/New.java": "class New {}\n"}, "svc/a/New.java"),  # added
        ({"svc/a/A.java": "class A { int z; }\n"}, "svc/a/A.java"),  # modified
        ({"svc/a/A.java": None}, "svc/a/A.java"),  # deleted
    ],
    ids=["added", "modified", "deleted"],
)
def test_added_modified_deleted_files_count(
    repo: GitRepoBuilder, detect_json: Detect, files: Mapping[str, str | None], path: str
) -> None:
    base, head = change(repo, files)
    assert affected(detect_json(repo, base, head)) == {"a": [f"changed: {path}"]}


def test_rename_between_modules_affects_both_sides(repo: GitRepoBuilder, detect_json: Detect) -> None:
    """An unchanged file moved from a to ab (git sees a 100% rename) affects both modules."""
    base = repo.head
    repo.rename("svc/a/moved.txt", "svc/ab/moved.txt")
    head = repo.commit(message="move")
    result = affected(detect_json(repo, base, head))
    assert result == {"a": ["changed: svc/a/moved.txt"], "ab": ["changed: svc/ab/moved.txt"]}


def test_many_paths_are_capped_in_reasons(repo: GitRepoBuilder, detect_json: Detect) -> None:
    base, head = change(repo, {f"svc/ab/f{i}.txt": str(i) for i in range(5)})
    reasons = affected(detect_json(repo, base, head))["ab"]
    assert reasons[:3] == ["changed: svc/ab/f0.txt", "changed: svc/ab/f1.txt", "changed: svc/ab/f2.txt"]
    assert reasons[3:] == ["+2 more changed paths"]


# ---- shared paths ------------------------------------------------------------------------------


def test_root_build_file_affects_every_service_but_no_library(repo: GitRepoBuilder, detect_json: Detect) -> None:
    base, head = change(repo, {"build.gradle": "root build 2\n"})
    result = affected(detect_json(repo, base, head))
    assert sorted(result) == SERVICES
    assert all(reasons == ["shared: build.gradle"] for reasons in result.values())


def test_build_file_below_root_is_not_the_shared_one(repo: GitRepoBuilder, detect_json: Detect) -> None:
    """``build.gradle`` in shared_paths is the root file only, not every build.gradle."""
    base, head = change(repo, {"docs/build.gradle": "x\n", "svc/ab/build.gradle": "y\n"})
    result = detect_json(repo, base, head)
    assert affected(result) == {"ab": ["changed: svc/ab/build.gradle"]}
    assert result["unowned"] == 1


def test_double_star_covers_everything_below(repo: GitRepoBuilder, detect_json: Detect) -> None:
    base, head = change(repo, {"gradle/wrapper/gradle-wrapper.properties": "v=9\n"})
    result = affected(detect_json(repo, base, head))
    assert sorted(result) == SERVICES
    assert result["a"] == ["shared: gradle/wrapper/gradle-wrapper.properties"]


def test_single_star_does_not_cross_slash(repo: GitRepoBuilder, detect_json: Detect) -> None:
    base, head = change(repo, {"docs/x.props": "nested\n"})
    result = detect_json(repo, base, head)
    assert result["modules"] == []
    assert result["unowned"] == 1
    base, head = change(repo, {"top.props": "root\n"})
    assert sorted(affected(detect_json(repo, base, head))) == SERVICES


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("build.gradle", "build.gradle", True),
        ("build.gradle", "a/build.gradle", False),
        ("gradle/**", "gradle/a/b/c", True),
        ("gradle/**", "gradlew", False),
        ("*.gradle", "settings.gradle", True),
        ("*.gradle", "a/settings.gradle", False),
        ("**/*.gradle", "a/b/settings.gradle", True),
        ("**/*.gradle", "settings.gradle", True),
        ("conf/?.yml", "conf/a.yml", True),
        ("conf/?.yml", "conf/ab.yml", False),
        ("a.b", "axb", False),
    ],
)
def test_glob_semantics(pattern: str, path: str, matches: bool) -> None:
    regex = glob_regex([pattern])
    assert regex is not None
    assert bool(regex.match(path)) is matches


# ---- config changes ----------------------------------------------------------------------------


def test_module_own_entry_change_affects_only_it(repo: GitRepoBuilder, detect_json: Detect) -> None:
    base, head = change(repo, {"modules.yaml": CONFIG.replace("service: b,", "service: b2,")})
    result = detect_json(repo, base, head)
    assert affected(result) == {"b": ["config: module entry changed"]}
    assert result["unowned"] == 0  # modules.yaml itself is never counted


def test_defaults_change_reaches_every_service(repo: GitRepoBuilder, detect_json: Detect) -> None:
    base, head = change(repo, {"modules.yaml": CONFIG.replace("cluster: test", "cluster: test2")})
    result = affected(detect_json(repo, base, head))
    assert sorted(result) == SERVICES
    assert result["ab"] == ["config: module entry changed"]


def test_default_overridden_by_module_does_not_affect_it(repo: GitRepoBuilder, detect_json: Detect) -> None:
    """b sets its own build backend, so a change of the default backend leaves its merged entry alone."""
    config = CONFIG.replace("build: {backend: local}\n  registry", "build: {backend: codebuild}\n  registry")
    base, head = change(repo, {"modules.yaml": config})
    assert sorted(affected(detect_json(repo, base, head))) == ["a", "ab", "child", "parent"]


def test_overlay_change_counts_only_with_that_env(repo: GitRepoBuilder, detect_json: Detect) -> None:
    base, head = change(repo, {"modules.yaml": CONFIG.replace("cluster: prod", "cluster: prod2")})
    assert affected(detect_json(repo, base, head, "--env", "prod")) == {"b": ["config: module entry changed"]}
    assert detect_json(repo, base, head)["modules"] == []


def test_new_environment_overlay_is_compared_to_base_without_it(repo: GitRepoBuilder, detect_json: Detect) -> None:
    """An env added in head did not exist at base: base is read without the overlay, not as an error."""
    config = CONFIG + "  staging:\n    defaults:\n      deploy: {cluster: staging}\n"
    base, head = change(repo, {"modules.yaml": config})
    assert sorted(affected(detect_json(repo, base, head, "--env", "staging"))) == SERVICES


def test_new_module_is_affected_as_config_change(repo: GitRepoBuilder, detect_json: Detect) -> None:
    config = CONFIG.replace("environments:", "  c:\n    path: svc/c\nenvironments:")
    base, head = change(repo, {"modules.yaml": config, "svc/c/C.java": "class C {}\n"})
    assert affected(detect_json(repo, base, head)) == {"c": ["changed: svc/c/C.java", "config: new module"]}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("deploy/b-taskdef.json", ["b"]),  # deploy.taskdef of b
        ("svc/b/buildspec.yml", ["b"]),  # build.buildspec, also owned by b
        ("appspec.yml", SERVICES),  # deploy.appspec from defaults
    ],
)
def test_referenced_config_files_affect_their_modules(
    repo: GitRepoBuilder, detect_json: Detect, path: str, expected: list[str]
) -> None:
    base, head = change(repo, {path: "changed\n"})
    result = detect_json(repo, base, head)
    assert sorted(affected(result)) == expected
    assert result["unowned"] == 0
    if path == "deploy/b-taskdef.json":
        assert affected(result)["b"] == ["config file: deploy/b-taskdef.json"]


# ---- dependents and unowned --------------------------------------------------------------------


def test_transitive_dependents_name_the_dependency(repo: GitRepoBuilder, detect_json: Detect) -> None:
    base, head = change(repo, {"libs/core/Core.java": "class Core { int v; }\n"})
    result = detect_json(repo, base, head)
    assert result["modules"] == [
        {"name": "a", "kind": "service", "reasons": ["dependency: web"]},
        {"name": "core", "kind": "library", "reasons": ["changed: libs/core/Core.java"]},
        {"name": "web", "kind": "library", "reasons": ["dependency: core"]},
    ]


def test_direct_change_and_dependency_keep_direct_reason(repo: GitRepoBuilder, detect_json: Detect) -> None:
    base, head = change(repo, {"libs/web/Web.java": "x\n", "svc/a/A.java": "y\n"})
    result = affected(detect_json(repo, base, head))
    assert result == {"a": ["changed: svc/a/A.java"], "web": ["changed: libs/web/Web.java"]}


def test_unowned_paths_are_counted_and_affect_nothing(repo: GitRepoBuilder, detect_json: Detect) -> None:
    base, head = change(repo, {"docs/readme.md": "new\n", "docs/new.md": "x\n", "LICENSE": "x\n"})
    result = detect_json(repo, base, head)
    assert result["modules"] == []
    assert result["unowned"] == 3


def test_merge_base_ignores_changes_made_on_main_after_branching(repo: GitRepoBuilder, detect_json: Detect) -> None:
    """base=main, head=feature: main's own later commit (svc/ab) is not the branch's change."""
    branch_point = repo.head
    repo.checkout(branch_point, new_branch="feature")
    feature = repo.commit({"svc/a/A.java": "feature\n"})
    repo.checkout("main")
    main = repo.commit({"svc/ab/AB.java": "main moved on\n"})
    result = detect_json(repo, "main", "feature")
    assert affected(result) == {"a": ["changed: svc/a/A.java"]}
    assert result["base"] == main  # the commit the user named, not the merge-base
    assert result["head"] == feature


def test_config_in_subfolder_sees_paths_relative_to_it(git_repo: Callable[..., GitRepoBuilder], cli: Any) -> None:
    """modules.yaml below the repository root: module paths are relative to its folder, outside paths unowned."""
    config = (
        "version: 1\nmodules:\n  a:\n    path: svc/a\n    build: {backend: local}\n"
        "    registry: {backend: ecr}\n    deploy: {backend: ecs-rolling, cluster: c}\n"
    )
    repo = git_repo({"mono/modules.yaml": config, "mono/svc/a/x": "1\n", "other/y": "1\n"})
    base, head = change(repo, {"mono/svc/a/x": "2\n", "other/y": "2\n"})
    result = cli(["-c", str(repo.path / "mono/modules.yaml"), "detect", "--json", "--base", base]).json()
    assert affected(result) == {"a": ["changed: svc/a/x"]}
    assert result["unowned"] == 1
    assert result["head"] == head
