"""Rollback pins in both stores: one per (scope, module), newest wins, released only as asked.

Runs against sqlite and DynamoDB (moto) through the same parametrised ``store`` fixture, so both
backends keep the same promises: a pin survives reopening the store (a killed process, another
agent), an older rollback's late write never replaces a newer pin, and a run that planned around
one pin never releases the pin a later rollback set.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from state_helpers import SCOPE

from deployfw.state import KeepsPins, Pin, Scope
from deployfw.state.sqlite import SqliteStore
from deployfw.state.store import StoreBase

T0 = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)


def pin(module: str = "user-api", run_id: str = "rb-1", at: datetime = T0, **kw: Any) -> Pin:
    fields: dict[str, Any] = {"commit": "a" * 40, "since": "b" * 40, "task_definition": "arn:td/user-api:3"}
    return Pin(SCOPE, module, run_id, pinned_at=at, **{**fields, **kw})


def test_a_pin_is_kept_and_read_back_by_another_handle(store: StoreBase, open_store: Callable[..., StoreBase]) -> None:
    assert isinstance(store, KeepsPins)
    assert store.get_pin(SCOPE, "user-api") is None and store.pins(SCOPE) == {}

    assert store.set_pin(pin(image_uri="repo@sha256:" + "1" * 64, rollback_of="run-7")) is True
    assert store.set_pin(pin("order-api", "rb-2")) is True

    other = open_store()  # a new process or another agent
    assert isinstance(other, KeepsPins)
    found = other.get_pin(SCOPE, "user-api")
    assert found == pin(image_uri="repo@sha256:" + "1" * 64, rollback_of="run-7")
    assert list(other.pins(SCOPE)) == ["order-api", "user-api"]
    assert other.pins(Scope("123456789012", "us-east-1", "prod")) == {}  # another environment: not pinned


def test_a_newer_pin_replaces_an_older_one_but_never_the_reverse(store: StoreBase) -> None:
    assert isinstance(store, KeepsPins)
    assert store.set_pin(pin(run_id="rb-1", at=T0))
    assert store.set_pin(pin(run_id="rb-2", at=T0 + timedelta(minutes=5), commit="c" * 40))

    late = pin(run_id="rb-1", at=T0)  # the first rollback's write, retried after the second landed
    assert store.set_pin(late) is False

    current = store.get_pin(SCOPE, "user-api")
    assert current is not None and (current.run_id, current.commit) == ("rb-2", "c" * 40)


def test_release_removes_only_the_pin_it_names(store: StoreBase) -> None:
    assert isinstance(store, KeepsPins)
    store.set_pin(pin(run_id="rb-2"))

    assert store.release_pin(SCOPE, "user-api", "rb-1") is None  # planned around an older pin: keep the new one
    assert store.get_pin(SCOPE, "user-api") is not None

    released = store.release_pin(SCOPE, "user-api", "rb-2")
    assert released is not None and released.run_id == "rb-2"
    assert store.get_pin(SCOPE, "user-api") is None
    assert store.release_pin(SCOPE, "user-api") is None  # nothing left: `unpin` says "not pinned"

    store.set_pin(pin(run_id="rb-3"))
    unpinned = store.release_pin(SCOPE, "user-api")  # `deployfw unpin`: whatever pin there is
    assert unpinned is not None and unpinned.run_id == "rb-3" and store.pins(SCOPE) == {}


def test_pins_stay_out_of_deploy_history(store: StoreBase) -> None:
    assert isinstance(store, KeepsPins)
    store.set_pin(pin())

    assert store.history(SCOPE, "user-api") == []
    assert store.modules(SCOPE) == {}
    assert store.last_success(SCOPE, "user-api") is None


def test_a_state_file_from_before_pins_reads_as_unpinned(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as con:  # an older deployfw's file: records and locks only
        con.execute("CREATE TABLE records (scope TEXT, module TEXT, run_id TEXT, time_key TEXT, outcome TEXT,"
                    " commit_sha TEXT, data TEXT, PRIMARY KEY (scope, module, run_id))")  # fmt: skip
    store = SqliteStore(path)

    assert store.pins(SCOPE) == {} and store.get_pin(SCOPE, "user-api") is None
    assert store.set_pin(pin()) is True  # the first write adds the table
    assert store.get_pin(SCOPE, "user-api") == pin()


def test_the_reason_names_the_rollback_and_how_to_release_it() -> None:
    assert pin().reason() == "pinned by rollback rb-1 at 2025-03-04 05:06 UTC; `deployfw unpin user-api` to release"
    assert Pin.from_json(pin().to_json()) == pin()


def test_a_pin_holds_while_its_rollback_is_in_flight_or_done_and_not_after_it_failed(store: StoreBase) -> None:
    from deployfw.runstate import RunState
    from deployfw.state import DeployRecord

    state = RunState(store, SCOPE, "run-9")
    assert state.void_reason(pin(run_id="rb-1")) == "its rollback recorded no deploy"  # killed before it began

    store.record_start(DeployRecord(SCOPE, "user-api", "rb-1", "a" * 40))
    assert state.void_reason(pin(run_id="rb-1")) is None  # killed mid-way: on its way to the pinned revision
    store.record_end(SCOPE, "user-api", "rb-1", "succeeded")
    assert state.void_reason(pin(run_id="rb-1")) is None

    store.record_start(DeployRecord(SCOPE, "user-api", "rb-2", "a" * 40))
    store.record_end(SCOPE, "user-api", "rb-2", "rolled_back", error="health checks failed")
    assert state.void_reason(pin(run_id="rb-2")) == "its rollback was rolled back"


def test_a_run_releases_the_pin_it_deployed_over_only_when_the_deploy_succeeds(store: StoreBase) -> None:
    from deployfw.backends import DeployOutcome
    from deployfw.runstate import RunState

    assert isinstance(store, KeepsPins)
    held = pin("order-api", run_id="rb-0")
    store.set_pin(held)
    for run_id, ok in (("run-1", False), ("run-2", True)):
        store.set_pin(pin(run_id="rb-1"))
        state = RunState(store, SCOPE, run_id, releasing={"user-api": pin(run_id="rb-1")})
        state.started("user-api", "d" * 40, image_uri=None, digest=None, backend="ecs-bluegreen")
        state.ended("user-api", DeployOutcome(ok, None if ok else "health checks failed"))

        rows = {(r["module"], r["status"]) for r in state.pin_report({"order-api": held})}
        if ok:
            assert store.get_pin(SCOPE, "user-api") is None
            assert rows == {("order-api", "held"), ("user-api", "released")}
        else:
            assert store.get_pin(SCOPE, "user-api") is not None  # the service is back on the pinned revision
            assert rows == {("order-api", "held"), ("user-api", "kept")}
