"""Which store a command uses (DEPLOYFW_STATE over modules.yaml) and whether CI agents keep its history."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from deployfw.ci import detect_ci
from deployfw.errors import InputError
from deployfw.plugins import PluginManager
from deployfw.state.placement import Placement, placement, require_shared, state_section
from deployfw.state.sqlite import SqliteStore

CODEBUILD = {"CODEBUILD_BUILD_ID": "shop-deploy:1f2e", "CODEBUILD_RESOLVED_SOURCE_VERSION": "a" * 40}
JENKINS = {"JOB_NAME": "shop", "BUILD_NUMBER": "7", "JENKINS_URL": "https://ci.example.com/"}


@pytest.fixture(scope="module")
def registry() -> Any:
    return PluginManager(entry_points=False).backends


def config(state: dict[str, Any] | None = None) -> Any:
    return SimpleNamespace(state=state)


def test_the_variable_replaces_the_config_section(registry: Any) -> None:
    sqlite = {"backend": "sqlite", "path": "x.db"}

    assert state_section(config(), registry, {}) == (None, "default")
    assert state_section(config(sqlite), registry, {}) == (sqlite, "modules.yaml")
    assert state_section(config(sqlite), registry, {"DEPLOYFW_STATE": "{backend: dynamodb, table: deploys}"}) == (
        {"backend": "dynamodb", "table": "deploys"},
        "DEPLOYFW_STATE",
    )
    assert state_section(config(sqlite), registry, {"DEPLOYFW_STATE": "  "}) == (sqlite, "modules.yaml")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{backend: dynamodb", "DEPLOYFW_STATE: not YAML"),
        ("dynamodb", "DEPLOYFW_STATE: must be a mapping like '{backend: dynamodb}', got 'dynamodb'"),
        ("{backend: etcd}", "DEPLOYFW_STATE.backend: unknown state backend 'etcd'; valid: dynamodb, sqlite"),
        ("{backend: dynamodb, tabel: x}", "DEPLOYFW_STATE.tabel: unknown key; valid keys: region, table"),
        ("{backend: sqlite, persistent: yes-ish}", "DEPLOYFW_STATE.persistent: must be a boolean"),
    ],
)
def test_a_bad_variable_is_bad_input_naming_it(registry: Any, value: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        state_section(config(), registry, {"DEPLOYFW_STATE": value})
    assert message in str(caught.value)
    assert caught.value.exit_code == 2


def where(tmp_path: Path, environ: dict[str, str], section: dict[str, Any] | None = None) -> Placement:
    store = SqliteStore(tmp_path / ".deployfw" / "state.db")
    return placement(store, section, "default", detect_ci(environ))


def test_sqlite_on_a_codebuild_agent_warns_what_is_lost_and_how_to_fix_it(tmp_path: Path) -> None:
    found = where(tmp_path, CODEBUILD)

    assert (found.backend, found.shared, found.ci, found.survives) == ("sqlite", False, "CodeBuild", False)
    assert found.warning is not None and "\n" not in found.warning
    assert found.warning.startswith(f"warning: the state store is a sqlite file {tmp_path}/.deployfw/state.db on ")
    assert "this CodeBuild agent's disk" in found.warning
    assert "measures changes from CODEBUILD_WEBHOOK_PREV_COMMIT and does not retry failed modules" in found.warning
    assert "`state: {backend: dynamodb}`" in found.warning and "`deployfw state init`" in found.warning
    assert found.to_json()["warning"] == found.warning


def test_no_warning_where_history_survives(tmp_path: Path, moto_endpoint: str) -> None:
    from deployfw.aws.clients import Aws
    from deployfw.state.dynamodb import DynamoStore

    assert where(tmp_path, {}).warning is None  # a terminal: the disk is the user's
    assert where(tmp_path, JENKINS, {"backend": "sqlite", "persistent": True}).warning is None
    shared = placement(DynamoStore(Aws("us-east-1", endpoint_url=moto_endpoint)), {"backend": "dynamodb"},
                       "DEPLOYFW_STATE", detect_ci(CODEBUILD))  # fmt: skip
    assert (shared.shared, shared.warning) == (True, None)
    assert shared.location == "DynamoDB table deployfw-state in us-east-1"


def test_every_ci_system_is_recognised(tmp_path: Path) -> None:
    github = {"GITHUB_ACTIONS": "true", "GITHUB_SHA": "a" * 40}
    assert "this Jenkins agent's disk" in (where(tmp_path, JENKINS).warning or "")
    assert "this GitHub Actions agent's disk" in (where(tmp_path, github).warning or "")
    generic = where(tmp_path, {"CI": "true"}).warning or ""
    assert "this CI agent's disk" in generic and "measures changes from the CI variables" in generic


def test_requiring_a_shared_store_makes_a_ci_run_on_sqlite_bad_input(tmp_path: Path) -> None:
    required = {"DEPLOYFW_REQUIRE_SHARED_STATE": "true"}

    problem = require_shared(where(tmp_path, CODEBUILD), required)
    assert problem is not None and problem.key == "DEPLOYFW_REQUIRE_SHARED_STATE"
    assert "this CodeBuild run needs a shared state store, but the sqlite store" in problem.message
    persistent = where(tmp_path, CODEBUILD, {"backend": "sqlite", "persistent": True})
    assert require_shared(persistent, required) is not None  # kept between builds, still one agent's
    assert require_shared(where(tmp_path, CODEBUILD), {}) is None  # not asked for: a warning only
    assert require_shared(where(tmp_path, {}), required) is None  # a terminal is not CI
