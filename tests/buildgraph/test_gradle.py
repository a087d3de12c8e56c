"""The Gradle reader on generated builds: one test per construct of settings and build scripts.

Each build is written in the Groovy DSL and, where the syntax differs, in the Kotlin
DSL too; the answer is the module graph deployfw derives (module -> dependency ->
"file:line"), so a wrong line, a missed reference or an invented one all fail.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from deployfw.buildgraph import module_graph
from deployfw.buildgraph.gradle import accessor

Tree = Callable[[Mapping[str, str]], Path]


def edges(root: Path, modules: Mapping[str, str]) -> dict[str, dict[str, str]]:
    return {k: dict(v) for k, v in module_graph("gradle", root, modules).edges.items()}


def notes(root: Path, modules: Mapping[str, str]) -> list[str]:
    return [str(n) for n in module_graph("gradle", root, modules).notes]


MODULES = {"common": "libs/common", "api": "services/api", "web": "services/web"}


@pytest.mark.parametrize(
    ("settings", "build_file", "build"),
    [
        (
            "settings.gradle",
            "build.gradle",
            "plugins { id 'java' }\n\ndependencies {\n    implementation project(':libs:common')\n}\n",
        ),
        (
            "settings.gradle.kts",
            "build.gradle.kts",
            'plugins { java }\n\ndependencies {\n    implementation(project(":libs:common"))\n}\n',
        ),
    ],
)
def test_include_and_project_dependency_with_its_line(tree: Tree, settings: str, build_file: str, build: str) -> None:
    include = (
        "include 'libs:common', ':services:api'\n"
        if settings.endswith("gradle")
        else ('include("libs:common", ":services:api")\n')
    )
    root = tree({settings: include, f"services/api/{build_file}": build, f"libs/common/{build_file}": ""})
    assert edges(root, {"common": "libs/common", "api": "services/api"}) == {
        "api": {"common": f"services/api/{build_file}:4"}
    }


@pytest.mark.parametrize(
    "declaration",
    [
        "api project(':libs:common')",
        "testImplementation project(':libs:common')",
        "compileOnly(project(':libs:common'))",
        "runtimeOnly project(path: ':libs:common', configuration: 'default')",
        "myCustomConfiguration project(':libs:common')",
        "implementation(project(':libs:common')) { exclude group: 'x' }",
        'implementation project(":libs:common")',
    ],
)
def test_project_in_any_configuration_groovy(tree: Tree, declaration: str) -> None:
    root = tree(
        {
            "settings.gradle": "include ':libs:common', ':services:api'\n",
            "services/api/build.gradle": f"dependencies {{\n  {declaration}\n}}\n",
        }
    )
    assert edges(root, MODULES) == {"api": {"common": "services/api/build.gradle:2"}}


@pytest.mark.parametrize(
    "declaration",
    [
        'api(project(":libs:common"))',
        'testImplementation(project(path = ":libs:common", configuration = "default"))',
        'add("custom", project(":libs:common"))',
        "implementation(projects.libs.common)",
    ],
)
def test_project_in_any_configuration_kotlin(tree: Tree, declaration: str) -> None:
    root = tree(
        {
            "settings.gradle.kts": 'include(":libs:common", ":services:api")\n',
            "services/api/build.gradle.kts": f"dependencies {{\n  {declaration}\n}}\n",
        }
    )
    assert edges(root, MODULES) == {"api": {"common": "services/api/build.gradle.kts:2"}}


def test_typesafe_accessors_follow_gradles_camel_case(tree: Tree) -> None:
    assert accessor(":libs:shared-utils") == "projects.libs.sharedUtils"
    assert accessor(":a_b:c") == "projects.aB.c"
    root = tree(
        {
            "settings.gradle": "include ':libs:shared-utils', ':services:api'\n",
            "services/api/build.gradle": "dependencies {\n  implementation projects.libs.sharedUtils\n}\n",
        }
    )
    assert edges(root, {"shared": "libs/shared-utils", "api": "services/api"}) == {
        "api": {"shared": "services/api/build.gradle:2"}
    }


def test_unknown_accessor_is_a_note_not_an_edge(tree: Tree) -> None:
    root = tree(
        {
            "settings.gradle": "include ':libs:common', ':services:api'\n",
            "services/api/build.gradle": "dependencies { implementation projects.libs.nothere }\n",
        }
    )
    assert edges(root, MODULES) == {}
    assert "services/api/build.gradle:1: projects.libs.nothere: no project of this build has that accessor" in notes(
        root, MODULES
    )


@pytest.mark.parametrize(
    "override",
    [
        "project(':api').projectDir = file('services/api')",
        "project(':api').projectDir = new File(settingsDir, 'services/api')",
        "project(':api').projectDir = new File(rootDir, 'services/api')",
    ],
)
def test_project_dir_overrides(tree: Tree, override: str) -> None:
    root = tree(
        {
            "settings.gradle": (
                f"include ':common', ':api'\nproject(':common').projectDir = file('libs/common')\n{override}\n"
            ),
            "services/api/build.gradle": "dependencies { implementation project(':common') }\n",
        }
    )
    assert edges(root, MODULES) == {"api": {"common": "services/api/build.gradle:1"}}


def test_project_dir_override_in_kotlin_and_nested_children_follow_their_parent(tree: Tree) -> None:
    root = tree(
        {
            "settings.gradle.kts": (
                'include(":backend", ":backend:api", ":shared")\n'
                'project(":backend").projectDir = file("services")\n'
                'project(":shared").projectDir = file("libs/common")\n'
            ),
            # :backend:api lives in services/api: the parent moved, the child's default follows it
            "services/api/build.gradle.kts": 'dependencies { implementation(project(":shared")) }\n',
        }
    )
    assert edges(root, MODULES) == {"api": {"common": "services/api/build.gradle.kts:1"}}


def test_build_file_name_override(tree: Tree) -> None:
    root = tree(
        {
            "settings.gradle": (
                "include ':libs:common', ':services:api'\nproject(':services:api').buildFileName = 'api.gradle'\n"
            ),
            "services/api/api.gradle": "dependencies { implementation project(':libs:common') }\n",
            "services/api/build.gradle": "// not the build file of :services:api\n",
        }
    )
    assert edges(root, MODULES) == {"api": {"common": "services/api/api.gradle:1"}}


def test_include_flat_projects_live_beside_the_root(tree: Tree) -> None:
    root = tree(
        {
            "build/settings.gradle": "includeFlat 'common', 'api'\n",
            "api/build.gradle": "dependencies { implementation project(':common') }\n",
        }
    )
    # modules.yaml sits in the repository root; the Gradle build in build/
    assert edges(root, {"common": "common", "api": "api", "tooling": "build"}) == {
        "api": {"common": "api/build.gradle:1"}
    }


def test_nested_projects_and_a_project_no_module_owns_passes_its_dependencies_through(tree: Tree) -> None:
    root = tree(
        {
            "settings.gradle": "include ':services:api', ':platform', ':libs:common'\n",
            "services/api/build.gradle": "dependencies {\n  implementation platform(project(':platform'))\n}\n",
            "platform/build.gradle": "dependencies { api project(':libs:common') }\n",
        }
    )
    assert edges(root, {"common": "libs/common", "api": "services/api"}) == {
        "api": {"common": "services/api/build.gradle:2"}
    }


def test_a_module_holding_several_projects_owns_their_references(tree: Tree) -> None:
    root = tree(
        {
            "settings.gradle": "include ':services:api:app', ':services:api:core', ':libs:common'\n",
            "services/api/app/build.gradle": "dependencies { implementation project(':services:api:core') }\n",
            "services/api/core/build.gradle": "dependencies {\n\n  implementation project(':libs:common')\n}\n",
        }
    )
    assert edges(root, {"common": "libs/common", "api": "services/api"}) == {
        "api": {"common": "services/api/core/build.gradle:3"}
    }


def test_root_script_blocks_apply_to_the_projects_they_configure(tree: Tree) -> None:
    root = tree(
        {
            "settings.gradle": "include ':libs:common', ':services:api', ':services:web'\n",
            "build.gradle": (
                "subprojects {\n"
                "    group = 'com.example'\n"
                "}\n"
                "project(':services:web') {\n"
                "    dependencies { implementation project(':libs:common') }\n"
                "}\n"
            ),
        }
    )
    assert edges(root, MODULES) == {"web": {"common": "build.gradle:5"}}


def test_subprojects_block_dependency_reaches_every_subproject_but_the_target(tree: Tree) -> None:
    root = tree(
        {
            "settings.gradle": "include ':libs:common', ':services:api', ':services:web'\n",
            "build.gradle": "subprojects {\n  dependencies { implementation project(':libs:common') }\n}\n",
        }
    )
    assert edges(root, MODULES) == {
        "api": {"common": "build.gradle:2"},
        "web": {"common": "build.gradle:2"},
    }


def test_composite_build_substitutes_coordinates_with_the_included_project(tree: Tree) -> None:
    root = tree(
        {
            "settings.gradle": "include ':services:api'\nincludeBuild 'libs'\n",
            "services/api/build.gradle": "dependencies {\n  implementation 'com.example:common:1.0'\n}\n",
            "libs/settings.gradle": "rootProject.name = 'libs'\ninclude 'common'\n",
            "libs/build.gradle": "subprojects { group = 'com.example' }\n",
            "libs/common/build.gradle": "plugins { id 'java-library' }\n",
        }
    )
    assert edges(root, {"common": "libs/common", "api": "services/api"}) == {
        "api": {"common": "services/api/build.gradle:2"}
    }


def test_composite_build_in_kotlin_with_map_notation_and_own_group(tree: Tree) -> None:
    root = tree(
        {
            "settings.gradle.kts": 'include(":services:api")\nincludeBuild("libs/common")\n',
            "services/api/build.gradle.kts": (
                'dependencies {\n  implementation(group = "org.acme", name = "common")\n}\n'
            ),
            "libs/common/settings.gradle.kts": 'rootProject.name = "common"\n',
            "libs/common/build.gradle.kts": 'group = "org.acme"\n',
        }
    )
    assert edges(root, {"common": "libs/common", "api": "services/api"}) == {
        "api": {"common": "services/api/build.gradle.kts:2"}
    }


def test_external_coordinates_that_no_included_build_offers_are_no_edge(tree: Tree) -> None:
    root = tree(
        {
            "settings.gradle": "include ':libs:common', ':services:api'\n",
            "build.gradle": "subprojects { group = 'com.example' }\n",
            "services/api/build.gradle": "dependencies { implementation 'org.springframework:spring-core:6.1.0' }\n",
        }
    )
    assert edges(root, MODULES) == {}


def test_computed_project_paths_and_includes_are_notes(tree: Tree) -> None:
    root = tree(
        {
            "settings.gradle": "include ':libs:common', ':services:api'\nfile('extra').eachDir { include it.name }\n",
            "services/api/build.gradle": (
                "def lib = ':libs:' + 'common'\n"
                "dependencies {\n"
                "  implementation project(lib)\n"
                "  implementation project(\":libs:${'common'}\")\n"
                "}\n"
            ),
        }
    )
    assert edges(root, MODULES) == {}
    found = notes(root, MODULES)
    assert "settings.gradle:2: include with an argument computed in code: the projects it adds are not known" in found
    assert "services/api/build.gradle:3: project(...) with a path computed in code: its target is not known" in found
    assert "services/api/build.gradle:4: project(...) with a path computed in code: its target is not known" in found
    graph = module_graph("gradle", root, MODULES)
    assert {n.module for n in graph.notes if n.file.startswith("services/api")} == {"api"}


def test_convention_plugin_from_build_logic_is_a_note(tree: Tree) -> None:
    root = tree(
        {
            "settings.gradle": (
                "pluginManagement { includeBuild 'build-logic' }\ninclude ':libs:common', ':services:api'\n"
            ),
            "build-logic/settings.gradle": "rootProject.name = 'build-logic'\n",
            "build-logic/build.gradle": "plugins { id 'groovy-gradle-plugin' }\n",
            "build-logic/src/main/groovy/shop.service.gradle": (
                "dependencies { implementation project(':libs:common') }\n"
            ),
            "services/api/build.gradle": "plugins {\n  id 'shop.service'\n  id 'java'\n}\n",
        }
    )
    assert edges(root, MODULES) == {}
    assert notes(root, MODULES) == [
        "services/api/build.gradle:2: convention plugin 'shop.service' "
        "(build-logic/src/main/groovy/shop.service.gradle): the dependencies it adds are not read",
        "services/web: no gradle project in this module's folder: no build-graph dependencies",
    ]


def test_buildsrc_convention_plugin_in_kotlin_is_a_note(tree: Tree) -> None:
    root = tree(
        {
            "settings.gradle.kts": 'include(":libs:common", ":services:api", ":services:web")\n',
            "buildSrc/build.gradle.kts": "plugins { `kotlin-dsl` }\n",
            "buildSrc/src/main/kotlin/shop-service.gradle.kts": "plugins { java }\n",
            "services/api/build.gradle.kts": 'plugins { id("shop-service") }\n',
        }
    )
    assert notes(root, MODULES) == [
        "services/api/build.gradle.kts:1: convention plugin 'shop-service' "
        "(buildSrc/src/main/kotlin/shop-service.gradle.kts): the dependencies it adds are not read"
    ]


def test_reference_to_a_project_not_included_is_a_note(tree: Tree) -> None:
    root = tree(
        {
            "settings.gradle": "include ':services:api'\n",
            "services/api/build.gradle": "dependencies { implementation project(':libs:gone') }\n",
        }
    )
    assert edges(root, MODULES) == {}
    assert "services/api/build.gradle:1: project ':libs:gone' is not included in settings.gradle" in notes(
        root, MODULES
    )


def test_applications_are_recognised_for_init(tree: Tree) -> None:
    root = tree(
        {
            "settings.gradle": "include 'boot', 'app', 'kts', 'main', 'lib'\n",
            "boot/build.gradle": "plugins {\n  id 'org.springframework.boot' version '3.3.0'\n}\n",
            "app/build.gradle": "apply plugin: 'application'\n",
            "kts/build.gradle.kts": "plugins {\n    application\n}\n",
            "main/build.gradle": "springBoot {\n  mainClass = 'x.Main'\n}\n",
            "lib/build.gradle": "plugins { id 'java-library' }\n",
        }
    )
    graph = module_graph("gradle", root, {n: n for n in ("boot", "app", "kts", "main", "lib")})
    (build,) = graph.builds
    apps = {p.dir: p.application for p in build.projects.values()}
    assert apps == {
        "": None,
        "boot": "plugin org.springframework.boot (boot/build.gradle:2)",
        "app": "plugin application (app/build.gradle:1)",
        "kts": "plugin application (kts/build.gradle.kts:2)",
        "main": "mainClass set (main/build.gradle:2)",
        "lib": None,
    }
