"""Fixtures for the plugin-system tests: the example plugin installed by pip, a webhook receiver, a run context.

The example plugin (``examples/webhook-plugin``) is installed the way a user
installs any plugin - ``pip install`` of its own pyproject - but into a private
``--target`` folder rather than the shared environment, so that other test
suites running in the same interpreter (or in parallel in the same checkout)
never see an extra plugin. Tests opt in with the ``webhook_installed`` fixture
(in-process, through ``sys.path``) or ``run_cli(..., site=...)`` (subprocess,
through ``PYTHONPATH``); both are found by the same entry-point scan deployfw does.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from plugin_helpers import MODULES_YAML, PLUGIN_ENV, PLUGIN_SOURCE, Receiver

from deployfw.backends import RunContext
from deployfw.config import load_config
from deployfw.testing import GitRepoBuilder


def _builds_in_place() -> bool:
    """Whether this environment can build a wheel without pip's isolated build env.

    setuptools bundles ``bdist_wheel`` from 70.1 on; older ones need the ``wheel``
    package. Without either, pip must build in isolation (it fetches setuptools).
    """
    if importlib.util.find_spec("wheel") is not None:
        return True
    major, minor = (int(p) for p in importlib.metadata.version("setuptools").split(".")[:2])
    return (major, minor) >= (70, 1)


@pytest.fixture(scope="session")
def webhook_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugin pip-installed (non-editable, no deps) into a private folder, once per session.

    A copy of the source is built so the build leaves no ``build/`` or ``*.egg-info``
    in the checkout, where other sessions work at the same time.
    """
    work = tmp_path_factory.mktemp("webhook-plugin")
    source = work / "source"
    shutil.copytree(
        PLUGIN_SOURCE,
        source,
        ignore=shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__", ".pytest_cache"),
    )
    site = work / "site"
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-input", "--target", str(site)]
    if _builds_in_place():
        command.append("--no-build-isolation")
    result = subprocess.run([*command, str(source)], capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, f"pip install of the example plugin failed:\n{result.stdout}\n{result.stderr}"
    assert (site / "deployfw_webhook" / "plugin.py").is_file()
    return site


@pytest.fixture
def clean_plugin_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No disable list, webhook URL or timeout leaks in from the developer's shell."""
    for name in PLUGIN_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def webhook_installed(webhook_site: Path, monkeypatch: pytest.MonkeyPatch, clean_plugin_env: None) -> Path:
    """The example plugin visible to entry-point discovery in this process, for this test only."""
    monkeypatch.syspath_prepend(str(webhook_site))
    return webhook_site


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver()
    yield started
    started.close()


@pytest.fixture
def run_context(git_repo: Callable[..., GitRepoBuilder]) -> RunContext:
    """A run context over a real repository with one library and one service."""
    repo = git_repo({"modules.yaml": MODULES_YAML, "services/user-api/app.py": "x = 1\n", "libs/common/c.py": ""})
    config = load_config(repo.path / "modules.yaml")
    return RunContext(config=config, head=repo.head, run_id="run-42", region="ap-northeast-2")
