"""The ``notify:`` section: a top-level section the notify plugin owns, validated like the core's.

Checked through the real plugin manager (the built-in plugin registers the section
with ``registry.add_section``) and the real config loader: problems name file, line
and key; the environment's overlay is deep-merged over the section; ``deployfw
schema`` shows it; ``detect`` (no plugins loaded) leaves it alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deployfw.backends import BackendRegistry
from deployfw.config import load_config
from deployfw.errors import InputError
from deployfw.plugins import PluginManager
from deployfw.schema import modules_schema
from deployfw.testing import run_cli, terminal_env
from deployfw_notify.settings import EVENTS, settings_of

BASE = """\
version: 1
project: shop
modules:
  api:
    path: svc/api
    build: {backend: local}
    registry: {backend: ecr}
    deploy: {backend: ecs-rolling, cluster: c, taskdef: svc/api/taskdef.json}
"""
NOTIFY = """\
notify:
  events: [run_end, module_failed]
  slack:
    - url_from: env:SLACK_WEBHOOK_URL
      name: deploys
  sns:
    - topic_arn: arn:aws:sns:ap-northeast-2:123456789012:deploys
      events: [rolled_back]
environments:
  prod:
    notify:
      events: [run_start, run_end, module_failed, rolled_back]
      teams:
        - url_from: secretsmanager:deployfw/teams#url
"""


@pytest.fixture
def write(tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "svc/api").mkdir(parents=True)

    def put(text: str) -> Path:
        path = tmp_path / "modules.yaml"
        path.write_text(text)
        return path

    return put


def catalog():  # type: ignore[no-untyped-def]
    return PluginManager(entry_points=False).backends.catalog()


def problems(path: Path) -> list[str]:
    with pytest.raises(InputError) as caught:
        load_config(path, catalog=catalog())
    return [str(p) for p in caught.value.problems]


def test_the_section_and_its_overlay_reach_the_plugin(write) -> None:  # type: ignore[no-untyped-def]
    path = write(BASE + NOTIFY)
    plain = load_config(path, catalog=catalog())
    assert plain.sections["notify"]["events"] == ["run_end", "module_failed"]
    settings = settings_of(plain.sections["notify"])
    assert settings is not None
    assert [(t.kind, t.label, sorted(t.events)) for t in settings.targets] == [
        ("slack", "slack 'deploys'", ["module_failed", "run_end"]),
        ("sns", "sns#1", ["rolled_back"]),
    ]
    prod = load_config(path, env="prod", catalog=catalog())
    merged = prod.sections["notify"]
    assert merged["events"] == list(EVENTS), "the overlay's value wins"
    assert merged["slack"] == plain.sections["notify"]["slack"], "what the overlay does not name stays"
    assert merged["teams"] == [{"url_from": "secretsmanager:deployfw/teams#url"}]
    assert "notify" not in prod.modules["api"].effective
    silenced = settings_of({**plain.sections["notify"], "events": []})
    assert silenced is not None and all(t.events == frozenset() for t in silenced.targets if t.kind == "slack")


def test_mistakes_are_located_by_file_line_and_key(write) -> None:  # type: ignore[no-untyped-def]
    text = BASE + NOTIFY.replace("env:SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T/B/x")
    text = text.replace("events: [rolled_back]", "events: [rolled_back, deployed]")
    text = text.replace("      teams:", "      temas:")
    found = problems(write(text))
    assert found[0].startswith("modules.yaml:12: notify.slack[0].url_from: 'https://hooks.slack.com/")
    assert "does not match" in found[0]
    assert found[1] == (
        "modules.yaml:16: notify.sns[0].events[1]: unknown value 'deployed'; expected one of: "
        "run_start, run_end, module_failed, rolled_back"
    )
    assert found[2].startswith("modules.yaml:21: environments.prod.notify.temas: unknown key; valid keys: chime,")
    assert len(found) == 3


def test_a_target_without_its_address_is_refused(write) -> None:  # type: ignore[no-untyped-def]
    found = problems(write(BASE + "notify:\n  slack:\n    - name: deploys\n  sns:\n    - {}\n"))
    assert found == [
        "modules.yaml:11: notify.slack[0]: missing required key 'url_from'",
        "modules.yaml:13: notify.sns[0]: missing required key 'topic_arn'",
    ]


def test_an_unknown_top_level_key_lists_the_plugin_sections(write) -> None:  # type: ignore[no-untyped-def]
    found = problems(write(BASE + "notfy:\n  slack: []\n"))
    assert len(found) == 1 and found[0].startswith("modules.yaml:9: notfy: unknown key; valid keys:")
    assert "notify" in found[0]


def test_detect_loads_no_plugins_and_leaves_the_section_alone(write) -> None:  # type: ignore[no-untyped-def]
    path = write(BASE + NOTIFY)
    assert load_config(path).sections["notify"]["events"] == ["run_end", "module_failed"]
    with pytest.raises(InputError) as caught:  # a scalar is no section: still a mistake without plugins
        load_config(write(BASE + "colour: blue\n"))
    assert str(caught.value).startswith("modules.yaml:9: colour: unknown key")


def test_schema_command_shows_the_section_for_editors(write) -> None:  # type: ignore[no-untyped-def]
    path = write(BASE)
    done = run_cli(terminal_env(), path.parent, "schema")
    assert done.code == 0, done.output
    import json

    schema = json.loads(done.stdout)
    assert schema["properties"]["notify"]["properties"]["slack"]["items"]["required"] == ["url_from"]
    overlay = schema["properties"]["environments"]["additionalProperties"]
    assert "notify" in overlay["properties"]


def test_a_plugin_cannot_own_a_core_key_or_anothers_section() -> None:
    registry = BackendRegistry()
    registry.set_owner("one", "1")
    registry.add_section("audit", schema={"type": "object"})
    registry.set_owner("two", "1")
    with pytest.raises(InputError, match="section 'audit' is already owned by one"):
        registry.add_section("audit", schema={"type": "object"})
    assert [s.name for s in registry.sections()] == ["audit"]
    assert "audit" in modules_schema(registry.catalog())["properties"]
    registry.add_section("modules", schema={"type": "object"})
    with pytest.raises(InputError, match=r"plugins\.two: section 'modules' is a core key of modules\.yaml"):
        registry.catalog()
