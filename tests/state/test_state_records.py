"""The record contract both stores keep: lifecycle, bases, history, lookup, scopes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from state_helpers import SCOPE, FakeClock

from deployfw.errors import InputError
from deployfw.state.model import DeployRecord, Scope
from deployfw.state.store import StoreBase

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def rec(run_id: str, commit: str, module: str = "user-api", scope: Scope = SCOPE, minute: int = 0) -> DeployRecord:
    return DeployRecord(scope, module, run_id, commit, started_at=T0 + timedelta(minutes=minute))


def deploy(store: StoreBase, record: DeployRecord, outcome: str | None) -> None:
    store.record_start(record)
    if outcome:
        store.record_end(record.scope, record.module, record.run_id, outcome)


def test_lifecycle_start_progress_end(open_store: Callable[..., StoreBase]) -> None:
    clock = FakeClock(T0.timestamp())
    store = open_store(clock=clock, sleep=clock.sleep)
    store.record_start(DeployRecord(SCOPE, "user-api", "run-1", "a" * 40, image_digest="sha256:1", backend="ecs"))
    started = store.history(SCOPE, "user-api")[0]
    assert (started.outcome, started.started_at, started.ended_at) == ("started", T0, None)
    assert store.in_flight(SCOPE, "user-api") == started  # nobody holds the lock: the run is gone

    store.record_progress(SCOPE, "user-api", "run-1", deployment_id="d-123", extra={"group": "g"})
    store.record_progress(SCOPE, "user-api", "run-1", task_definition="arn:td:1", extra={"app": "a"})
    clock.now += 90
    assert store.record_end(SCOPE, "user-api", "run-1", "succeeded") is True

    done = store.find(SCOPE, "user-api", "run-1")
    assert done is not None
    assert (done.outcome, done.deployment_id, done.task_definition) == ("succeeded", "d-123", "arn:td:1")
    assert done.extra == {"group": "g", "app": "a"}
    assert done.ended_at == T0 + timedelta(seconds=90)
    assert store.in_flight(SCOPE, "user-api") is None
    # A recovering successor that concluded first wins; the late writer is told so and changes nothing.
    assert store.record_end(SCOPE, "user-api", "run-1", "failed", error="late") is False
    assert store.find(SCOPE, "user-api", "run-1").outcome == "succeeded"  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        store.record_start(rec("run-1", "b" * 40))  # a concluded record is never restarted


def test_record_start_is_idempotent_while_started(store: StoreBase) -> None:
    store.record_start(rec("run-1", "abc1234"))
    store.record_progress(SCOPE, "user-api", "run-1", deployment_id="d-1")
    store.record_start(rec("run-1", "abc1234"))  # a repeated call must not lose the deployment id
    assert [(r.run_id, r.deployment_id) for r in store.history(SCOPE, "user-api")] == [("run-1", "d-1")]


def test_misuse_is_refused(store: StoreBase) -> None:
    store.record_start(rec("run-1", "abc1234"))
    with pytest.raises(TypeError):
        store.record_progress(SCOPE, "user-api", "run-1", outcome="succeeded")
    with pytest.raises(ValueError):
        store.record_end(SCOPE, "user-api", "run-1", "started")
    with pytest.raises(KeyError):
        store.record_progress(SCOPE, "user-api", "no-such-run", deployment_id="d")
    with pytest.raises(KeyError):
        store.record_end(SCOPE, "user-api", "no-such-run", "failed")


def test_errors_are_redacted(store: StoreBase, monkeypatch: pytest.MonkeyPatch) -> None:
    from deployfw import redact

    redact.register("hunter2-secret-token")
    store.record_start(rec("run-1", "abc1234"))
    store.record_end(SCOPE, "user-api", "run-1", "failed", error="auth failed with hunter2-secret-token")
    error = store.find(SCOPE, "user-api", "run-1").error  # type: ignore[union-attr]
    assert error and "hunter2-secret-token" not in error


def test_last_success_ignores_failed_started_and_abandoned(store: StoreBase) -> None:
    assert store.last_success(SCOPE, "user-api") is None
    deploy(store, rec("r1", "c1" * 20, minute=1), "succeeded")
    deploy(store, rec("r2", "c2" * 20, minute=2), "failed")
    deploy(store, rec("r3", "c3" * 20, minute=3), "rolled_back")
    deploy(store, rec("r4", "c4" * 20, minute=4), "abandoned")
    deploy(store, rec("r5", "c5" * 20, minute=5), None)
    deploy(store, rec("o1", "d1" * 20, module="order-api", minute=9), "succeeded")
    last = store.last_success(SCOPE, "user-api")
    assert last is not None and (last.run_id, last.commit) == ("r1", "c1" * 20)
    deploy(store, rec("r6", "c6" * 20, minute=6), "succeeded")
    assert store.last_success(SCOPE, "user-api").run_id == "r6"  # type: ignore[union-attr]


def test_history_is_newest_first_and_limited(store: StoreBase) -> None:
    for minute in (3, 1, 4, 2, 0):  # recorded out of order
        deploy(store, rec(f"r{minute}", f"{minute:040d}", minute=minute), "succeeded")
    assert [r.run_id for r in store.history(SCOPE, "user-api")] == ["r4", "r3", "r2", "r1", "r0"]
    assert [r.run_id for r in store.history(SCOPE, "user-api", limit=2)] == ["r4", "r3"]
    assert store.history(SCOPE, "other") == []


def test_find_by_run_id_and_commit_prefix(store: StoreBase) -> None:
    deploy(store, rec("run-a", "abcdef0123" + "0" * 30, minute=1), "succeeded")
    deploy(store, rec("run-b", "abcdef0123" + "0" * 30, minute=2), "failed")
    deploy(store, rec("run-c", "abcd99" + "1" * 34, minute=3), "succeeded")

    assert store.find(SCOPE, "user-api", "run-a").run_id == "run-a"  # type: ignore[union-attr]
    assert store.find(SCOPE, "user-api", "abcdef01").run_id == "run-b"  # type: ignore[union-attr]  newest
    hit = store.find(SCOPE, "user-api", "abcdef01", outcome="succeeded")
    assert hit is not None and hit.run_id == "run-a"
    assert store.find(SCOPE, "user-api", "abcd99").run_id == "run-c"  # type: ignore[union-attr]
    with pytest.raises(InputError, match="ambiguous"):
        store.find(SCOPE, "user-api", "abcd")
    assert store.find(SCOPE, "user-api", "abc") is None  # too short to be a commit
    assert store.find(SCOPE, "user-api", "ffff") is None
    assert store.find(SCOPE, "user-api", "run-b", outcome="succeeded") is None


def test_scopes_are_isolated(store: StoreBase) -> None:
    sandbox = Scope("123456789012", "us-east-1", None)
    real = Scope("987654321098", "us-east-1", None)
    prod = Scope("987654321098", "us-east-1", "prod")
    other_region = Scope("987654321098", "eu-west-1", None)
    deploy(store, rec("sandbox-run", "a" * 40, scope=sandbox), "succeeded")
    deploy(store, rec("real-run", "b" * 40, scope=real), "failed")
    deploy(store, rec("prod-run", "c" * 40, scope=prod), None)

    assert store.last_success(sandbox, "user-api").run_id == "sandbox-run"  # type: ignore[union-attr]
    assert store.last_success(real, "user-api") is None
    assert [r.run_id for r in store.history(real, "user-api")] == ["real-run"]
    assert store.in_flight(real, "user-api") is None
    assert store.in_flight(prod, "user-api").run_id == "prod-run"  # type: ignore[union-attr]
    assert store.find(real, "user-api", "sandbox-run") is None
    assert store.find(real, "user-api", "aaaa") is None
    assert store.modules(other_region) == {}
    with store.acquire(sandbox, "user-api", "x", mode="fail"), store.acquire(real, "user-api", "y", mode="fail"):
        assert store.lock_info(prod, "user-api") is None  # each scope has its own lock


def test_modules_gives_the_latest_record_of_each(store: StoreBase) -> None:
    deploy(store, rec("u1", "a" * 40, minute=1), "succeeded")
    deploy(store, rec("u2", "b" * 40, minute=2), "failed")
    deploy(store, rec("o1", "c" * 40, module="order-api", minute=0), None)
    latest = store.modules(SCOPE)
    assert sorted(latest) == ["order-api", "user-api"]
    assert (latest["user-api"].run_id, latest["user-api"].outcome) == ("u2", "failed")
    assert latest["order-api"].outcome == "started"


def test_in_flight_skips_the_live_holder_and_finds_the_dead_one(store: StoreBase) -> None:
    deploy(store, rec("dead-run", "a" * 40, minute=1), None)
    with store.acquire(SCOPE, "user-api", "live-run", mode="fail") as lease:
        deploy(store, rec("live-run", "b" * 40, minute=2), None)
        stale = store.in_flight(SCOPE, "user-api")
        assert stale is not None and stale.run_id == "dead-run"
        assert store.record_end(SCOPE, "user-api", "dead-run", "abandoned", error="killed before CreateDeployment")
        assert store.in_flight(SCOPE, "user-api") is None  # the live run's own record is not in flight
        lease.check()
