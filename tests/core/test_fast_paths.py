"""The fast paths of config loading give exactly what the slow, line-tracking paths give.

Parsing skips line bookkeeping and validation runs a compiled yes/no checker; both
fall back to the full machinery when there is something to report. These tests pin
that the shortcut never changes a value, a verdict, or a line in a message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from deployfw import yamlsrc
from deployfw.config import load_config
from deployfw.errors import InputError
from deployfw.schema import checker, modules_schema, validate

DOCS = [
    "a: 1\nb: [x, 'y', 2.5, null, true]\nc: {d: e}\n",
    "when: 2024-01-02\nn: 0x10\nempty:\nq: '1'\n",
    "base: &b {x: 1, y: [1, 2]}\nuse: *b\n",
    "base: &b {x: 1}\nmerged:\n  <<: *b\n  y: 2\n",  # merge key: full walker
    "1: one\ntrue: yes\n",  # non-string keys: full walker
    "a: !!str 5\nb: !!int '7'\n",
    "- [1, 2]\n- {a: b}\n- plain\n",
    "just a scalar\n",
]


@pytest.mark.parametrize("text", DOCS)
def test_fast_parse_builds_the_full_walkers_values_and_lines(text: str) -> None:
    doc = yamlsrc.parse(text, "f.yaml")
    data, lines, problems = yamlsrc._full_walk(text, "f.yaml")
    assert doc.data == data
    assert doc.lines == lines
    assert doc.problems == problems == []


def test_lines_are_computed_lazily_and_exactly() -> None:
    text = "version: 1\nmodules:\n  a:\n    path: svc/a\n    depends_on:\n      - b\n      - c\n"
    doc = yamlsrc.parse(text, "modules.yaml")
    assert doc._lines is None  # nothing asked for a line yet
    assert doc.line(("modules", "a", "depends_on", 1)) == 7
    assert doc.line(("modules", "a", "path")) == 4
    assert doc.line(("modules", "a", "nope")) == 3  # nearest ancestor
    assert doc.problem(("modules", "a", "path"), "bad").__str__() == "modules.yaml:4: modules.a.path: bad"


def test_duplicate_keys_still_reported_with_both_lines() -> None:
    text = "a: 1\nb: 2\na: 3\n"
    with pytest.raises(InputError) as caught:
        yamlsrc.parse(text, "f.yaml")
    assert [str(p) for p in caught.value.problems] == ["f.yaml:3: a: duplicate key (first defined on line 1)"]
    doc = yamlsrc.parse(text, "f.yaml", strict=False)
    assert doc.data == {"a": 1, "b": 2}
    assert [p.line for p in doc.problems] == [3]


def test_unknown_tag_is_a_located_error() -> None:
    with pytest.raises(InputError) as caught:
        yamlsrc.parse("a: !nope x\n", "f.yaml")
    assert str(caught.value).startswith("f.yaml:1: could not determine a constructor for the tag '!nope'")


def test_document_built_by_hand_keeps_its_lines() -> None:
    doc = yamlsrc.Document("f.json", {"a": 1}, {("a",): 3})
    doc.lines.update({("b",): 4})
    assert doc.line(("b", "c")) == 4


SHAPES: list[Any] = [
    {"version": 1, "modules": {}},
    {"version": 1, "modules": {"a": {"path": "svc/a", "depends_on": ["b"], "kind": "library"}}},
    {"version": 2, "modules": {}},
    {"version": True, "modules": {}},  # True == 1, as in validate
    {"modules": {}},
    {"version": 1, "modules": {"bad name": {"path": "x"}}},
    {"version": 1, "modules": {"a": {"path": ""}}},
    {"version": 1, "modules": {"a": {}}},
    {"version": 1, "modules": {"a": {"path": "x", "kind": "daemon"}}},
    {"version": 1, "modules": {"a": {"path": "x", "depends_on": "b"}}},
    {"version": 1, "modules": {"a": {"path": "x", "depends_on": [1]}}},
    {"version": 1, "modules": {"a": {"path": "x", "colour": "red"}}},
    {"version": 1, "modules": {"a": {"path": "x", "deploy": []}}},
    {"version": 1, "modules": [], "region": "moon-1"},
    {"version": 1, "modules": {}, "region": "ap-northeast-2", "shared_paths": ["", "x"]},
    {"version": 1, "modules": {}, "environments": {"prod": {"modules": {"a": {"colour": 1}}}}},
    {"version": 1, "modules": {}, "environments": {"prod": {"modules": {"a": {"kind": "library"}}}}},
    {"version": 1, "modules": {}, "defaults": {"deploy": {"backend": "x", "cluster": "c"}, "test": {}}},
    {"version": 1, "modules": {}, "execution_mode": "later"},
    "not a mapping",
]


@pytest.mark.parametrize("value", SHAPES)
def test_checker_agrees_with_validate(value: Any) -> None:
    schema = modules_schema()
    assert checker(schema)(value) == (not list(validate(value, schema)))


def test_checker_covers_minimum() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 2}}}
    for value in ({"n": 1}, {"n": 2}, {"n": "2"}, {"n": True}):
        assert checker(schema)(value) == (not list(validate(value, schema)))


def test_invalid_config_lines_come_from_the_overlay_after_fast_parse(tmp_path: Path) -> None:
    (tmp_path / "svc" / "a").mkdir(parents=True)
    (tmp_path / "modules.yaml").write_text(
        "version: 1\n"
        "modules:\n"
        "  a:\n"
        "    path: svc/a\n"
        "    deploy: {backend: ecs-rolling, taskdef: /abs.json}\n"
        "environments:\n"
        "  prod:\n"
        "    modules:\n"
        "      a:\n"
        "        deploy: {taskdef: ../out.json}\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError) as caught:
        load_config(tmp_path / "modules.yaml")
    assert [str(p) for p in caught.value.problems] == [
        "modules.yaml:5: modules.a.deploy.taskdef: '/abs.json' must be a path relative to the repository root"
    ]
    with pytest.raises(InputError) as caught:
        load_config(tmp_path / "modules.yaml", env="prod")
    assert [str(p) for p in caught.value.problems] == [
        "modules.yaml:10: modules.a.deploy.taskdef: '../out.json' escapes the repository"
    ]


def test_file_key_from_defaults_is_located_in_defaults(tmp_path: Path) -> None:
    (tmp_path / "svc" / "a").mkdir(parents=True)
    (tmp_path / "modules.yaml").write_text(
        "version: 1\ndefaults:\n  deploy:\n    backend: ecs-rolling\n    appspec: ../x.yaml\n"
        "modules:\n  a: {path: svc/a}\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError) as caught:
        load_config(tmp_path / "modules.yaml")
    assert [str(p) for p in caught.value.problems] == [
        "modules.yaml:5: defaults.deploy.appspec: '../x.yaml' escapes the repository"
    ]


def test_gc_is_paused_only_while_loading(tmp_path: Path) -> None:
    import gc

    from deployfw.config import gc_paused

    (tmp_path / "svc" / "a").mkdir(parents=True)
    good = tmp_path / "modules.yaml"
    good.write_text("version: 1\nmodules:\n  a: {path: svc/a}\n", encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nmodules:\n  a: {path: svc/nope}\n", encoding="utf-8")
    assert gc.isenabled()
    load_config(good)
    assert gc.isenabled()
    with pytest.raises(InputError):
        load_config(bad)
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        load_config(good)  # nested: leaves the outer pause alone
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        load_config(good)
        assert not gc.isenabled()  # a caller's own choice is kept
    finally:
        gc.enable()


def test_owner_lookup_starting_at_module_depth_matches_the_longest_prefix() -> None:
    from deployfw.detect import _Index

    owners = {"a": "A", "a/b/c": "C", "x/y": "Y", "deep/er/still/mod": "D", "file.txt": "F"}
    index = _Index(owners=owners, references={}, shared=None, depth=4)

    def brute(path: str) -> str | None:
        parts = path.split("/")
        for n in range(len(parts), 0, -1):
            if "/".join(parts[:n]) in owners:
                return owners["/".join(parts[:n])]
        return None

    paths = [
        "a", "a/x", "a/b", "a/b/c", "a/b/c/d/e/f.txt", "a/b/cd/e", "x/y", "x/y/z/w/v", "x/yz", "x",
        "deep/er/still/mod/src/Main.java", "deep/er/still/other/f", "deep/er/still/mod", "file.txt", "file.txt/x", "",
        "zzz/q",
    ]  # fmt: skip
    for path in paths:
        assert index.owner(path) == brute(path), path
    assert _Index(owners={}, references={}, shared=None).owner("a/b") is None
