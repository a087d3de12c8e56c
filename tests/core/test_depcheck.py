"""Plan warnings: a buildspec reading another module's folder, and what the build graph could not read."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from deployfw.config import load_config
from deployfw.depcheck import graph_warnings, plan_warnings, undeclared_reads
from deployfw.testing.gitrepo import GitRepoBuilder

REPO_ROOT = Path(__file__).resolve().parents[2]

CONFIG = """\
version: 1
defaults:
  build: {backend: local}
  registry: {backend: ecr}
  deploy: {backend: ecs-rolling, cluster: c}
modules:
  core: {path: libs/core, kind: library}
  util: {path: libs/util, kind: library, depends_on: [core]}
  shared: {path: libs/shared, kind: library}
  api: {path: svc/api, depends_on: [util]}
  web: {path: svc/web}
"""
BUILDSPEC = """\
version: 0.2
phases:
  pre_build:
    commands:
      - cp -R libs/core/src/. "$CONTEXT/"
      - cp -R libs/shared/src/. "$CONTEXT/"  # not a dependency of api
  build:
    commands:
      - echo "$DEPLOYFW_MODULE_PATH/../x libs" && tar -C svc/api -cf out.tar .
      - deployfw image build "$CONTEXT" --label src=svc/web/README.md
"""


def _repo(tmp_path: Path, buildspec: str = BUILDSPEC) -> Path:
    (tmp_path / "modules.yaml").write_text(CONFIG)
    for folder in ("libs/core", "libs/util", "libs/shared", "svc/api", "svc/web"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "svc/api/buildspec.yml").write_text(buildspec)
    return tmp_path


def test_reads_of_modules_outside_the_dependencies_are_warnings_with_lines(tmp_path: Path) -> None:
    config = load_config(_repo(tmp_path) / "modules.yaml")
    found = [str(p) for p in undeclared_reads(config)]
    assert found == [
        "svc/api/buildspec.yml:6: phases.pre_build.commands[1]: reads libs/shared/src/. in module 'shared' "
        "(libs/shared), which 'api' does not depend on (not in its depends_on): a change there would not "
        "rebuild 'api'; add 'shared' to its depends_on",
        "svc/api/buildspec.yml:10: phases.build.commands[1]: reads svc/web/README.md in module 'web' "
        "(svc/web), which 'api' does not depend on (not in its depends_on): a change there would not "
        "rebuild 'api'; add 'web' to its depends_on",
    ]


def test_transitive_dependencies_and_the_own_folder_are_fine(tmp_path: Path) -> None:
    spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - cp -R libs/core/x svc/api/y libs/util/z .\n"
    config = load_config(_repo(tmp_path, spec) / "modules.yaml")
    assert undeclared_reads(config) == []


def test_the_example_buildspecs_read_only_what_the_gradle_graph_declares() -> None:
    config = load_config(REPO_ROOT / "modules.yaml")
    assert undeclared_reads(config) == []  # they copy libs/common, which the build files declare
    assert plan_warnings(config, config.modules) == []


def test_the_example_without_its_graph_would_be_warned_about(tmp_path: Path) -> None:
    config = load_config(REPO_ROOT / "modules.yaml", read_graph=False)
    found = undeclared_reads(config, ["user-api"])
    assert len(found) == 1
    assert found[0].file == "examples/shop/services/user-api/buildspec.yml"
    assert "reads examples/shop/libs/common/src/. in module 'common'" in found[0].message


def test_graph_notes_become_warnings_of_the_planned_modules(tmp_path: Path) -> None:
    (tmp_path / "settings.gradle").write_text("include ':libs:core', ':svc:api', ':svc:web'\n")
    (tmp_path / "modules.yaml").write_text(CONFIG.replace("version: 1", "version: 1\ngraph: gradle"))
    for folder in ("libs/core", "libs/util", "libs/shared", "svc/api", "svc/web"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "svc/web/build.gradle").write_text("dependencies { implementation project(findProperty('lib')) }\n")
    config = load_config(tmp_path / "modules.yaml")
    assert [str(p) for p in graph_warnings(config, ["web"])] == [
        "svc/web/build.gradle:1: modules.web: project(...) with a path computed in code: its target is not known"
    ]
    assert graph_warnings(config, ["api"]) == [p for p in graph_warnings(config, ["api"]) if p.key != "modules.web"]
    assert all(p.key != "modules.web" for p in graph_warnings(config, ["api"]))


def test_plan_shows_the_warnings_and_still_succeeds(cli: Any, git_repo: Callable[..., GitRepoBuilder]) -> None:
    run = cli
    repo = git_repo(
        {
            "modules.yaml": CONFIG,
            "libs/core/a": "1\n",
            "libs/util/a": "1\n",
            "libs/shared/src/a": "1\n",
            "svc/web/README.md": "web\n",
            "svc/api/buildspec.yml": BUILDSPEC,
            "svc/api/taskdef.json": "{}\n",
        }
    )
    text = run(["plan", "-m", "api", "--stop-after", "build"], cwd=repo.path)
    assert text.code == 0, text.err
    assert text.err.splitlines() == [
        f"deployfw: warning: {p}" for p in undeclared_reads(load_config(repo.path / "modules.yaml"), ["api"])
    ]
    data = run(["plan", "-m", "api", "--stop-after", "build", "--json"], cwd=repo.path).json()
    assert len(data["warnings"]) == 2 and "libs/shared/src/." in data["warnings"][0]
