"""The parsed-config cache: used only when nothing a load depends on changed; never trusted blindly."""

from __future__ import annotations

import hashlib
import os
import pickle
import threading
import time
from pathlib import Path

import pytest

from deployfw import configcache
from deployfw.configcache import ConfigCache
from deployfw.errors import InputError
from deployfw.plugins import PluginManager

CONFIG = """\
version: 1
defaults:
  build: {backend: local}
  registry: {backend: ecr}
  deploy: {backend: ecs-rolling, cluster: c}
modules:
  lib: {path: libs/lib, kind: library}
  a: {path: svc/a, depends_on: [lib]}
"""
_CATALOG = PluginManager(entry_points=False).backends.catalog()


class Catalog:
    """A catalog source that counts how often a load needed it (once per miss)."""

    def __init__(self, files: tuple[str, ...] = ()) -> None:
        self.calls = 0
        self.files = files

    def __call__(self) -> tuple[object, list[str]]:
        self.calls += 1
        return _CATALOG, list(self.files)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    for folder in ("libs/lib", "svc/a"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "modules.yaml").write_text(CONFIG, encoding="utf-8")
    return tmp_path


def age(repo: Path) -> None:
    """Give every folder and file a modification time well in the past, as a checkout an hour old has.

    Anything modified in the last two seconds is never trusted to a cache entry.
    """
    stamp = 1_700_000_000  # always the same: ageing twice changes nothing
    for path in [repo, *repo.rglob("*")]:
        if ".deployfw" not in path.parts:
            os.utime(path, (stamp, stamp), follow_symlinks=False)


def load(repo: Path, catalog: Catalog, env: str | None = None):  # type: ignore[no-untyped-def]
    age(repo)
    return configcache.load(repo / "modules.yaml", root=repo, env=env, catalog=catalog)


def entries(repo: Path) -> list[Path]:
    return sorted((repo / ".deployfw" / "cache").glob("*.bin"))


def test_second_load_is_read_back_without_validating_again(repo: Path) -> None:
    catalog = Catalog()
    first = load(repo, catalog)
    second = load(repo, catalog)
    assert catalog.calls == 1
    assert second == first and second.modules["a"].depends_on == ("lib",)
    assert (repo / ".deployfw" / ".gitignore").read_text().endswith("*\n")


def test_a_content_change_is_a_miss(repo: Path) -> None:
    catalog = Catalog()
    load(repo, catalog)
    (repo / "modules.yaml").write_text(CONFIG.replace("cluster: c", "cluster: d"), encoding="utf-8")
    assert load(repo, catalog).modules["a"].deploy.get("cluster") == "d"  # type: ignore[union-attr]
    assert catalog.calls == 2


def test_a_refused_config_is_never_cached_and_refused_again(repo: Path) -> None:
    (repo / "modules.yaml").write_text(CONFIG.replace("ecs-rolling", "ecs-nope"), encoding="utf-8")
    for _ in range(2):
        with pytest.raises(InputError, match="unknown deploy backend 'ecs-nope'"):
            load(repo, Catalog())
    assert entries(repo) == []


def test_each_environment_has_its_own_entry(repo: Path) -> None:
    (repo / "modules.yaml").write_text(CONFIG + "environments:\n  prod: {defaults: {deploy: {cluster: p}}}\n")
    catalog = Catalog()
    assert load(repo, catalog).modules["a"].deploy.get("cluster") == "c"  # type: ignore[union-attr]
    assert load(repo, catalog, "prod").modules["a"].deploy.get("cluster") == "p"  # type: ignore[union-attr]
    assert load(repo, catalog, "prod").env == "prod"
    assert catalog.calls == 2 and len(entries(repo)) == 2


def test_a_module_folder_that_disappeared_is_reported_not_served(repo: Path) -> None:
    load(repo, Catalog())
    (repo / "svc" / "a").rmdir()
    with pytest.raises(InputError, match=r"modules.yaml:8: modules.a.path: folder 'svc/a' does not exist"):
        load(repo, Catalog())


def test_a_folder_replaced_by_a_symlink_is_checked_again(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    load(repo, Catalog())
    (repo / "svc" / "a").rmdir()
    (repo / "svc" / "a").symlink_to(tmp_path_factory.mktemp("elsewhere"))
    with pytest.raises(InputError, match="leaves the repository through a symlink"):
        load(repo, Catalog())


def test_an_edited_source_file_of_the_validating_code_is_a_miss(repo: Path, tmp_path: Path) -> None:
    plugin = tmp_path / "plugin_source.py"
    plugin.write_text("SCHEMA = 1\n")
    load(repo, Catalog((str(plugin),)))
    catalog = Catalog((str(plugin),))
    load(repo, catalog)
    assert catalog.calls == 0
    plugin.write_text("SCHEMA = 22\n")
    load(repo, catalog)
    assert catalog.calls == 1


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "foreign"])
def test_a_damaged_entry_is_a_miss_and_is_rewritten(repo: Path, damage: str) -> None:
    load(repo, Catalog())
    (entry,) = entries(repo)
    raw = entry.read_bytes()
    broken = {
        "flip": raw[:-10] + bytes([raw[-10] ^ 0xFF]) + raw[-9:],
        "truncate": raw[: len(raw) // 2],
        "empty": b"",
        "foreign": b"\x80\x04K\x01.",
    }[damage]
    entry.write_bytes(broken)
    catalog = Catalog()
    assert load(repo, catalog).modules["a"].path == "svc/a"
    assert catalog.calls == 1
    assert entry.read_bytes() != broken


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch pwned",))


def test_a_planted_entry_cannot_run_code(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Even with a matching digest, an entry naming anything but the config's classes is refused."""
    cache = ConfigCache(repo)
    key = cache.key((repo / "modules.yaml").read_bytes(), (repo / "modules.yaml").resolve(), None, ())
    payload = pickle.dumps({"config": _Evil()})

    data = b"deployfw-config-cache-1\n" + hashlib.blake2b(payload, digest_size=32).digest() + payload
    cache.folder.mkdir(parents=True)
    (cache.folder / f"{key}.bin").write_bytes(data)
    monkeypatch.chdir(repo)  # where os.system would have written
    catalog = Catalog()
    load(repo, catalog)
    assert catalog.calls == 1
    assert not (repo / "pwned").exists()


def test_concurrent_writers_and_readers_only_ever_see_whole_entries(repo: Path) -> None:
    expected = load(repo, Catalog())
    cache = ConfigCache(repo)
    key = cache.key((repo / "modules.yaml").read_bytes(), (repo / "modules.yaml").resolve(), None, ())
    seen: list[object] = []
    errors: list[BaseException] = []

    def writer() -> None:
        for _ in range(30):
            cache.put(key, expected, ())

    def reader() -> None:
        try:
            for _ in range(60):
                seen.append(cache.get(key))
        except BaseException as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(3)] + [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert all(item is None or item == expected for item in seen)
    assert any(item == expected for item in seen)
    assert not list(cache.folder.glob(".tmp-*"))


def test_no_cache_variable_bypasses_it(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPLOYFW_NO_CACHE", "1")
    catalog = Catalog()
    load(repo, catalog)
    load(repo, catalog)
    assert catalog.calls == 2 and entries(repo) == []


def test_only_the_newest_entries_are_kept(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(configcache, "KEEP", 3)
    for cluster in "abcde":
        (repo / "modules.yaml").write_text(CONFIG.replace("cluster: c", f"cluster: {cluster}"), encoding="utf-8")
        load(repo, Catalog())
        time.sleep(0.01)
    assert len(entries(repo)) == 3


GRADLE = {
    "settings.gradle": "include ':libs:lib', ':svc:a'\n",
    "svc/a/build.gradle": "dependencies { implementation project(':libs:lib') }\n",
}


def test_a_build_graph_is_cached_with_its_build_files_and_a_changed_one_is_read_again(repo: Path) -> None:
    (repo / "modules.yaml").write_text(
        CONFIG.replace("depends_on: [lib]", "").replace("version: 1", "version: 1\ngraph: gradle")
    )
    for rel, text in GRADLE.items():
        (repo / rel).write_text(text)
    catalog = Catalog()
    assert load(repo, catalog).modules["a"].depends_on == ("lib",)
    assert load(repo, catalog).modules["a"].depends_on == ("lib",)
    assert catalog.calls == 1
    build = repo / "svc" / "a" / "build.gradle"
    build.write_text("// no dependencies any more\n")  # load() ages it: an old time stamp, another size
    assert load(repo, catalog).modules["a"].depends_on == ()
    assert catalog.calls == 2


@pytest.mark.parametrize("fresh", ["svc/a/build.gradle", "svc"])
def test_a_file_or_folder_modified_just_now_is_not_trusted_to_a_cache_entry(repo: Path, fresh: str) -> None:
    config = CONFIG.replace("depends_on: [lib]", "").replace("version: 1", "version: 1\ngraph: gradle")
    (repo / "modules.yaml").write_text(config)
    for rel, text in GRADLE.items():
        (repo / rel).write_text(text)
    catalog = Catalog()
    for _ in range(2):
        age(repo)
        os.utime(repo / fresh)  # now
        configcache.load(repo / "modules.yaml", root=repo, env=None, catalog=catalog)
    assert catalog.calls == 2 and entries(repo) == []


def test_a_module_folder_added_beside_the_others_is_noticed(repo: Path) -> None:
    """A new folder in ``svc/`` changes its time stamp: the next load validates again."""
    load(repo, Catalog())
    (repo / "svc" / "b").mkdir()
    os.utime(repo / "svc", (1_700_000_100, 1_700_000_100))
    catalog = Catalog()
    configcache.load(repo / "modules.yaml", root=repo, env=None, catalog=catalog)
    assert catalog.calls == 1
