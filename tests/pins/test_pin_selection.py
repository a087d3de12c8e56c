"""The pin rule on real git: a pinned module is held until its *own* inputs change after the pin.

"Its own inputs" is exactly what makes a module affected in ``detect`` - its files, files its
config references, its modules.yaml entry, shared paths and its dependencies - measured from the
pin's ``since`` commit. Each test pins service ``a`` at one commit, makes one kind of change and
asks :func:`deployfw.pins.apply_pins` whether ``a`` is still held.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from deployfw.config import Config, load_config
from deployfw.detect import Detection, detect
from deployfw.gitrepo import GitRepo
from deployfw.pins import PinSelection, apply_pins, pin_since
from deployfw.revisions import range_from
from deployfw.state import Pin, Scope
from deployfw.testing.gitrepo import GitRepoBuilder

CONFIG = """\
version: 1
project: shop
shared_paths: [build.gradle]
defaults:
  build: {backend: local}
  registry: {backend: ecr}
  deploy: {backend: ecs-bluegreen, cluster: test, appspec: appspec.yml}
modules:
  common: {path: libs/common, kind: library}
  a: {path: svc/a, depends_on: [common], deploy: {taskdef: deploy/a-taskdef.json}}
  b: {path: svc/b}
"""
FILES = {
    "modules.yaml": CONFIG,
    "build.gradle": "// root\n",
    "appspec.yml": "version: 0.0\n",
    "deploy/a-taskdef.json": "{}\n",
    "libs/common/lib.py": "x = 1\n",
    "svc/a/app.py": "a = 1\n",
    "svc/b/app.py": "b = 1\n",
}
SCOPE = Scope("123456789012", "us-east-1")
ENTRY_CHANGED = CONFIG.replace("taskdef: deploy/a-taskdef.json", "taskdef: deploy/a-taskdef.json, service: a-svc")


@pytest.fixture
def repo(tmp_path: Path) -> GitRepoBuilder:
    return GitRepoBuilder(tmp_path / "repo", FILES)


def pin_at(since: str, run_id: str = "rb-1") -> Pin:
    return Pin(SCOPE, "a", run_id, "c" * 40, since, datetime(2025, 1, 2, 3, 4, tzinfo=UTC))


def select(repo: GitRepoBuilder, base: str, pin: Pin, **kw: object) -> tuple[PinSelection, Config]:
    """Detect base..HEAD as a run would, then apply ``pin`` to it."""
    config = load_config(repo.path / "modules.yaml")
    git = GitRepo(repo.path)
    detection = detect(config, git, range_from(git, base, repo.head))
    return apply_pins(config, git, detection, {"a": pin}, lambda _pin: None, **kw), config  # type: ignore[arg-type]


def names(detection: Detection) -> list[str]:
    return [m.name for m in detection.modules]


def test_an_unrelated_commit_keeps_the_module_held(repo: GitRepoBuilder) -> None:
    deployed = repo.head
    repo.commit({"svc/a/app.py": "a = 2  # the change that was rolled back\n"})
    pinned = repo.head
    repo.commit({"svc/b/app.py": "b = 2\n"})

    selection, _ = select(repo, deployed, pin_at(pinned))  # a's last deploy (the rollback) is older

    assert names(selection.detection) == ["b"]
    assert list(selection.held) == ["a"] and selection.releasing == {}


def test_a_pinned_module_nothing_affects_is_named_as_pinned(repo: GitRepoBuilder) -> None:
    repo.commit({"svc/a/app.py": "a = 2\n"})
    deployed = repo.head  # a's last success is head: the rollback over it was killed before it was recorded
    repo.commit({"svc/b/app.py": "b = 2\n"})

    selection, config = select(repo, deployed, pin_at(deployed))
    named = apply_pins(config, GitRepo(repo.path), selection.detection, {"a": pin_at(deployed)},
                       lambda _pin: None, explicit=["b"])  # fmt: skip

    assert names(selection.detection) == ["b"] and list(selection.held) == ["a"]
    assert named.held == {}  # a -m run is about the named modules only


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"svc/a/app.py": "a = 3  # the fix\n"}, "svc/a/app.py"),
        ({"libs/common/lib.py": "x = 2\n"}, "dependency: common"),
        ({"build.gradle": "// bumped\n"}, "shared: build.gradle"),
        ({"deploy/a-taskdef.json": '{"cpu": "512"}\n'}, "config file: deploy/a-taskdef.json"),
        ({"modules.yaml": ENTRY_CHANGED}, "config: module entry changed"),
    ],
)
def test_a_change_to_its_own_inputs_after_the_pin_releases_it(
    repo: GitRepoBuilder, change: dict[str, str], reason: str
) -> None:
    deployed = repo.head
    repo.commit({"svc/a/app.py": "a = 2\n"})
    pinned = repo.head
    repo.commit({"svc/b/app.py": "b = 2\n"})
    repo.commit(change)

    selection, _ = select(repo, deployed, pin_at(pinned))

    assert "a" in names(selection.detection) and selection.held == {}
    assert list(selection.releasing) == ["a"]
    [a] = [m for m in selection.detection.modules if m.name == "a"]
    assert all(r.startswith(f"changed since the rollback pin ({pinned[:12]}): ") for r in a.reasons)
    assert any(reason in r for r in a.reasons), a.reasons


def test_naming_a_pinned_module_needs_unpin(repo: GitRepoBuilder) -> None:
    base = repo.head
    repo.commit({"svc/b/app.py": "b = 2\n"})
    config = load_config(repo.path / "modules.yaml")
    git = GitRepo(repo.path)
    detection = detect(config, git, range_from(git, base, repo.head), names=["a"])

    refused = apply_pins(config, git, detection, {"a": pin_at(base)}, lambda _pin: None, explicit=["a"])
    unpinned = apply_pins(config, git, detection, {"a": pin_at(base)}, lambda _pin: None, explicit=["a"], unpin=True)

    assert [p.message for p in refused.findings] == [
        "a is pinned by rollback rb-1 at 2025-01-02 03:04 UTC; `deployfw unpin a` to release, "
        "or `run -m a --unpin` to deploy head"
    ]
    assert unpinned.findings == [] and list(unpinned.releasing) == ["a"] and names(unpinned.detection) == ["a"]
    assert "--unpin: deploys head over the pin of rollback rb-1" in unpinned.detection.modules[0].reasons


def test_a_void_pin_is_deployed_over_and_said_so(repo: GitRepoBuilder) -> None:
    base = repo.head
    repo.commit({"svc/b/app.py": "b = 2\n"})
    config = load_config(repo.path / "modules.yaml")
    git = GitRepo(repo.path)
    detection = detect(config, git, range_from(git, base, repo.head), select_all=True)

    selection = apply_pins(config, git, detection, {"a": pin_at(repo.head)}, lambda _pin: "its rollback failed")

    assert "a" in names(selection.detection) and list(selection.releasing) == ["a"]
    assert selection.notes == ["a: the pin of rollback rb-1 does not hold (its rollback failed); deployed as usual"]


def test_a_pin_measured_from_a_commit_this_clone_lacks_holds(repo: GitRepoBuilder) -> None:
    base = repo.head
    repo.commit({"svc/a/app.py": "a = 2\n"})

    selection, _ = select(repo, base, pin_at("f" * 40))

    assert list(selection.held) == ["a"]
    assert selection.notes == [f"a: cannot tell what changed since its pin: {'f' * 12} is not in this clone"]


def test_the_pin_is_measured_from_the_newest_commit_that_contains_the_others(repo: GitRepoBuilder) -> None:
    deployed = repo.head
    failed = repo.commit({"svc/a/app.py": "a = 2  # deploy failed\n"})
    checkout = repo.commit({"svc/b/app.py": "b = 2\n"})
    repo.checkout(deployed, new_branch="side")
    side = repo.commit({"svc/b/app.py": "b = 9\n"})
    git = GitRepo(repo.path)

    assert pin_since(git, [deployed, failed, checkout]) == checkout
    assert pin_since(git, [deployed, checkout, failed]) == checkout  # an older candidate never moves it back
    assert pin_since(git, [failed, side]) == failed  # another branch: not a descendant
    assert pin_since(git, ["e" * 40, checkout]) == "e" * 40  # the deploy is not in this clone: keep it
    assert pin_since(None, [deployed, checkout]) == deployed
