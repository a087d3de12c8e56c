"""The Maven reader on generated reactors: modules, sibling dependencies, parents, properties."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from deployfw.buildgraph import module_graph
from deployfw.errors import InputError

Tree = Callable[[Mapping[str, str]], Path]
NS = 'xmlns="http://maven.apache.org/POM/4.0.0"'


def pom(body: str) -> str:
    head = f'<?xml version="1.0" encoding="UTF-8"?>\n<project {NS}>\n'
    return f"{head}  <modelVersion>4.0.0</modelVersion>\n{body}</project>\n"


def parent(artifact: str = "shop", relative: str | None = None) -> str:
    rel = f"<relativePath>{relative}</relativePath>" if relative is not None else ""
    coordinates = f"<groupId>com.example</groupId><artifactId>{artifact}</artifactId><version>1</version>"
    return f"  <parent>{coordinates}{rel}</parent>\n"


def dependency(group: str, artifact: str, extra: str = "") -> str:
    return (
        "    <dependency>\n"
        f"      <groupId>{group}</groupId>\n      <artifactId>{artifact}</artifactId>{extra}\n"
        "    </dependency>\n"
    )


ROOT = pom(
    "  <groupId>com.example</groupId>\n  <artifactId>shop</artifactId>\n  <version>1</version>\n"
    "  <packaging>pom</packaging>\n"
    "  <modules>\n    <module>libs/common</module>\n    <module>services</module>\n  </modules>\n"
)
SERVICES = pom(
    parent(relative="../pom.xml") + "  <artifactId>services</artifactId>\n  <packaging>pom</packaging>\n"
    "  <modules><module>api</module><module>web</module></modules>\n"
)
COMMON = pom(parent(relative="../../pom.xml") + "  <artifactId>common</artifactId>\n")
MODULES = {"common": "libs/common", "api": "services/api", "web": "services/web"}


def edges(root: Path, modules: Mapping[str, str] = MODULES) -> dict[str, dict[str, str]]:
    return {k: dict(v) for k, v in module_graph("maven", root, modules).edges.items()}


def reactor(tree: Tree, api: str, web: str | None = None, **more: str) -> Path:
    files = {
        "pom.xml": ROOT,
        "services/pom.xml": SERVICES,
        "libs/common/pom.xml": COMMON,
        "services/api/pom.xml": api,
        "services/web/pom.xml": web or pom(parent("services") + "  <artifactId>web</artifactId>\n"),
    }
    files.update(more)
    return tree(files)


def test_sibling_dependency_by_group_and_artifact_with_the_pom_line(tree: Tree) -> None:
    api = pom(
        parent("services")
        + "  <artifactId>api</artifactId>\n  <dependencies>\n"
        + dependency("com.example", "common")
        + dependency("org.springframework", "spring-core")
        + "  </dependencies>\n"
    )
    root = reactor(tree, api)
    # line 7 is the <dependency> element; the inherited groupId makes common com.example:common
    assert edges(root) == {"api": {"common": "services/api/pom.xml:7"}}


@pytest.mark.parametrize("group", ["${project.groupId}", "${project.parent.groupId}", "${shop.group}"])
def test_properties_in_coordinates_are_resolved(tree: Tree, group: str) -> None:
    api = pom(
        parent("services")
        + "  <artifactId>api</artifactId>\n  <properties><shop.group>com.example</shop.group></properties>\n"
        + "  <dependencies>\n"
        + dependency(group, "common")
        + "  </dependencies>\n"
    )
    assert edges(reactor(tree, api)) == {"api": {"common": "services/api/pom.xml:8"}}


def test_property_from_the_root_pom_is_inherited(tree: Tree) -> None:
    root_pom = ROOT.replace(
        "<packaging>pom</packaging>", "<packaging>pom</packaging>\n  <properties><lib>common</lib></properties>"
    )
    api = pom(
        parent("services")
        + "  <artifactId>api</artifactId>\n  <dependencies>\n"
        + dependency("com.example", "${lib}")
        + "  </dependencies>\n"
    )
    root = reactor(tree, api, **{"pom.xml": root_pom})
    assert edges(root) == {"api": {"common": "services/api/pom.xml:7"}}


def test_unresolvable_coordinates_are_a_note(tree: Tree) -> None:
    api = pom(
        parent("services")
        + "  <artifactId>api</artifactId>\n  <dependencies>\n"
        + dependency("com.example", "${nowhere}")
        + "  </dependencies>\n"
    )
    graph = module_graph("maven", reactor(tree, api), MODULES)
    assert graph.edges == {}
    assert [str(n) for n in graph.notes] == [
        "services/api/pom.xml:7: dependency com.example:${nowhere} is not resolved statically"
    ]
    assert graph.notes[0].module == "api"


def test_profile_modules_and_dependencies_count(tree: Tree) -> None:
    root_pom = ROOT.replace(
        "  <modules>\n    <module>libs/common</module>\n    <module>services</module>\n  </modules>\n",
        "  <modules><module>services</module></modules>\n"
        "  <profiles><profile><id>all</id><modules><module>libs/common</module></modules></profile></profiles>\n",
    )
    api = pom(
        parent("services")
        + "  <artifactId>api</artifactId>\n  <profiles><profile><id>x</id>\n  <dependencies>\n"
        + dependency("com.example", "common")
        + "  </dependencies></profile></profiles>\n"
    )
    assert edges(reactor(tree, api, **{"pom.xml": root_pom})) == {"api": {"common": "services/api/pom.xml:8"}}


def test_imported_bom_and_plugin_dependencies_are_references_plain_management_is_not(tree: Tree) -> None:
    web = pom(
        parent("services")
        + "  <artifactId>web</artifactId>\n  <dependencyManagement><dependencies>\n"
        + dependency("com.example", "api", "<type>pom</type><scope>import</scope>")
        + dependency("com.example", "common")
        + "  </dependencies></dependencyManagement>\n"
    )
    api = pom(
        parent("services")
        + "  <artifactId>api</artifactId>\n  <build><plugins><plugin>\n"
        + "    <groupId>org.x</groupId><artifactId>gen</artifactId>\n  <dependencies>\n"
        + dependency("com.example", "common")
        + "  </dependencies></plugin></plugins></build>\n"
    )
    assert edges(reactor(tree, api, web)) == {
        "api": {"common": "services/api/pom.xml:9"},
        "web": {"api": "services/web/pom.xml:7"},
    }


def test_parent_pom_in_the_reactor_is_a_dependency(tree: Tree) -> None:
    files = {
        "pom.xml": pom(
            "  <groupId>com.example</groupId><artifactId>shop</artifactId><version>1</version>\n"
            "  <packaging>pom</packaging>\n"
            "  <modules><module>parent</module><module>services/api</module></modules>\n"
        ),
        "parent/pom.xml": pom(
            parent(relative="../pom.xml") + "  <artifactId>shop-parent</artifactId><packaging>pom</packaging>\n"
        ),
        "services/api/pom.xml": pom(parent("shop-parent", "../../parent/pom.xml") + "  <artifactId>api</artifactId>\n"),
    }
    root = tree(files)
    assert edges(root, {"parent": "parent", "api": "services/api"}) == {"api": {"parent": "services/api/pom.xml:4"}}


def test_module_given_as_a_pom_file_path(tree: Tree) -> None:
    root_pom = ROOT.replace("<module>libs/common</module>", "<module>libs/common/pom.xml</module>")
    api = pom(
        parent("services")
        + "  <artifactId>api</artifactId>\n  <dependencies>\n"
        + dependency("com.example", "common")
        + "  </dependencies>\n"
    )
    assert edges(reactor(tree, api, **{"pom.xml": root_pom})) == {"api": {"common": "services/api/pom.xml:7"}}


def test_malformed_pom_is_bad_input_with_file_and_line(tree: Tree) -> None:
    api = pom(parent("services") + "  <artifactId>api</artifactId>\n  <dependencies>\n") + "\n"  # never closed
    with pytest.raises(InputError) as info:
        module_graph("maven", reactor(tree, api), MODULES)
    (problem,) = info.value.problems
    assert problem.file == "services/api/pom.xml"
    assert problem.line is not None and problem.line >= 5
    assert "not a readable POM" in problem.message


def test_entities_are_not_expanded(tree: Tree, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("com.example", encoding="utf-8")
    api = (
        f'<?xml version="1.0"?>\n<!DOCTYPE project [<!ENTITY g SYSTEM "file://{secret}">]>\n<project {NS}>\n'
        + parent("services")
        + "  <artifactId>api</artifactId>\n  <dependencies>\n"
        + dependency("&g;", "common")
        + "  </dependencies>\n</project>\n"
    )
    assert edges(reactor(tree, api)) == {}


def test_applications_spring_boot_plugin_and_aggregators(tree: Tree) -> None:
    api = pom(
        parent("services")
        + "  <artifactId>api</artifactId>\n  <build><plugins>\n    <plugin><groupId>org.springframework.boot</groupId>"
        + "<artifactId>spring-boot-maven-plugin</artifactId></plugin>\n  </plugins></build>\n"
    )
    graph = module_graph("maven", reactor(tree, api), MODULES)
    projects = {p.dir: p for b in graph.builds for p in b.projects.values()}
    assert projects["services/api"].application == "plugin spring-boot-maven-plugin (services/api/pom.xml:7)"
    assert projects["libs/common"].application is None
    assert (projects[""].aggregator, projects["services"].aggregator, projects["libs/common"].aggregator) == (
        True,
        True,
        False,
    )
    assert projects["services/api"].name == "com.example:api"
