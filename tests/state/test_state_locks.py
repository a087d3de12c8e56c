"""The lock contract both stores keep: modes, leases, renewal, takeover after a crash, exclusivity."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from state_helpers import SCOPE, FakeClock

from deployfw.errors import EXIT_LOCKED, LockHeldError
from deployfw.state.locks import Lease, Superseded
from deployfw.state.store import StoreBase

MODULE = "user-api"


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def read_line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line, f"child exited with {proc.wait()} before answering"
    return line


def test_fail_mode_raises_at_once(open_store: Callable[..., StoreBase]) -> None:
    clock = FakeClock()
    holder, other = open_store(), open_store(clock=clock, sleep=clock.sleep)
    with holder.acquire(SCOPE, MODULE, "run-1", mode="fail"):
        with pytest.raises(LockHeldError, match="locked by run run-1") as raised:
            other.acquire(SCOPE, MODULE, "run-2", mode="fail")
        assert raised.value.exit_code == EXIT_LOCKED
        assert clock.slept == []  # no waiting at all
    with other.acquire(SCOPE, MODULE, "run-2", mode="fail") as lease:  # released: free again
        assert lease.generation == 2


def test_queue_gives_up_at_the_deadline(open_store: Callable[..., StoreBase]) -> None:
    clock = FakeClock()
    holder, queued = open_store(), open_store(clock=clock, sleep=clock.sleep)
    with (
        holder.acquire(SCOPE, MODULE, "run-1", mode="fail", lease_seconds=60),
        pytest.raises(LockHeldError, match="gave up waiting after 5s"),
    ):
        queued.acquire(SCOPE, MODULE, "run-2", mode="queue", wait_deadline=5)
    assert sum(clock.slept) == pytest.approx(5)
    assert len(clock.slept) > 3 and clock.slept[1] > clock.slept[0] * 0.5  # backs off


def test_queue_waits_then_gets_the_lock(open_store: Callable[..., StoreBase]) -> None:
    holder, queued = open_store(), open_store()
    lease = holder.acquire(SCOPE, MODULE, "run-1", mode="fail")
    releasing = threading.Event()
    threading.Timer(0.4, lambda: (releasing.set(), lease.release())).start()
    with queued.acquire(SCOPE, MODULE, "run-2", mode="queue", wait_deadline=60) as second:
        assert releasing.is_set()  # it waited for the holder to let go
        assert second.took_over is None and second.generation == lease.generation + 1
        assert queued.lock_info(SCOPE, MODULE).run_id == "run-2"  # type: ignore[union-attr]


def test_supersede_takes_over_and_the_old_lease_stops(open_store: Callable[..., StoreBase]) -> None:
    old_store, new_store = open_store(), open_store()
    old = old_store.acquire(SCOPE, MODULE, "run-old", mode="fail", lease_seconds=0.6)
    new = new_store.acquire(SCOPE, MODULE, "run-new", mode="supersede", lease_seconds=0.6)
    try:
        assert new.took_over is not None and new.took_over.run_id == "run-old"
        assert new.generation > old.generation
        old.check()  # the local flag has not heard yet; the store knows:
        with pytest.raises(Superseded, match="superseded by run run-new") as raised:
            old.verify()
        assert raised.value.by_run == "run-new"
        wait_for(lambda: new.expires_at > new.took_over.expires_at)  # type: ignore[union-attr]
        old.release()  # must not free the new holder's lock
        assert new_store.lock_info(SCOPE, MODULE).holder == new.holder  # type: ignore[union-attr]
        new.verify()
    finally:
        new.release()
        old.release()


def test_supersede_is_noticed_by_renewal(open_store: Callable[..., StoreBase]) -> None:
    store = open_store()
    old = store.acquire(SCOPE, MODULE, "run-old", mode="queue", lease_seconds=0.6)
    with store.acquire(SCOPE, MODULE, "run-new", mode="supersede"):
        assert old.lost.wait(30), "renewal did not notice the takeover"
        assert old.superseded
        with pytest.raises(Superseded):
            old.check()


def test_concurrent_supersede_never_leaves_two_holders(open_store: Callable[..., StoreBase]) -> None:
    leases: list[Lease] = []
    guard = threading.Lock()

    def contender(n: int) -> None:
        store = open_store()
        for i in range(4):
            lease = store.acquire(SCOPE, MODULE, f"run-{n}-{i}", mode="supersede", lease_seconds=30)
            with guard:
                leases.append(lease)

    threads = [threading.Thread(target=contender, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert len({lease.generation for lease in leases}) == len(leases) == 12  # fencing tokens never repeat
        still_holding = []
        for lease in leases:
            try:
                lease.verify()
                still_holding.append(lease)
            except Superseded:
                pass
        assert len(still_holding) == 1
        assert still_holding[0].generation == max(lease.generation for lease in leases)
    finally:
        for lease in leases:
            lease.release()


def test_renewal_keeps_a_long_held_lock(open_store: Callable[..., StoreBase]) -> None:
    holder, other = open_store(), open_store()
    with holder.acquire(SCOPE, MODULE, "run-1", mode="fail", lease_seconds=1.2) as lease:
        time.sleep(3.0)  # more than twice the lease (long enough that a loaded machine's pauses do not matter)
        with pytest.raises(LockHeldError):
            other.acquire(SCOPE, MODULE, "run-2", mode="fail")
        lease.check()
        lease.verify()
    with other.acquire(SCOPE, MODULE, "run-2", mode="fail"):
        pass


def test_a_released_lease_stops_renewing(open_store: Callable[..., StoreBase]) -> None:
    store = open_store()
    lease = store.acquire(SCOPE, MODULE, "run-1", mode="fail", lease_seconds=0.3)
    lease.release()
    lease.release()  # idempotent
    assert lease.released and store.lock_info(SCOPE, MODULE) is None
    wait_for(lambda: not lease._thread.is_alive(), timeout=30)


def test_lease_of_a_killed_holder_expires_and_is_taken_over(
    open_store: Callable[..., StoreBase], child: Callable[..., subprocess.Popen[str]]
) -> None:
    proc = child("hold", MODULE, "run-killed", "1.0")
    assert read_line(proc).startswith("acquired")
    store = open_store()
    with pytest.raises(LockHeldError, match="run-killed"):
        store.acquire(SCOPE, MODULE, "run-next", mode="fail")
    assert store.in_flight(SCOPE, MODULE) is None  # its run is alive: not in flight yet
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with store.acquire(SCOPE, MODULE, "run-next", mode="queue", wait_deadline=60) as lease:
        assert lease.took_over is None  # expired, not superseded
        stale = store.in_flight(SCOPE, MODULE)
        assert stale is not None and (stale.run_id, stale.deployment_id) == ("run-killed", "d-run-killed")


def test_lock_is_exclusive_across_processes(
    child: Callable[..., subprocess.Popen[str]], tmp_path: Path, open_store: Callable[..., StoreBase]
) -> None:
    marker = tmp_path / "inside"
    procs = [child("loop", MODULE, f"proc{n}", "3", str(marker)) for n in range(3)]
    answers = [read_line(proc) for proc in procs]
    assert answers == ["done 0"] * 3
    assert [proc.wait(timeout=30) for proc in procs] == [0, 0, 0]
    assert open_store().lock_info(SCOPE, MODULE) is None  # every holder released
