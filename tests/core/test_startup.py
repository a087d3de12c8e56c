"""What ``deployfw --help`` and ``deployfw detect`` import, and how the lazy command table finds commands.

Start-up time is part of every command's wall time (``--help`` <= 120 ms), so the
help path must not pull in PyYAML, logging or the image builder (it does load the
plugin manager: plugins contribute commands that ``--help`` lists), and detect must
not import the plugin manager. Checked in real processes: the in-process tests
have long since imported everything.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from deployfw.cli import COMMANDS, _importable
from deployfw.testing.gitrepo import GitRepoBuilder

PROBE = """\
import sys
from deployfw.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
names = ("yaml", "logging", "deployfw.image", "deployfw.plugins", "pluggy", "git", "deployfw.config")
sys.stderr.write("\\nPROBE " + repr(sorted(n for n in names if n in sys.modules)) + "\\n")
"""

MINIMAL = (
    "version: 1\ndefaults:\n  registry: {backend: ecr}\n  deploy: {backend: ecs-rolling, cluster: c}\n"
    "  build: {backend: local}\nmodules:\n  a: {path: svc/a}\n"
)


@pytest.fixture
def repo(git_repo: Callable[..., GitRepoBuilder]) -> GitRepoBuilder:
    return git_repo({"modules.yaml": MINIMAL, "svc/a/x": "1\n"})


def _imported(args: list[str], cwd: Any) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    probe = [line for line in proc.stderr.splitlines() if line.startswith("PROBE ")]
    assert probe, proc.stderr
    return eval(probe[-1][len("PROBE ") :])


def test_help_imports_only_click_and_the_plugin_manager(repo: Any) -> None:
    assert _imported(["--help"], repo.path) == ["deployfw.plugins", "pluggy"]


def test_detect_validates_backends_then_reads_the_cache_without_plugin_machinery(repo: Any) -> None:
    """The first detect validates backend sections (it needs the plugin manager); the next reads the cache."""
    stamp = time.time() - 60  # a checkout older than the two seconds a cache entry never trusts
    for path in [repo.path, *repo.path.rglob("*")]:
        os.utime(path, (stamp, stamp))
    first = _imported(["detect", "--all"], repo.path)
    assert "deployfw.plugins" in first and "deployfw.image" not in first and "git" not in first
    again = _imported(["detect", "--all"], repo.path)
    assert again == ["logging"]  # secrets masking only: no PyYAML, pluggy, gitpython, nor the config loader


def test_detect_refuses_an_unknown_backend_exactly_as_run_does(cli: Any, repo: Any) -> None:
    """One verdict per config: the same message, the same exit code, from either command."""
    (repo.path / "modules.yaml").write_text(MINIMAL.replace("ecs-rolling", "ecs-nope"), encoding="utf-8")
    detect = cli(["detect", "--all"], cwd=repo.path)
    run = cli(["run", "--all", "--dry-run"], cwd=repo.path)
    assert detect.code == run.code == 2
    assert detect.errors == run.errors
    assert detect.errors[0].startswith(
        "deployfw: error: modules.yaml:4: defaults.deploy.backend: unknown deploy backend 'ecs-nope'; valid: "
    )
    assert cli(["detect", "--all"], cwd=repo.path).errors == detect.errors  # a refused config is never cached


@pytest.mark.parametrize("module", sorted({module for module, _ in COMMANDS.values()}))
def test_importable_agrees_with_find_spec_without_importing(module: str) -> None:
    import importlib.util

    before = set(sys.modules)
    answer = _importable(module)
    assert set(sys.modules) == before  # nothing imported to answer
    assert answer == (importlib.util.find_spec(module) is not None)


def test_importable_of_missing_modules() -> None:
    assert not _importable("deployfw.cli.no_such_command")
    assert not _importable("deployfw.no_such_package.cli")
    assert not _importable("deployfw.errors.cli")  # a module is no package
    assert _importable("json.decoder")


# ---- config problems are reported before git is asked anything ----


def test_config_problems_come_before_git_problems(cli: Any, repo: Any) -> None:
    bad = MINIMAL.replace("{path: svc/a}", "{path: svc/a, colour: red}")
    (repo.path / "modules.yaml").write_text(bad, encoding="utf-8")
    result = cli(["detect", "--base", "no-such-rev"], cwd=repo.path)
    assert result.code == 2
    assert result.errors == [
        "deployfw: error: modules.yaml:7: modules.a.colour: unknown key; valid keys: build, depends_on, deploy, "
        "execution_mode, kind, path, registry"
    ]


def test_git_problems_after_a_good_config(cli: Any, repo: Any, tmp_path: Path) -> None:
    result = cli(["detect", "--base", "no-such-rev"], cwd=repo.path)
    assert (result.code, result.errors) == (
        2,
        ["deployfw: error: --base 'no-such-rev' is not a commit in this repository"],
    )
    outside = tmp_path / "plain"
    (outside / "svc" / "a").mkdir(parents=True)
    (outside / "modules.yaml").write_text(MINIMAL, encoding="utf-8")
    result = cli(["detect"], cwd=outside)
    assert result.code == 2
    assert result.errors[0].endswith("is not inside a git repository")
