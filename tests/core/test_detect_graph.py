"""``graph: gradle|maven`` end to end: config loading, detect's reasons and notes, the example repository."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from deployfw.buildgraph import TOOLS
from deployfw.config import load_config
from deployfw.errors import InputError
from deployfw.schema import GRAPH_TOOLS
from deployfw.testing.gitrepo import GitRepoBuilder

REPO_ROOT = Path(__file__).resolve().parents[2]

CONFIG = """\
version: 1
project: shop
graph: gradle
shared_paths: [settings.gradle, build.gradle]
defaults:
  build: {backend: local}
  registry: {backend: ecr}
  deploy: {backend: ecs-rolling, cluster: c}
modules:
  common: {path: libs/common, kind: library}
  web: {path: libs/web, kind: library}
  api: {path: services/api}
  admin: {path: services/admin, depends_on: [web]}
  batch: {path: services/batch}
"""
FILES = {
    "modules.yaml": CONFIG,
    "settings.gradle": "include ':libs:common', ':libs:web', ':services:api', ':services:admin', ':services:batch'\n",
    "build.gradle": "subprojects { group = 'com.example' }\n",
    "libs/common/build.gradle": "plugins { id 'java-library' }\n",
    "libs/common/src/C.java": "class C {}\n",
    "libs/web/build.gradle": "dependencies {\n  api project(':libs:common')\n}\n",
    "libs/web/src/W.java": "class W {}\n",
    "services/api/build.gradle.kts": (
        "plugins { application }\n\ndependencies {\n    implementation(projects.libs.web)\n}\n"
    ),
    "services/api/src/A.java": "class A {}\n",
    "services/admin/build.gradle": "plugins { id 'application' }\n",
    "services/admin/src/Ad.java": "class Ad {}\n",
    "services/batch/build.gradle": "def lib = ':libs:' + 'common'\ndependencies { implementation project(lib) }\n",
    "services/batch/src/B.java": "class B {}\n",
}


@pytest.fixture
def repo(git_repo: Callable[..., GitRepoBuilder]) -> GitRepoBuilder:
    return git_repo(FILES)


def test_schema_and_readers_offer_the_same_tools() -> None:
    assert GRAPH_TOOLS == TOOLS


def test_effective_dependencies_are_declared_plus_graph(repo: GitRepoBuilder) -> None:
    config = load_config(repo.path / "modules.yaml")
    assert config.graph == "gradle"
    assert config.dependencies("api") == ("web",)
    assert config.modules["api"].dependency_source("web") == "services/api/build.gradle.kts:4"
    assert config.dependencies("web") == ("common",)
    assert config.dependencies("admin") == ("web",)  # declared only
    assert config.modules["admin"].declared == ("web",)
    assert config.dependencies("batch") == ()  # computed in code: a note, never a guess
    assert config.order.index("common") < config.order.index("web") < config.order.index("api")


def test_a_library_change_reaches_dependents_through_the_build_files(cli: Any, repo: GitRepoBuilder) -> None:
    base = repo.head
    repo.commit({"libs/common/src/C.java": "class C { int x; }\n"})
    data = cli(["detect", "--json", "--base", base], cwd=repo.path).json()
    reasons = {m["name"]: m["reasons"] for m in data["modules"]}
    assert reasons == {
        "common": ["changed: libs/common/src/C.java"],
        "web": ["dependency (libs/web/build.gradle:2): common"],
        "api": ["dependency (services/api/build.gradle.kts:4): web"],
        "admin": ["dependency: web"],  # declared in modules.yaml, not in the build
    }
    assert data["graph"] == {
        "tool": "gradle",
        "uncertain": [
            {
                "module": "batch",
                "file": "services/batch/build.gradle",
                "line": 2,
                "message": "project(...) with a path computed in code: its target is not known",
            }
        ],
    }


def test_a_new_build_dependency_takes_effect_at_once(cli: Any, repo: GitRepoBuilder) -> None:
    repo.commit({"services/batch/build.gradle": "dependencies {\n  implementation project(':libs:common')\n}\n"})
    base = repo.head
    repo.commit({"libs/common/src/C.java": "class C { int y; }\n"})
    names = cli(["detect", "--base", base], cwd=repo.path).lines
    assert names == ["admin", "api", "batch", "common", "web"]


def test_text_mode_mentions_the_notes_on_stderr(cli: Any, repo: GitRepoBuilder) -> None:
    base = repo.head
    repo.commit({"services/api/src/A.java": "class A { int z; }\n"})
    result = cli(["detect", "--base", base], cwd=repo.path)
    assert result.out == "api\n"
    assert "1 build-graph notes" in result.err


def test_no_build_files_is_a_located_config_error(tmp_path: Path) -> None:
    (tmp_path / "modules.yaml").write_text(CONFIG, encoding="utf-8")
    for module in ("libs/common", "libs/web", "services/api", "services/admin", "services/batch"):
        (tmp_path / module).mkdir(parents=True)
    with pytest.raises(InputError) as info:
        load_config(tmp_path / "modules.yaml")
    assert str(info.value) == (
        "modules.yaml:3: graph: graph: gradle, but no settings.gradle or settings.gradle.kts"
        " in the config's folder or above any module"
    )


def test_unknown_graph_tool_is_a_located_config_error(repo: GitRepoBuilder) -> None:
    (repo.path / "modules.yaml").write_text(CONFIG.replace("graph: gradle", "graph: bazel"), encoding="utf-8")
    with pytest.raises(
        InputError, match=r"modules.yaml:3: graph: unknown value 'bazel'; expected one of: gradle, maven"
    ):
        load_config(repo.path / "modules.yaml")


def test_a_cycle_through_the_build_is_a_config_error_naming_the_lines(repo: GitRepoBuilder) -> None:
    repo.write({"libs/common/build.gradle": "dependencies {\n  implementation project(':services:api')\n}\n"})
    with pytest.raises(InputError) as info:
        load_config(repo.path / "modules.yaml")
    message = str(info.value)
    assert message.startswith("modules.yaml:3: graph: dependency cycle through the gradle build: ")
    assert "common (libs/common/build.gradle:2)" in message and "api (services/api/build.gradle.kts:4)" in message


def test_a_malformed_pom_stops_the_load_with_its_line(git_repo: Callable[..., GitRepoBuilder]) -> None:
    repo = git_repo(
        {
            "modules.yaml": "version: 1\ngraph: maven\nmodules:\n  a: {path: a, kind: library}\n",
            "pom.xml": "<project><modules><module>a</module></modules></project>\n",
            "a/pom.xml": "<project>\n<artifactId>a</artifactId>\n<dependencies>\n</project>\n",
        }
    )
    with pytest.raises(InputError, match=r"^a/pom.xml:4: not a readable POM"):
        load_config(repo.path / "modules.yaml")


# -- the example repository -------------------------------------------------------------------------


def _example_files(config: str) -> dict[str, str]:
    files = {"modules.yaml": config}
    for name in ("taskdef.json", "appspec.yml"):
        files[name] = (REPO_ROOT / name).read_text(encoding="utf-8")
    for path in (REPO_ROOT / "examples" / "shop").rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            files[path.relative_to(REPO_ROOT).as_posix()] = path.read_text(encoding="utf-8")
    return files


def _handwritten(config: str) -> str:
    """The example's modules.yaml as it was before ``graph: gradle``: every service lists common."""
    assert "\ngraph: gradle\n" in config
    without = config.replace("\ngraph: gradle\n", "\n")
    return re.sub(r"(\n    path: examples/shop/services/[a-z-]+\n)", r"\1    depends_on: [common]\n", without)


def test_the_example_uses_the_gradle_graph_and_declares_no_dependencies() -> None:
    text = (REPO_ROOT / "modules.yaml").read_text(encoding="utf-8")
    assert "depends_on:" not in text.replace("no depends_on", "")
    config = load_config(REPO_ROOT / "modules.yaml")
    assert config.graph == "gradle"
    services = sorted(n for n, m in config.modules.items() if m.is_service)
    assert services == ["order-api", "payment-api", "product-api", "user-api"]
    for name in services:
        assert config.dependencies(name) == ("common",)
        assert config.modules[name].declared == ()
    assert config.graph_notes == ()


@pytest.mark.parametrize(
    "change",
    [
        {"examples/shop/libs/common/src/shoplib.py": "# changed\n"},
        {"examples/shop/services/order-api/app/server.py": "# changed\n"},
        {"examples/shop/settings.gradle": "rootProject.name = 'shop'\n// changed\n"},
        {"examples/shop/services/payment-api/buildspec.yml": "version: 0.2\n"},
        {"docs.md": "unowned\n"},
    ],
)
def test_the_example_detects_what_its_handwritten_depends_on_detected(
    cli: Any, git_repo: Callable[..., GitRepoBuilder], tmp_path: Path, change: dict[str, str]
) -> None:
    text = (REPO_ROOT / "modules.yaml").read_text(encoding="utf-8")
    answers = []
    for variant, config in (("graph", text), ("handwritten", _handwritten(text))):
        repo = git_repo(_example_files(config), name=variant)
        base = repo.head
        repo.commit(
            {
                k: (repo.path / k).read_text(encoding="utf-8") + v if (repo.path / k).exists() else v
                for k, v in change.items()
            }
        )
        data = cli(["detect", "--json", "--base", base], cwd=repo.path).json()
        answers.append((variant, data))
    (_, graph), (_, handwritten) = answers
    assert [m["name"] for m in graph["modules"]] == [m["name"] for m in handwritten["modules"]]
    assert graph["unowned"] == handwritten["unowned"]
    for with_graph, declared in zip(graph["modules"], handwritten["modules"], strict=True):
        # the same reasons, except that a dependency names the build file line it comes from
        assert [re.sub(r"dependency \([^)]*\)", "dependency", r) for r in with_graph["reasons"]] == declared["reasons"]
    if "libs/common" in next(iter(change)):
        reasons = {m["name"]: m["reasons"] for m in graph["modules"]}
        assert reasons["user-api"] == ["dependency (examples/shop/services/user-api/build.gradle:1): common"]


def test_content_tags_and_run_order_follow_the_same_graph_edges(repo: GitRepoBuilder) -> None:
    """The image of api covers the folders of what the build files make it depend on, transitively."""
    from deployfw.builds.content import module_inputs

    config = load_config(repo.path / "modules.yaml")
    folders, _, _ = module_inputs(config, config.modules["api"])
    assert folders == ["libs/common", "libs/web", "services/api"]
    assert config.order.index("web") < config.order.index("api")
