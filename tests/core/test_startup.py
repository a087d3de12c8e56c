"""What ``deployfw --help`` and ``deployfw detect`` import, and how the lazy command table finds commands.

Start-up time is part of every command's wall time (``--help`` <= 120 ms), so the
help path must not pull in PyYAML, logging or the image builder (it does load the
plugin manager: plugins contribute commands that ``--help`` lists), and detect must
not import the plugin manager. Checked in real processes: the in-process tests
have long since imported everything.
"""

from __future__ import annotations

import subprocess
import sys
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


@pytest.fixture
def repo(git_repo: Callable[..., GitRepoBuilder]) -> GitRepoBuilder:
    return git_repo({"modules.yaml": "version: 1\nmodules:\n  a: {path: svc/a}\n", "svc/a/x": "1\n"})


def _imported(args: list[str], cwd: Any) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    probe = [line for line in proc.stderr.splitlines() if line.startswith("PROBE ")]
    assert probe, proc.stderr
    return eval(probe[-1][len("PROBE ") :])


def test_help_imports_only_click_and_the_plugin_manager(repo: Any) -> None:
    assert _imported(["--help"], repo.path) == ["deployfw.plugins", "pluggy"]


def test_detect_imports_no_plugin_machinery(repo: Any) -> None:
    imported = _imported(["detect", "--all"], repo.path)
    assert "deployfw.plugins" not in imported and "pluggy" not in imported
    assert "deployfw.image" not in imported


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
    (repo.path / "modules.yaml").write_text("version: 1\nmodules:\n  a: {path: svc/a, colour: red}\n", encoding="utf-8")
    result = cli(["detect", "--base", "no-such-rev"], cwd=repo.path)
    assert result.code == 2
    assert result.errors == [
        "deployfw: error: modules.yaml:3: modules.a.colour: unknown key; valid keys: build, depends_on, deploy, "
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
    (outside / "modules.yaml").write_text("version: 1\nmodules:\n  a: {path: svc/a}\n", encoding="utf-8")
    result = cli(["detect"], cwd=outside)
    assert result.code == 2
    assert result.errors[0].endswith("is not inside a git repository")
