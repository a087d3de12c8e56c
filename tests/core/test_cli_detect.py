"""``deployfw detect`` as a command: output contract, selection flags, exit codes, what it imports."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from deployfw.testing.gitrepo import GitRepoBuilder

CONFIG = """\
version: 1
defaults:
  build: {backend: local}
  registry: {backend: ecr}
  deploy: {backend: ecs-rolling, cluster: c}
modules:
  zeta: {path: svc/zeta, depends_on: [core]}
  alpha: {path: svc/alpha}
  core: {path: libs/core, kind: library}
  mid: {path: svc/mid}
"""


@pytest.fixture
def repo(git_repo: Callable[..., GitRepoBuilder]) -> GitRepoBuilder:
    repo = git_repo(
        {"modules.yaml": CONFIG, "svc/zeta/z": "1\n", "svc/alpha/a": "1\n", "svc/mid/m": "1\n", "libs/core/c": "1\n"}
    )
    repo.base = repo.head  # type: ignore[attr-defined]
    repo.commit({"libs/core/c": "2\n", "svc/alpha/a": "2\n", "README": "x\n"})
    return repo


def test_json_output_shape(cli: Any, repo: Any) -> None:
    result = cli(["detect", "--json", "--base", repo.base], cwd=repo.path)
    assert result.err == ""
    data = json.loads(result.out)
    assert list(data) == ["base", "head", "modules", "unowned", "unowned_paths"]
    assert data == {
        "base": repo.base,
        "head": repo.head,
        "modules": [
            {"name": "alpha", "kind": "service", "reasons": ["changed: svc/alpha/a"]},
            {"name": "core", "kind": "library", "reasons": ["changed: libs/core/c"]},
            {"name": "zeta", "kind": "service", "reasons": ["dependency: core"]},
        ],
        "unowned": 1,
        "unowned_paths": ["README"],
    }


def test_text_mode_counts_unowned_paths_on_stderr_only(cli: Any, repo: Any) -> None:
    result = cli(["detect", "--base", repo.base], cwd=repo.path)
    assert result.out.splitlines() == ["alpha", "core", "zeta"]
    assert result.err.strip() == "1 changed path owned by no module (listed by --json)"


def test_only_unowned_changes_print_nothing_on_stdout_and_say_why(cli: Any, repo: Any) -> None:
    base = repo.head
    repo.commit({"docs/a.md": "a\n", "docs/b.md": "b\n"})
    result = cli(["detect", "--base", base], cwd=repo.path)
    assert result.out == ""
    assert "2 changed paths owned by no module" in result.err
    assert cli(["detect", "--json", "--base", base], cwd=repo.path).json()["unowned_paths"] == [
        "docs/a.md",
        "docs/b.md",
    ]


def test_base_is_the_named_commit_resolved_to_a_sha(cli: Any, repo: Any) -> None:
    repo.repo.create_tag("v1", ref=repo.base)
    data = cli(["detect", "--json", "--base", "v1", "--head", "HEAD"], cwd=repo.path).json()
    assert (data["base"], data["head"]) == (repo.base, repo.head)
    data = cli(["detect", "--json", "--base", "HEAD~1"], cwd=repo.path).json()
    assert data["base"] == repo.base


def test_text_output_is_one_sorted_name_per_line(cli: Any, repo: Any) -> None:
    result = cli(["detect", "--base", repo.base], cwd=repo.path)
    assert (result.code, result.out) == (0, "alpha\ncore\nzeta\n")  # stderr: the unowned count


def test_nothing_changed_prints_nothing(cli: Any, repo: Any) -> None:
    result = cli(["detect", "--base", "HEAD"], cwd=repo.path)
    assert (result.code, result.out) == (0, "")
    assert cli(["detect", "--json", "--base", "HEAD"], cwd=repo.path).json()["modules"] == []


def test_all_and_module_selection(cli: Any, repo: Any) -> None:
    data = cli(["detect", "--json", "--all", "--base", repo.base], cwd=repo.path).json()
    assert [(m["name"], m["reasons"]) for m in data["modules"]] == [
        (name, ["selected with --all"]) for name in ("alpha", "core", "mid", "zeta")
    ]
    result = cli(["detect", "-m", "zeta", "--module", "mid"], cwd=repo.path)
    assert result.lines == ["mid", "zeta"]


def test_unknown_module_is_exit_2(cli: Any, repo: Any) -> None:
    result = cli(["detect", "-m", "nope"], cwd=repo.path)
    assert result.code == 2
    assert result.out == ""
    assert "unknown module 'nope'; modules: alpha, core, mid, zeta" in result.err


def test_usage_error_is_exit_2(cli: Any, repo: Any) -> None:
    assert cli(["detect", "--bogus"], cwd=repo.path).code == 2


def test_config_flag_from_another_folder(cli: Any, repo: Any, tmp_path: Path) -> None:
    result = cli(["-c", str(repo.path / "modules.yaml"), "detect", "--base", repo.base], cwd=tmp_path)
    assert result.lines == ["alpha", "core", "zeta"]


PROBE = """
import sys
from deployfw.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
else:
    code = 0
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("boto3", "botocore", "jenkins", "moto"))
sys.stderr.write("\\nPROBE " + repr((code, heavy)) + "\\n")
"""


@pytest.mark.parametrize("args", [["--help"], ["detect", "--json", "--base", "HEAD~1"], ["detect", "--all"]])
def test_help_and_detect_import_neither_boto3_nor_jenkins(repo: Any, args: list[str]) -> None:
    """A real process, since the in-process tests have long since imported everything."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args], cwd=repo.path, capture_output=True, text=True, timeout=60, check=False
    )
    probe = [line for line in proc.stderr.splitlines() if line.startswith("PROBE ")]
    assert probe, proc.stderr
    assert probe[-1] == "PROBE (0, [])", proc.stderr
    assert proc.stdout  # it did its job
