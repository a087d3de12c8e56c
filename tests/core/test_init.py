"""``deployfw init`` on generated Gradle and Maven repositories: what it writes, and that plan accepts it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from deployfw.config import load_config
from deployfw.plugins import PluginManager
from deployfw.testing.gitrepo import GitRepoBuilder

GRADLE = {
    "settings.gradle": "rootProject.name = 'shop'\ninclude ':libs:common', ':services:api', ':services:batch'\n",
    "build.gradle": "subprojects { group = 'com.example' }\n",
    "gradlew": "#!/bin/sh\n",
    "gradle/wrapper/gradle-wrapper.properties": "distributionUrl=x\n",
    "libs/common/build.gradle": "plugins { id 'java-library' }\n",
    "libs/common/src/main/java/c/Common.java": "package c;\npublic class Common {}\n",
    "services/api/build.gradle": (
        "plugins {\n  id 'org.springframework.boot' version '3.3.0'\n}\n"
        "dependencies { implementation project(':libs:common') }\n"
    ),
    "services/api/src/main/java/a/Api.java": "package a;\npublic class Api {}\n",
    "services/batch/build.gradle.kts": "dependencies { implementation(projects.libs.common) }\n",
    "services/batch/src/main/kotlin/b/Main.kt": "package b\n\nfun main() {}\n",
}

POM = '<project xmlns="http://maven.apache.org/POM/4.0.0">\n  <modelVersion>4.0.0</modelVersion>\n{}</project>\n'
MAVEN = {
    "pom.xml": POM.format(
        "  <groupId>com.example</groupId><artifactId>shop</artifactId><version>1</version>\n"
        "  <packaging>pom</packaging>\n  <modules><module>libs/common</module><module>services</module></modules>\n"
    ),
    "mvnw": "#!/bin/sh\n",
    "services/pom.xml": POM.format(
        "  <parent><groupId>com.example</groupId><artifactId>shop</artifactId><version>1</version></parent>\n"
        "  <artifactId>services</artifactId><packaging>pom</packaging>\n"
        "  <modules><module>orders</module></modules>\n"
    ),
    "libs/common/pom.xml": POM.format(
        "  <parent><groupId>com.example</groupId><artifactId>shop</artifactId><version>1</version></parent>\n"
        "  <artifactId>shop-common</artifactId>\n"
    ),
    "services/orders/pom.xml": POM.format(
        "  <parent><groupId>com.example</groupId><artifactId>services</artifactId><version>1</version></parent>\n"
        "  <artifactId>orders</artifactId>\n"
        "  <dependencies><dependency><groupId>${project.groupId}</groupId><artifactId>shop-common</artifactId>"
        "</dependency></dependencies>\n"
        "  <build><plugins><plugin><groupId>org.springframework.boot</groupId>"
        "<artifactId>spring-boot-maven-plugin</artifactId></plugin></plugins></build>\n"
    ),
}


def _catalog() -> Any:
    return PluginManager(entry_points=False).backends.catalog()


@pytest.fixture
def gradle(git_repo: Callable[..., GitRepoBuilder]) -> GitRepoBuilder:
    return git_repo(GRADLE)


def test_gradle_init_infers_services_libraries_graph_and_shared_paths(cli: Any, gradle: GitRepoBuilder) -> None:
    result = cli(["init"], cwd=gradle.path)
    assert result.code == 0, result.err
    config = load_config(gradle.path / "modules.yaml", catalog=_catalog())
    kinds = {name: module.kind for name, module in config.modules.items()}
    assert kinds == {"api": "service", "batch": "service", "common": "library"}
    assert config.graph == "gradle"
    assert config.dependencies("api") == ("common",) and config.dependencies("batch") == ("common",)
    assert config.modules["api"].declared == ()  # dependencies stay in the build files
    assert config.shared_paths == ("settings.gradle", "build.gradle", "gradlew", "gradle/**")
    for service in ("api", "batch"):
        for name in ("buildspec.yml", "taskdef.json", "appspec.yml"):
            assert (gradle.path / "services" / service / name).is_file()
    assert not (gradle.path / "libs" / "common" / "buildspec.yml").exists()
    buildspec = (gradle.path / "services" / "api" / "buildspec.yml").read_text()
    assert "./gradlew --no-daemon :services:api:bootJar -x test" in buildspec
    assert '--base "$BASE_IMAGE"' in buildspec and '--tag "$IMAGE_CONTENT_TAG"' in buildspec
    assert (
        "service  api" in result.out and "plugin org.springframework.boot (services/api/build.gradle:2)" in result.out
    )
    assert "main class in src/main/kotlin/b/Main.kt" in result.out
    assert "fill in before the first run:" in result.out and "BASE_IMAGE" in result.out


def test_gradle_init_output_passes_plan_preflight(cli: Any, gradle: GitRepoBuilder) -> None:
    assert cli(["init"], cwd=gradle.path).code == 0
    gradle.commit(message="deployfw init")
    result = cli(["plan", "--all", "--json"], cwd=gradle.path)
    assert result.code == 0, result.err
    plan = result.json()
    assert plan["findings"] == []
    assert [m["name"] for m in plan["modules"]] == ["api", "batch"]
    assert plan["libraries"] == ["common"]


def test_maven_init_with_aggregators_and_plan(cli: Any, git_repo: Callable[..., GitRepoBuilder]) -> None:
    repo = git_repo(MAVEN)
    assert cli(["init"], cwd=repo.path).code == 0
    config = load_config(repo.path / "modules.yaml", catalog=_catalog())
    assert {n: m.kind for n, m in config.modules.items()} == {"orders": "service", "shop-common": "library"}
    assert config.dependencies("orders") == ("shop-common",)
    assert config.shared_paths == ("pom.xml", "services/pom.xml", "mvnw")
    buildspec = (repo.path / "services" / "orders" / "buildspec.yml").read_text()
    assert "./mvnw -B -q -pl services/orders -am package -DskipTests" in buildspec
    repo.commit(message="deployfw init")
    plan = cli(["plan", "--all", "--json"], cwd=repo.path).json()
    assert plan["findings"] == [] and [m["name"] for m in plan["modules"]] == ["orders"]


def test_init_never_overwrites_without_force(cli: Any, gradle: GitRepoBuilder) -> None:
    assert cli(["init"], cwd=gradle.path).code == 0
    config = gradle.path / "modules.yaml"
    buildspec = gradle.path / "services" / "api" / "buildspec.yml"
    config.write_text(config.read_text() + "# my edit\n")
    buildspec.write_text(buildspec.read_text() + "# my edit\n")
    again = cli(["init"], cwd=gradle.path)
    assert again.code == 0
    assert config.read_text().endswith("# my edit\n") and buildspec.read_text().endswith("# my edit\n")
    assert "modules.yaml exists and is kept; it already has every module of the build." in again.out
    assert "kept (exist; --force overwrites): services/api/buildspec.yml" in again.out
    forced = cli(["init", "--force"], cwd=gradle.path)
    assert forced.code == 0
    assert "# my edit" not in config.read_text() and "# my edit" not in buildspec.read_text()


def test_rerun_proposes_new_modules_and_writes_only_their_missing_templates(cli: Any, gradle: GitRepoBuilder) -> None:
    assert cli(["init"], cwd=gradle.path).code == 0
    before = (gradle.path / "modules.yaml").read_text()
    gradle.write(
        {
            "settings.gradle": GRADLE["settings.gradle"] + "include ':services:web'\n",
            "services/web/build.gradle": "apply plugin: 'application'\n",
        }
    )
    result = cli(["init"], cwd=gradle.path)
    assert result.code == 0
    assert (gradle.path / "modules.yaml").read_text() == before
    assert "add these modules to it (or rerun with --force):\n  web:\n    path: services/web\n" in result.out
    assert (gradle.path / "services" / "web" / "buildspec.yml").is_file()
    assert "wrote services/web/buildspec.yml, services/web/taskdef.json, services/web/appspec.yml" in result.out


def test_init_outside_a_build_is_bad_input(cli: Any, tmp_path: Any) -> None:
    result = cli(["init"], cwd=tmp_path)
    assert result.code == 2
    assert result.err.strip().endswith(
        "no settings.gradle, settings.gradle.kts or pom.xml: not a Gradle or Maven build root"
    )
    assert list(tmp_path.iterdir()) == []


def test_init_reports_what_the_build_computes(cli: Any, git_repo: Callable[..., GitRepoBuilder]) -> None:
    files = dict(GRADLE)
    files["services/api/build.gradle"] += "def name = ':libs:' + 'common'\ndependencies { runtimeOnly project(name) }\n"
    repo = git_repo(files)
    result = cli(["init"], cwd=repo.path)
    assert (
        "not followed (computed in the build): services/api/build.gradle:6: "
        "project(...) with a path computed in code: its target is not known"
    ) in result.out
