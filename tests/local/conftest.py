"""Fixtures for the local build backend and content-tag tests: a real git repository of modules.

The example is small but has every input class the content tag covers: a service
with a transitive library dependency, shared build files, a config-referenced file
outside the module folder, and an unrelated second service.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from deployfw.backends import ModuleJob, RunContext
from deployfw.config import Config, load_config
from deployfw.plugins import PluginManager
from deployfw.testing import GitRepoBuilder

MODULES_YAML = """\
version: 1
project: shop
region: us-east-1
shared_paths: [build.gradle, "gradle/**"]
defaults:
  build: {backend: local}
  registry: {backend: ecr}
  deploy: {backend: ecs-rolling, cluster: test-cluster}
modules:
  util: {path: libs/util, kind: library}
  common: {path: libs/common, kind: library, depends_on: [util]}
  api:
    path: services/api
    depends_on: [common]
    build: {environment: {GREETING: hello, IMAGE_TAG: not-the-contract}}
    registry: {repository: local-api}
    deploy: {backend: ecs-bluegreen, taskdef: deploy/api-taskdef.json}
  other:
    path: services/other
    registry: {repository: local-other}
"""

PUSH_BUILDSPEC = """\
version: 0.2
phases:
  build:
    commands:
      - echo "building $DEPLOYFW_MODULE at $IMAGE_TAG"
      - >-
        deployfw image build "$DEPLOYFW_MODULE_PATH/app" --cmd "python main.py"
        --push "$REPOSITORY_URI" --tag "$IMAGE_TAG" --tag "$IMAGE_CONTENT_TAG"
"""

FILES: dict[str, str] = {
    "modules.yaml": MODULES_YAML,
    "build.gradle": "plugins {}\n",
    "gradle/wrapper.properties": "distributionUrl=x\n",
    "README.md": "shop\n",
    "deploy/api-taskdef.json": '{"family": "api"}\n',
    "libs/util/Util.kt": "object Util\n",
    "libs/common/Common.kt": "object Common\n",
    "services/api/buildspec.yml": PUSH_BUILDSPEC,
    "services/api/app/main.py": "print('api')\n",
    "services/other/buildspec.yml": PUSH_BUILDSPEC,
    "services/other/app/main.py": "print('other')\n",
}


def catalog() -> Any:
    """The section schemas of the installed backends, as ``plan`` and ``run`` validate with."""
    return PluginManager(entry_points=False).backends.catalog()


def load(root: Path, **kwargs: Any) -> Config:
    """The repository's modules.yaml, validated against the real backend schemas."""
    return load_config(root / "modules.yaml", catalog=catalog(), **kwargs)


@pytest.fixture
def shop(tmp_path: Path) -> GitRepoBuilder:
    """A committed copy of the example repository."""
    return GitRepoBuilder(tmp_path / "shop", FILES)


@pytest.fixture
def make_job() -> Callable[..., tuple[ModuleJob, list[str]]]:
    """``make_job(config, module, head, endpoint_url=None)`` -> (job, captured log lines)."""

    def make(
        config: Config, module: str, head: str, *, endpoint_url: str | None = None, run_id: str = "run-1"
    ) -> tuple[ModuleJob, list[str]]:
        ctx = RunContext(config=config, head=head, run_id=run_id, region="us-east-1", endpoint_url=endpoint_url)
        lines: list[str] = []
        return ModuleJob(ctx=ctx, module=config.modules[module], log=lines.append), lines

    return make


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Any]:
    """One embedded AWS endpoint for the module (ECR with real manifest digests, SSM)."""
    from deployfw.sandbox.aws import AwsSandbox

    with AwsSandbox(port=0) as box:
        yield box


def write_files(root: Path, files: Mapping[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")


@pytest.fixture
def loader() -> Callable[..., Config]:
    """:func:`load` as a fixture (test modules cannot import from conftest reliably)."""
    return load


@pytest.fixture
def shop_files() -> dict[str, str]:
    """The example repository's files (path -> text)."""
    return dict(FILES)


@pytest.fixture
def shop_yaml() -> str:
    return MODULES_YAML
