"""Registration through the plugin hook, opening a store for a run, and the DynamoDB table."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from state_helpers import SCOPE, open_spec

from deployfw.backends import RunContext
from deployfw.errors import InputError
from deployfw.plugins import PluginManager
from deployfw.state import DeployRecord, open_store, run_scope
from deployfw.state.dynamodb import DynamoStore, create_table
from deployfw.state.sqlite import SqliteStore


def make_ctx(root: Path, endpoint: str | None = None, env: str | None = None) -> RunContext:
    config: Any = SimpleNamespace(root=root, env=env)
    return RunContext(config=config, head="h" * 40, run_id="run-1", region="us-east-1", endpoint_url=endpoint)


def test_both_stores_are_registered_by_the_builtin_plugin() -> None:
    specs = {s.id: s for s in PluginManager(entry_points=False).backends.specs() if s.stage == "state"}
    assert sorted(specs) == ["dynamodb", "sqlite"]
    assert {s.plugin for s in specs.values()} == {"state"}
    assert "table" in specs["dynamodb"].schema["properties"]
    assert "path" in specs["sqlite"].schema["properties"]


def test_sqlite_is_the_default_under_the_repository_root(tmp_path: Path) -> None:
    registry = PluginManager(entry_points=False).backends
    ctx = make_ctx(tmp_path)
    store = open_store(registry, ctx)
    assert isinstance(store, SqliteStore) and store.path == tmp_path / ".deployfw" / "state.db"
    assert not (tmp_path / ".deployfw").exists()  # opened to read (plan): nothing is created
    store.create()
    assert (tmp_path / ".deployfw" / ".gitignore").read_text().strip().endswith("*")
    assert open_store(registry, ctx) is store  # one store per run
    other = open_store(registry, make_ctx(tmp_path), {"backend": "sqlite", "path": "var/deploys.db"})
    assert other.path == tmp_path / "var" / "deploys.db"  # type: ignore[attr-defined]
    with pytest.raises(InputError, match="unknown state backend 'etcd'; valid: dynamodb, sqlite"):
        open_store(registry, make_ctx(tmp_path), {"backend": "etcd"})


def test_dynamodb_store_and_scope_through_the_run_aws_boundary(tmp_path: Path, moto_endpoint: str) -> None:
    registry = PluginManager(entry_points=False).backends
    ctx = make_ctx(tmp_path, moto_endpoint, env="prod")
    store = open_store(registry, ctx, {"backend": "dynamodb", "table": "plugin-table"})
    assert isinstance(store, DynamoStore) and store.table == "plugin-table"
    assert create_table(store.aws) is True
    assert create_table(store.aws, "plugin-table") is True and create_table(store.aws, "plugin-table") is False
    scope = run_scope(ctx)
    assert (scope.account, scope.region, scope.env) == ("123456789012", "us-east-1", "prod")
    store.record_start(DeployRecord(scope, "user-api", "run-1", "a" * 40))
    assert store.in_flight(scope, "user-api") is not None


def test_opening_a_store_imports_no_boto3_until_dynamodb(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from deployfw.state import open_store; "
        "from deployfw.state.sqlite import SqliteStore; SqliteStore(Path(sys.argv[1]) / 's.db'); "
        "from deployfw.plugins import PluginManager; PluginManager(entry_points=False); "
        "assert 'boto3' not in sys.modules, 'boto3 imported'"
    )
    import subprocess

    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True)


class _LostResponses:
    """An Aws stand-in whose writes land twice, as when the retry policy repeats a write whose answer was lost."""

    def __init__(self, aws: Any) -> None:
        self._aws, self.region = aws, aws.region

    def call(self, service: str, operation: str, **params: Any) -> dict[str, Any]:
        if operation in ("put_item", "update_item"):
            self._aws.call(service, operation, **params)
        return self._aws.call(service, operation, **params)


def test_dynamodb_writes_repeated_by_retries_are_recognised(dynamo_spec: dict[str, Any]) -> None:
    real = open_spec(dynamo_spec)
    store = DynamoStore(_LostResponses(real.aws), dynamo_spec["table"])  # type: ignore[attr-defined, arg-type]
    store.record_start(DeployRecord(SCOPE, "user-api", "run-1", "a" * 40))
    store.record_progress(SCOPE, "user-api", "run-1", deployment_id="d-1")
    assert store.record_end(SCOPE, "user-api", "run-1", "succeeded") is True  # ours, though the repeat failed
    assert store.record_end(SCOPE, "user-api", "run-1", "failed") is False
    with store.acquire(SCOPE, "user-api", "run-2", mode="fail") as lease:
        lease.verify()
        assert real.lock_info(SCOPE, "user-api").run_id == "run-2"  # type: ignore[union-attr]
    with store.acquire(SCOPE, "user-api", "run-3", mode="supersede") as lease:
        lease.verify()
    assert real.last_success(SCOPE, "user-api").deployment_id == "d-1"  # type: ignore[union-attr]
