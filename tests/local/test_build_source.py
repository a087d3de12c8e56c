"""What a build reads: a clean checkout of the commit, made safely next to others; the working tree only on purpose."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from deployfw.builds import tool
from deployfw.builds.content import content_tag
from deployfw.builds.single import build_module
from deployfw.builds.source import commit_checkout, working_tree_changes
from deployfw.config import Config
from deployfw.gitrepo import GitRepo
from deployfw.testing import GitRepoBuilder, run_cli, terminal_env
from deployfw_aws.ecr import EcrRegistry

MakeJob = Callable[..., tuple[Any, list[str]]]


def test_checkouts_hold_the_commit_only_and_run_side_by_side(
    shop: GitRepoBuilder, loader: Callable[..., Config]
) -> None:
    shop.write({"services/api/app/main.py": "print('edited, not committed')\n", "services/api/app/new.py": "x = 1\n"})
    config = loader(shop.path)
    repo = GitRepo(shop.path)
    head = shop.head  # the builder's gitpython object is not for threads; GitRepo's commands are
    seen: list[Path] = []

    def check_out(index: int) -> tuple[str, bool]:
        with commit_checkout(config, repo, head, f"api-{index}") as tree:
            seen.append(tree)
            return (tree / "services/api/app/main.py").read_text(), (tree / "services/api/app/new.py").exists()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(check_out, range(8)))

    assert results == [("print('api')\n", False)] * 8
    assert len(set(seen)) == 8 and not any(path.exists() for path in seen)
    assert repo.status_paths(["."]) == ["services/api/app/main.py", "services/api/app/new.py"]  # untouched


def test_a_killed_runs_checkouts_are_removed_by_the_next(shop: GitRepoBuilder, loader: Callable[..., Config]) -> None:
    config = loader(shop.path)
    builds = shop.path / ".deployfw" / "builds"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = builds / f"{dead.pid}-api-0000"
    (orphan / "src").mkdir(parents=True)
    alive = builds / f"{os.getpid()}-other-1111"
    alive.mkdir()
    with commit_checkout(config, GitRepo(shop.path), shop.head, "api"):
        assert not orphan.exists() and alive.exists()


def test_working_tree_changes_are_relative_to_the_config_and_skip_deployfw_state(tmp_path: Path,
                                                                                 shop_files: dict[str, str]) -> None:
    repo = GitRepoBuilder(tmp_path / "mono", {f"shop/{k}": v for k, v in shop_files.items()} | {"other/x": "1\n"})
    repo.write({"shop/services/api/app/main.py": "changed\n", "shop/untracked.txt": "u\n", "other/x": "2\n",
                "shop/venv/bin/a": "1", "shop/venv/bin/b": "2",
                "shop/.deployfw/state.db": "db", "shop/.deployfw/builds/1-a/src/f": "f"})  # fmt: skip
    repo.write({"shop/libs/util/Util.kt": None})  # deleted
    tree = working_tree_changes(GitRepo(repo.path), repo.path / "shop")
    # an untracked folder is one entry, however many files it holds
    assert tree.paths == ("libs/util/Util.kt", "services/api/app/main.py", "untracked.txt", "venv/")


def test_allow_dirty_needs_the_checked_out_head(shop: GitRepoBuilder) -> None:
    first = shop.head
    shop.commit({"services/api/app/main.py": "print('v2')\n"})
    shop.write({"services/api/app/main.py": "print('dirty')\n"})
    done = run_cli(terminal_env(), shop.path, "plan", "--head", first, "--allow-dirty")
    assert done.code == 2
    assert f"--allow-dirty builds the working tree, which is HEAD ({shop.head[:12]})" in done.stderr


def test_deployfw_build_uses_the_commit_and_allow_dirty_a_run_only_tag(
    shop: GitRepoBuilder, loader: Callable[..., Config], make_job: MakeJob, sandbox: Any, monkeypatch: Any
) -> None:
    config = loader(shop.path)
    job, _ = make_job(config, "other", shop.head, endpoint_url=sandbox.endpoint_url)
    registry = EcrRegistry(job.ctx)
    job.image = registry.prepare(job, content_tag(config, job.module, shop.head))
    env = {"PATH": os.environ["PATH"], "AWS_ENDPOINT_URL": sandbox.endpoint_url, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCOUNT_ID": "123456789012",
           "DEPLOYFW_RUN_ID": "run-7"}  # fmt: skip
    monkeypatch.chdir(shop.path)

    clean: list[str] = []
    assert build_module(config, "other", env=env, emit=clean.append) == 0, clean
    shop.write({"services/other/app/main.py": "print('uncommitted')\n"})
    dirty: list[str] = []
    assert build_module(config, "other", env=env, emit=dirty.append) == 0, dirty
    loose: list[str] = []
    ci_tags = {"IMAGE_TAG": "from-ci", "IMAGE_CONTENT_TAG": "content-from-ci"}
    assert build_module(config, "other", env={**env, **ci_tags}, emit=loose.append, allow_dirty=True) == 0, loose

    assert not any("uncommitted" in line for line in clean)
    assert any("working tree has 1 uncommitted change(s) (services/other/app/main.py)" in line for line in dirty)
    assert any(line.endswith(f"building a clean checkout of {shop.head[:12]}") for line in dirty)
    assert _pushed(clean) == _pushed(dirty) == registry.find(job, job.image.content_tag)  # the commit's bytes
    tag = f"dirty-{shop.head[:12]}-run-7"
    assert registry.find(job, tag) == _pushed(loose) != _pushed(clean)  # the working tree's bytes
    assert registry.find(job, "content-from-ci") is None and registry.find(job, "from-ci") is None


def test_the_shim_runs_this_deployfw_when_no_script_is_installed(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(sys, "argv", ["pytest"])
    monkeypatch.setattr(sys, "executable", str(_bare_python(tmp_path)))
    monkeypatch.setattr(tool, "_shim", None)
    env = tool.tool_env({"PATH": "/usr/bin:/bin"})
    shim = Path(env["DEPLOYFW"])
    assert shim.name == "deployfw" and env["PATH"].split(os.pathsep)[0] == str(shim.parent)
    assert env["PATH"].endswith("/usr/bin:/bin")
    done = subprocess.run([str(shim), "--version"], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert done.returncode == 0 and "deployfw" in done.stdout, done.stderr


def _bare_python(tmp_path: Path) -> Path:
    """This interpreter, with the same site-packages, reached through a bin folder that has no deployfw script.

    Inside a virtual environment the copy needs its pyvenv.cfg and lib; outside one (CI installs into
    the system interpreter) a bare symlink is enough, since Python finds its prefix through it.
    """
    venv = tmp_path / "bare"
    (venv / "bin").mkdir(parents=True)
    if sys.prefix != sys.base_prefix:
        (venv / "lib").symlink_to(Path(sys.prefix) / "lib")  # the same site-packages, deployfw included
        (venv / "pyvenv.cfg").write_text((Path(sys.prefix) / "pyvenv.cfg").read_text())
    link = venv / "bin" / "python3"
    link.symlink_to(Path(sys.executable).resolve())
    return link


def _pushed(lines: list[str]) -> str | None:
    found = [m.group(1) for line in lines if (m := re.search(r"@(sha256:[0-9a-f]{64})$", line))]
    return found[-1] if found else None


@pytest.fixture(autouse=True)
def _no_leftover_checkouts(shop: GitRepoBuilder) -> Any:
    yield
    builds = shop.path / ".deployfw" / "builds"
    assert not builds.exists() or [p.name for p in builds.iterdir() if p.name.startswith(f"{os.getpid()}-")] in (
        [], [f"{os.getpid()}-other-1111"]
    )  # fmt: skip
