"""Scopes and records: keys, defaults and the JSON form both backends share."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from deployfw.state.model import DeployRecord, Scope, apply_fields


def test_scope_defaults_env_and_keys_round_trip() -> None:
    scope = Scope("123456789012", "ap-northeast-2", None)
    assert scope.env == "default"
    assert Scope.from_key(scope.key) == scope
    assert str(scope) == "123456789012/ap-northeast-2/default"
    assert Scope("1", "r", "prod") != Scope("2", "r", "prod")


@pytest.mark.parametrize("bad", ["", "a#b", "a/b"])
def test_key_parts_cannot_hold_separators(bad: str) -> None:
    with pytest.raises(ValueError):
        Scope("123", "us-east-1", bad or "x#")
    with pytest.raises(ValueError):
        DeployRecord(Scope("1", "r"), bad, "run", "c")


def test_record_json_round_trip() -> None:
    record = DeployRecord(
        Scope("1", "us-east-1", "prod"),
        "user-api",
        "run-1",
        "a" * 40,
        outcome="rolled_back",
        image_digest="sha256:" + "b" * 64,
        image_uri="1.dkr.ecr.us-east-1.amazonaws.com/user-api@sha256:" + "b" * 64,
        task_definition="arn:aws:ecs:us-east-1:1:task-definition/user-api:7",
        deployment_id="d-ABC",
        backend="ecs-bluegreen",
        started_at=datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        ended_at=datetime(2024, 1, 2, 3, 9, 0, tzinfo=UTC),
        error="health checks failed",
        extra={"application": "shop-user-api"},
    )
    data = record.to_dict()
    assert data["started_at"] == "2024-01-02T03:04:05.000006Z" and data["env"] == "prod"
    assert DeployRecord.from_json(record.to_json()) == record
    assert record.finished


def test_unknown_outcomes_and_fields_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown outcome"):
        DeployRecord(Scope("1", "r"), "m", "run", "c", outcome="done")  # type: ignore[arg-type]
    record = DeployRecord(Scope("1", "r"), "m", "run", "c", extra={"a": 1})
    assert apply_fields(record, {"extra": {"b": 2}}).extra == {"a": 1, "b": 2}
    with pytest.raises(TypeError):
        apply_fields(record, {"run_id": "other"})
