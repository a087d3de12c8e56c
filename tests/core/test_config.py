"""modules.yaml: the merged model, and every class of config error with file, line and key path.

Errors are asserted as the exact ``FILE:LINE: KEY: message`` strings a user
sees, because the line number and key path are the point: a message without
them sends the user hunting through a long config.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from deployfw.config import Catalog, deep_merge, find_config, load_config
from deployfw.errors import InputError
from deployfw.plugins import PluginManager

FOLDERS = ("libs/common", "svc/a", "svc/b", "svc/c")


@cache
def catalog() -> Catalog:
    """The installed backends' section schemas (built once: the manager imports every built-in)."""
    return PluginManager(entry_points=False).backends.catalog()


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str], Path]:
    """Write ``modules.yaml`` (and the module folders it may name) into a fresh folder."""

    def make(text: str) -> Path:
        for folder in FOLDERS:
            (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        path = tmp_path / "modules.yaml"
        path.write_text(text, encoding="utf-8")
        return path

    return make


@pytest.fixture
def problems(write: Callable[[str], Path]) -> Callable[..., list[str]]:
    """``problems(yaml, env=..., backends=True)`` -> every problem as the user sees it."""

    def check(text: str, *, env: str | None = None, backends: bool = False) -> list[str]:
        with pytest.raises(InputError) as caught:
            load_config(write(text), env=env, catalog=catalog() if backends else None)
        return [str(p) for p in caught.value.problems]

    return check


GOOD = """\
version: 1
project: shop
region: ap-northeast-2
shared_paths: [build.gradle]
defaults:
  build: {backend: local}
  registry: {backend: ecr}
  deploy: {backend: ecs-bluegreen, cluster: test, taskdef: taskdef.json}
modules:
  common: {path: libs/common, kind: library}
  a:
    path: svc/a/
    depends_on: [common]
    deploy: {service: a-svc, appspec: svc/a/appspec.yml}
  b:
    path: ./svc/b
    depends_on: [a]
    build: {backend: codebuild, project: b-build}
    deploy: {backend: ecs-rolling}
environments:
  prod:
    defaults:
      deploy: {cluster: prod}
    modules:
      b:
        deploy: {service: b-prod}
"""


# ---- the model ---------------------------------------------------------------------------------


def test_defaults_merge_under_services_only(write: Callable[[str], Path]) -> None:
    config = load_config(write(GOOD), catalog=catalog())
    a, b, common = config.modules["a"], config.modules["b"], config.modules["common"]
    assert (a.path, b.path) == ("svc/a", "svc/b")  # normalised
    assert a.deploy is not None and b.deploy is not None and b.build is not None
    assert (a.deploy.backend, dict(a.deploy.options)) == (
        "ecs-bluegreen",
        {"cluster": "test", "taskdef": "taskdef.json", "service": "a-svc", "appspec": "svc/a/appspec.yml"},
    )
    assert (b.build.backend, b.build.get("project")) == ("codebuild", "b-build")
    assert (b.deploy.backend, b.deploy.get("cluster")) == ("ecs-rolling", "test")
    assert (common.kind, common.build, common.deploy) == ("library", None, None)
    assert a.files == ("svc/a/appspec.yml", "taskdef.json")
    assert common.files == ()
    assert config.order == ("common", "a", "b")
    assert config.environments == ("prod",)


def test_environment_overlay_is_merged_over_the_document_first(write: Callable[[str], Path]) -> None:
    config = load_config(write(GOOD), env="prod", catalog=catalog())
    a, b = config.modules["a"].deploy, config.modules["b"].deploy
    assert a is not None and b is not None
    assert (a.get("cluster"), a.get("service")) == ("prod", "a-svc")
    assert (b.get("cluster"), b.get("service"), b.backend) == ("prod", "b-prod", "ecs-rolling")
    assert config.env == "prod"


def test_deep_merge_replaces_lists_and_copies() -> None:
    base = {"a": {"x": 1, "l": [1, 2]}, "b": 1}
    over = {"a": {"l": [3]}, "c": {"d": 1}}
    merged = deep_merge(base, over)
    assert merged == {"a": {"x": 1, "l": [3]}, "b": 1, "c": {"d": 1}}
    merged["c"]["d"] = 2
    assert over["c"]["d"] == 1


def test_find_config_walks_up(tmp_path: Path, write: Callable[[str], Path]) -> None:
    path = write(GOOD)
    assert find_config(tmp_path / "svc" / "a") == path
    with pytest.raises(InputError, match=r"no modules.yaml in .* or any parent folder"):
        find_config(Path("/"))


# ---- every error class -------------------------------------------------------------------------


def test_yaml_syntax_error_has_line(problems: Callable[..., list[str]]) -> None:
    found = problems("version: 1\nmodules:\n  a: {path: svc/a\n  b: [\n")
    assert len(found) == 1
    assert found[0].startswith("modules.yaml:")
    assert "YAML syntax error" in found[0]
    line = int(found[0].split(":")[1])
    assert 3 <= line <= 5


def test_tab_indentation_is_a_syntax_error_on_its_line(problems: Callable[..., list[str]]) -> None:
    found = problems("version: 1\nmodules:\n\ta: {path: svc/a}\n")
    assert found[0].startswith("modules.yaml:3: YAML syntax error")


def test_unknown_keys_at_every_level(problems: Callable[..., list[str]]) -> None:
    text = GOOD.replace("project: shop", "project: shop\ncolour: blue")
    text = text.replace("  a:\n    path: svc/a/", "  a:\n    path: svc/a/\n    owner: me")
    text = text.replace("deploy: {backend: ecs-rolling}", "deploy: {backend: ecs-rolling, clustr: x}")
    text = text.replace("registry: {backend: ecr}", "registry: {backend: ecr}\n  test: {}")
    found = problems(text)
    # the lists of valid keys grow with the format, so only their start is pinned here
    assert [p.split("; valid keys: ")[0] for p in found] == [
        "modules.yaml:3: colour: unknown key",
        "modules.yaml:9: defaults.test: unknown key",
        "modules.yaml:15: modules.a.owner: unknown key",
    ]
    assert "defaults, environments, execution_mode, graph, modules, project" in found[0]
    assert found[1].endswith("valid keys: build, deploy, registry")
    assert "build, depends_on, deploy, execution_mode, kind, path, registry" in found[2]
    # a section's keys belong to its backend: checked when backends are known (plan, run)
    found = problems(
        text.replace("colour: blue\n", "").replace("  test: {}\n", "").replace("    owner: me\n", ""), backends=True
    )
    assert len(found) == 1
    assert found[0].startswith("modules.yaml:19: modules.b.deploy.clustr: unknown key; valid keys: cluster,")
    assert found[0].endswith("(deploy backend 'ecs-rolling')")


def test_unknown_key_in_defaults_section_is_located_in_defaults(problems: Callable[..., list[str]]) -> None:
    found = problems(GOOD.replace("cluster: test,", "clustr: test,"), backends=True)
    assert found[0].startswith("modules.yaml:8: defaults.deploy.clustr: unknown key;")


def test_wrong_types(problems: Callable[..., list[str]]) -> None:
    text = (
        GOOD.replace("version: 1", "version: 2")
        .replace("shared_paths: [build.gradle]", "shared_paths: build.gradle")
        .replace("depends_on: [common]", "depends_on: common")
        .replace("kind: library", "kind: lib")
    )
    assert problems(text) == [
        "modules.yaml:1: version: must be 1, got 2",
        "modules.yaml:4: shared_paths: must be a list, got string 'build.gradle'",
        "modules.yaml:10: modules.common.kind: unknown value 'lib'; expected one of: service, library",
        "modules.yaml:13: modules.a.depends_on: must be a list, got string 'common'",
    ]


def test_missing_required_keys(problems: Callable[..., list[str]]) -> None:
    assert problems("project: shop\n") == [
        "modules.yaml: missing required key 'modules'",
        "modules.yaml: missing required key 'version'",
    ]
    assert problems("version: 1\nmodules:\n  a: {kind: library}\n") == [
        "modules.yaml:3: modules.a: missing required key 'path'"
    ]


def test_not_a_mapping(problems: Callable[..., list[str]]) -> None:
    assert problems("- a\n- b\n") == ["modules.yaml:1: must be a mapping with version and modules"]


def test_unknown_dependency_lists_modules(problems: Callable[..., list[str]]) -> None:
    assert problems(GOOD.replace("depends_on: [a]", "depends_on: [a, comon]")) == [
        "modules.yaml:17: modules.b.depends_on[1]: unknown module 'comon'; modules: a, b, common"
    ]


def test_dependency_cycle_shows_the_cycle(problems: Callable[..., list[str]]) -> None:
    text = GOOD.replace("kind: library}", "kind: library, depends_on: [b]}")
    assert problems(text) == ["modules.yaml:13: modules.a.depends_on: dependency cycle: a -> common -> b -> a"]


def test_self_dependency(problems: Callable[..., list[str]]) -> None:
    assert problems(GOOD.replace("depends_on: [a]", "depends_on: [b]")) == [
        "modules.yaml:17: modules.b.depends_on[0]: a module cannot depend on itself"
    ]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("../x", "'../x' escapes the repository"),
        ("svc/../../x", "'svc/../../x' escapes the repository"),
        ("..", "'..' escapes the repository"),
        ("/srv/a", "'/srv/a' must be a path relative to the repository root"),
        ("svc\\\\a", "'svc\\\\a' must be a path relative to the repository root"),
        (".", "a module cannot own the whole repository root"),
        ("svc/nope", "folder 'svc/nope' does not exist"),
    ],
)
def test_module_path_must_stay_inside(problems: Callable[..., list[str]], path: str, message: str) -> None:
    found = problems(GOOD.replace("path: svc/a/", f'path: "{path}"'))
    assert found == [f"modules.yaml:12: modules.a.path: {message}"]


def test_same_path_for_two_modules(problems: Callable[..., list[str]]) -> None:
    assert problems(GOOD.replace("path: ./svc/b", "path: svc/a")) == [
        "modules.yaml:16: modules.b.path: same path 'svc/a' as module 'a'"
    ]


def test_nested_paths_are_allowed(write: Callable[[str], Path], tmp_path: Path) -> None:
    (tmp_path / "svc/a/inner").mkdir(parents=True)
    text = GOOD.replace("environments:", "  inner: {path: svc/a/inner}\nenvironments:")
    assert load_config(write(text)).modules["inner"].path == "svc/a/inner"


def test_duplicate_module_name(problems: Callable[..., list[str]]) -> None:
    text = GOOD.replace("environments:", "  a: {path: svc/c}\nenvironments:")
    assert problems(text) == ["modules.yaml:20: modules.a: duplicate key (first defined on line 11)"]


def test_unknown_backend_lists_the_valid_ones(problems: Callable[..., list[str]]) -> None:
    found = problems(GOOD.replace("backend: codebuild", "backend: codebuld"), backends=True)
    valid = ", ".join(sorted(catalog()["build"]))
    assert "codebuild, " in valid
    assert found == [f"modules.yaml:18: modules.b.build.backend: unknown build backend 'codebuld'; valid: {valid}"]
    found = problems(GOOD.replace("registry: {backend: ecr}", "registry: {backend: gcr}"), backends=True)
    assert found == ["modules.yaml:7: defaults.registry.backend: unknown registry backend 'gcr'; valid: ecr"]


def test_missing_backend_when_backends_are_checked(problems: Callable[..., list[str]]) -> None:
    found = problems(GOOD.replace("  registry: {backend: ecr}\n", ""), backends=True)
    assert found == [
        "modules.yaml:10: modules.a.registry: no registry backend; set `backend` here or in defaults.registry",
        "modules.yaml:14: modules.b.registry: no registry backend; set `backend` here or in defaults.registry",
    ]


def test_library_with_build_section(problems: Callable[..., list[str]]) -> None:
    text = GOOD.replace("kind: library}", "kind: library, build: {backend: local}}")
    assert problems(text) == [
        "modules.yaml:10: modules.common.build: a library is never built or deployed; remove this section"
    ]


def test_unknown_environment(problems: Callable[..., list[str]]) -> None:
    assert problems(GOOD, env="staging") == [
        "modules.yaml:20: environments: unknown environment 'staging'; known: prod"
    ]
    no_envs = GOOD.split("environments:")[0]
    assert problems(no_envs, env="prod") == [
        "modules.yaml: environments: unknown environment 'prod'; known: none defined"
    ]


def test_overlay_errors_are_located_in_the_overlay(problems: Callable[..., list[str]]) -> None:
    text = GOOD.replace("deploy: {service: b-prod}", "deploy: {service: b-prod}\n        colour: red")
    assert problems(text) == [
        "modules.yaml:27: environments.prod.modules.b.colour: unknown key; valid keys: build, depends_on, deploy, "
        "execution_mode, kind, path, registry"
    ]
    # a bad backend introduced only by the overlay is reported at the overlay's line
    text = GOOD.replace("deploy: {service: b-prod}", "deploy: {service: b-prod, backend: ecs-magic}")
    found = problems(text, env="prod", backends=True)
    assert len(found) == 1
    assert found[0].startswith("modules.yaml:26: modules.b.deploy.backend: unknown deploy backend 'ecs-magic'")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        load_config(tmp_path / "modules.yaml")
    assert [str(p) for p in caught.value.problems] == ["modules.yaml: file not found"]


def test_every_problem_is_listed_at_once(problems: Callable[..., list[str]]) -> None:
    """Semantic problems of different modules and classes come out together, sorted by line."""
    text = (
        GOOD.replace("kind: library}", "kind: library, build: {backend: local}}")
        .replace("depends_on: [common]", "depends_on: [common, ghost]")
        .replace("path: ./svc/b", "path: ../b")
        .replace("backend: codebuild", "backend: jenkinz")
        .replace("environments:", "  c: {path: /abs}\n  a: {path: svc/c}\nenvironments:")
    )
    found = problems(text, backends=True)
    assert [p.split(":")[1] for p in found] == sorted((p.split(":")[1] for p in found), key=int)
    joined = "\n".join(found)
    for expected in (
        "modules.yaml:10: modules.common.build: a library is never built",
        "modules.yaml:13: modules.a.depends_on[1]: unknown module 'ghost'",
        "modules.yaml:16: modules.b.path: '../b' escapes the repository",
        "modules.yaml:18: modules.b.build.backend: unknown build backend 'jenkinz'",
        "modules.yaml:20: modules.c.path: '/abs' must be a path relative",
        "modules.yaml:21: modules.a: duplicate key (first defined on line 11)",
    ):
        assert expected in joined
    assert len(found) == 6


# ---- through the CLI ---------------------------------------------------------------------------


def test_cli_prints_one_line_per_problem_and_exits_2(write: Callable[[str], Path], cli: Any, tmp_path: Path) -> None:
    text = GOOD.replace("depends_on: [a]", "depends_on: [a, ghost]").replace("path: svc/a/", "path: ../a")
    write(text)
    result = cli(["detect", "--all"], cwd=tmp_path / "svc")
    assert result.code == 2
    assert result.out == ""
    assert result.errors == [
        "deployfw: error: modules.yaml:12: modules.a.path: '../a' escapes the repository",
        "deployfw: error: modules.yaml:17: modules.b.depends_on[1]: unknown module 'ghost'; modules: a, b, common",
    ]


def test_cli_unknown_env_and_missing_config(
    write: Callable[[str], Path], cli: Any, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    write(GOOD)
    result = cli(["-e", "qa", "detect", "--all"], cwd=tmp_path)
    assert (result.code, result.errors) == (
        2,
        ["deployfw: error: modules.yaml:20: environments: unknown environment 'qa'; known: prod"],
    )
    result = cli(["-c", str(tmp_path / "nope.yaml"), "detect", "--all"], cwd=tmp_path)
    assert (result.code, result.errors) == (2, ["deployfw: error: nope.yaml: file not found"])
    empty = tmp_path_factory.mktemp("empty")
    result = cli(["detect", "--all"], cwd=empty)
    assert result.code == 2
    assert "no modules.yaml in" in result.err


def test_cli_yaml_syntax_error(write: Callable[[str], Path], cli: Any, tmp_path: Path) -> None:
    write("version: 1\nmodules: [\n")
    result = cli(["detect", "--all"], cwd=tmp_path)
    assert result.code == 2
    assert len(result.errors) == 1
    assert result.errors[0].startswith("deployfw: error: modules.yaml:3: YAML syntax error")


def test_module_folder_reached_through_a_symlink(write: Callable[[str], Path], tmp_path: Path) -> None:
    """A symlink inside the repository is fine; one pointing outside it is an error at the module's path line."""
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    write(GOOD)
    (tmp_path / "svc" / "inside").symlink_to(tmp_path / "svc" / "c")
    (tmp_path / "svc" / "away").symlink_to(outside)
    (tmp_path / "svc" / "afile").write_text("x", encoding="utf-8")
    config = load_config(write(GOOD.replace("path: ./svc/b", "path: svc/inside")))
    assert config.modules["b"].path == "svc/inside"
    with pytest.raises(InputError) as caught:
        load_config(write(GOOD.replace("path: ./svc/b", "path: svc/away").replace("path: svc/a/", "path: svc/afile")))
    assert [str(p) for p in caught.value.problems] == [
        "modules.yaml:12: modules.a.path: folder 'svc/afile' does not exist",
        "modules.yaml:16: modules.b.path: 'svc/away' leaves the repository through a symlink",
    ]


def test_type_errors_do_not_hide_dependency_and_path_errors(problems: Callable[..., list[str]]) -> None:
    """A badly typed value is reported together with the semantic mistakes elsewhere, in one run."""
    text = (
        GOOD.replace("kind: library}", "kind: libary}")
        .replace("depends_on: [a]", "depends_on: [a, comon]")
        .replace("path: svc/a/", 'path: "../a"')
    )
    assert problems(text) == [
        "modules.yaml:10: modules.common.kind: unknown value 'libary'; expected one of: service, library",
        "modules.yaml:12: modules.a.path: '../a' escapes the repository",
        "modules.yaml:17: modules.b.depends_on[1]: unknown module 'comon'; modules: a, b, common",
    ]
