"""Content tags: identical inputs give the identical tag, any change to an input a different one."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from deployfw.builds.content import ContentTagger, commit_tag, content_tag
from deployfw.config import Config
from deployfw.testing import GitRepoBuilder

Tags = Callable[..., dict[str, str]]


@pytest.fixture
def tags(loader: Callable[..., Config]) -> Tags:
    """``tags(repo, root=None)`` -> content tag of each service module at the repo's head."""

    def compute(repo: GitRepoBuilder, root: Path | None = None) -> dict[str, str]:
        config = loader(root or repo.path)
        tagger = ContentTagger(config, repo.head)
        return {name: tagger.tag(config.modules[name]) for name in ("api", "other")}

    return compute


def test_tag_format_and_stability(
    shop: GitRepoBuilder, tmp_path: Path, tags: Tags, loader: Callable[..., Config], shop_files: dict[str, str]
) -> None:
    first = tags(shop)
    assert all(re.fullmatch(r"content-[0-9a-f]{24}", t) for t in first.values())
    assert first["api"] != first["other"]
    assert tags(shop) == first
    # the same files committed in another clone, at another time, give the same tags
    twin = GitRepoBuilder(tmp_path / "twin", shop_files)
    assert tags(twin) == first
    assert content_tag(loader(shop.path), loader(shop.path).modules["api"], shop.head) == first["api"]


def test_unrelated_changes_keep_the_tag(shop: GitRepoBuilder, tags: Tags) -> None:
    before = tags(shop)
    shop.commit({"README.md": "shop, updated\n", "docs/notes.md": "x\n"})
    assert tags(shop) == before
    shop.commit({"services/other/app/main.py": "print('other 2')\n"})
    after = tags(shop)
    assert after["api"] == before["api"]
    assert after["other"] != before["other"]


def test_uncommitted_edits_do_not_count(shop: GitRepoBuilder, tags: Tags) -> None:
    before = tags(shop)
    (shop.path / "services/api/app/main.py").write_text("print('dirty')\n")
    assert tags(shop) == before


@pytest.mark.parametrize(
    ("path", "content"),
    [
        ("services/api/app/main.py", "print('api 2')\n"),  # the module's own file
        ("services/api/app/new.txt", "new\n"),  # an added file
        ("libs/common/Common.kt", "object Common2\n"),  # a direct dependency
        ("libs/util/Util.kt", "object Util2\n"),  # a transitive dependency
        ("build.gradle", "plugins { id 'x' }\n"),  # a shared root file
        ("gradle/wrapper.properties", "distributionUrl=y\n"),  # under a shared glob
        ("deploy/api-taskdef.json", '{"family": "api2"}\n'),  # a file the config references
    ],
)
def test_each_input_file_changes_the_tag(shop: GitRepoBuilder, tags: Tags, path: str, content: str) -> None:
    before = tags(shop)
    shop.commit({path: content})
    after = tags(shop)
    assert after["api"] != before["api"], path
    shared = path.startswith(("build.gradle", "gradle/"))
    assert (after["other"] != before["other"]) == shared, path


def test_deleting_a_module_file_changes_the_tag(shop: GitRepoBuilder, tags: Tags) -> None:
    before = tags(shop)
    shop.commit({"services/api/app/extra.txt": "x\n"})
    with_extra = tags(shop)
    shop.commit({"services/api/app/extra.txt": None})
    assert tags(shop)["api"] == before["api"] != with_extra["api"]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("build: {environment: {GREETING: hello,", "build: {environment: {GREETING: bonjour,"),  # build option
        ("    build: {environment", "    build: {backend: codebuild, environment"),  # build backend
        ("registry: {repository: local-api}", "registry: {repository: local-api, immutable_tags: true}"),
    ],
)
def test_build_and_registry_config_change_the_tag(
    shop: GitRepoBuilder, tags: Tags, shop_yaml: str, old: str, new: str
) -> None:
    before = tags(shop)
    assert old in shop_yaml
    shop.commit({"modules.yaml": shop_yaml.replace(old, new)})
    after = tags(shop)
    assert after["api"] != before["api"]
    assert after["other"] == before["other"]


def test_deploy_config_does_not_change_the_tag(shop: GitRepoBuilder, tags: Tags, shop_yaml: str) -> None:
    before = tags(shop)
    shop.commit({"modules.yaml": shop_yaml.replace("cluster: test-cluster", "cluster: other-cluster")})
    assert tags(shop) == before


def test_config_in_a_subfolder_of_the_git_repository(tmp_path: Path, tags: Tags, shop_files: dict[str, str]) -> None:
    nested = GitRepoBuilder(tmp_path / "mono", {f"shop/{k}": v for k, v in shop_files.items()} | {"x/y.txt": "1\n"})
    flat = GitRepoBuilder(tmp_path / "flat", shop_files)
    assert tags(nested, nested.path / "shop") == tags(flat)
    nested.commit({"x/y.txt": "2\n"})  # outside the config root: nobody's input
    assert tags(nested, nested.path / "shop") == tags(flat)


def test_inputs_listed_for_reports(shop: GitRepoBuilder, loader: Callable[..., Config]) -> None:
    config = loader(shop.path)
    files = [path for path, _ in ContentTagger(config, shop.head).files(config.modules["api"])]
    assert files == sorted(
        [
            "build.gradle",
            "deploy/api-taskdef.json",
            "gradle/wrapper.properties",
            "libs/common/Common.kt",
            "libs/util/Util.kt",
            "services/api/app/main.py",
            "services/api/buildspec.yml",
        ]
    )
    assert commit_tag(shop.head) == shop.head
