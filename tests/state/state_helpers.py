"""Shared by the state tests and the child processes they start: open a store from a plain spec.

A spec is a JSON-able dict (``{"kind": "sqlite", "path": ...}`` or ``{"kind": "dynamodb",
"endpoint": ..., "table": ..., "region": ...}``) so that a subprocess can open the same store
as the test. Run as a script, this module is the child: ``hold`` takes a lock and a started
record and waits to be killed; ``loop`` checks mutual exclusion with a marker file.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deployfw.state.model import DeployRecord, Scope
from deployfw.state.store import StoreBase

_AWS: dict[tuple[str, str], Any] = {}
SCOPE = Scope("123456789012", "us-east-1", "sandbox")


class FakeClock:
    """A wall clock that only moves when the code under test sleeps: queue deadlines in no time."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def open_spec(spec: dict[str, Any], *, clock: Callable[[], float] = time.time, sleep: Any = time.sleep) -> StoreBase:
    if spec["kind"] == "sqlite":
        from deployfw.state.sqlite import SqliteStore

        return SqliteStore(spec["path"], clock=clock, sleep=sleep)
    from deployfw.aws.clients import Aws
    from deployfw.state.dynamodb import DynamoStore

    key = (spec["region"], spec["endpoint"])
    if key not in _AWS:  # a boto3 client costs ~0.3 s to create; one per endpoint is shared by threads
        _AWS[key] = Aws(spec["region"], endpoint_url=spec["endpoint"], deadline=20)
    aws = _AWS[key]
    return DynamoStore(aws, spec["table"], clock=clock, sleep=sleep)


def _hold(store: StoreBase, module: str, run_id: str, lease: float) -> None:
    held = store.acquire(SCOPE, module, run_id, mode="fail", lease_seconds=lease)
    store.record_start(DeployRecord(SCOPE, module, run_id, "c0ffee" + run_id))
    store.record_progress(SCOPE, module, run_id, deployment_id=f"d-{run_id}")
    print(f"acquired {held.generation}", flush=True)
    time.sleep(600)


def _loop(store: StoreBase, module: str, run_id: str, iterations: int, marker: Path) -> None:
    overlaps = 0
    for i in range(iterations):
        with store.acquire(SCOPE, module, f"{run_id}-{i}", mode="queue", lease_seconds=5, wait_deadline=30):
            try:
                marker.mkdir()  # atomic: fails if another holder is inside
            except FileExistsError:
                overlaps += 1
                continue
            time.sleep(0.02)
            marker.rmdir()
    print(f"done {overlaps}", flush=True)


if __name__ == "__main__":
    command, spec_json, module, run_id, *rest = sys.argv[1:]
    store = open_spec(json.loads(spec_json))
    if command == "hold":
        _hold(store, module, run_id, float(rest[0]))
    else:
        _loop(store, module, run_id, int(rest[0]), Path(rest[1]))
