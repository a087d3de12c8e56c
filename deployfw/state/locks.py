"""Per-(scope, module) locks with a self-renewing lease, and the three execution modes.

A lock row names its holder (a token unique to one acquisition), the holder's run id,
a generation that grows on every acquisition (a fencing token) and a wall-clock
expiry. Backends supply three atomic primitives (:class:`LockBackend`); everything
else - waiting with backoff, failing fast, superseding, renewing, noticing that a
newer run took over - lives here once, so sqlite and DynamoDB behave the same.

Why a lease and not a plain lock: CI agents die (SIGKILL, timeouts, lost spot
instances) without releasing anything. A lease that is not renewed expires, and the
next run takes the lock over and recovers the dead run's in-flight deploy.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from deployfw.errors import DeployfwError, LockHeldError
from deployfw.state.model import Scope

log = logging.getLogger(__name__)

DEFAULT_LEASE_SECONDS = 30.0
DEFAULT_QUEUE_WAIT = 3600.0  # a queued run gives up after an hour unless told otherwise
BACKOFF_START = 0.05
BACKOFF_MAX = 2.0


class LockMode(StrEnum):
    """What a run does when another run holds a module's lock."""

    QUEUE = "queue"  # wait, with backoff, until the lock is free or the deadline passes
    FAIL = "fail"  # LockHeldError at once (exit 3)
    SUPERSEDE = "supersede"  # take the lock over; the older run stops at its next safe point


class Superseded(DeployfwError):
    """This run no longer holds the module's lock: a newer run took it over, or the lease ran out.

    Raised at safe points (:meth:`Lease.check`, :meth:`Lease.verify`); the run must stop its
    pending work for that module and leave any in-flight deployment to the new holder.
    """

    def __init__(self, scope: Scope, module: str, by_run: str | None, reason: str) -> None:
        self.scope, self.module, self.by_run = scope, module, by_run
        super().__init__(f"{module} ({scope}): {reason}")


@dataclass(frozen=True)
class LockInfo:
    """Who holds a lock, as stored."""

    run_id: str
    holder: str
    generation: int
    expires_at: float
    acquired_at: float

    def expired(self, now: float) -> bool:
        return self.expires_at < now


@dataclass(frozen=True)
class Taken:
    """A successful acquisition: the new generation and expiry."""

    generation: int
    expires_at: float
    took_over: LockInfo | None  # the live holder that was superseded, if any


class LockBackend(Protocol):
    """The atomic operations a store provides; each is one transaction / conditional write."""

    def lock_info(self, scope: Scope, module: str) -> LockInfo | None:
        """The current lock row (possibly expired), or None."""

    def _take(
        self, scope: Scope, module: str, run_id: str, holder: str, lease_seconds: float, *, takeover: bool
    ) -> Taken | LockInfo:
        """Become the holder if the lock is free or expired (or always, with ``takeover``).

        Returns :class:`Taken`, or the live holder's :class:`LockInfo` when the lock is held.
        """

    def _renew(self, scope: Scope, module: str, holder: str, lease_seconds: float) -> float | LockInfo | None:
        """Extend the lease if ``holder`` still holds it: the new expiry, else the current row (or None)."""

    def _release(self, scope: Scope, module: str, holder: str) -> None:
        """Delete the lock row if ``holder`` still holds it."""


class Lease:
    """A held lock. Renews itself every lease/3 in a daemon thread until :meth:`release`.

    ``superseded`` turns true when a renewal finds another holder, or when renewals keep
    failing until the lease has run out (another run may then take over). ``lost`` is an
    event set at the same moment, for waits that want to wake up on it.
    """

    def __init__(
        self,
        backend: LockBackend,
        scope: Scope,
        module: str,
        run_id: str,
        holder: str,
        taken: Taken,
        lease_seconds: float,
        clock: Callable[[], float],
    ) -> None:
        self.scope, self.module, self.run_id, self.holder = scope, module, run_id, holder
        self.generation = taken.generation
        self.expires_at = taken.expires_at
        self.took_over = taken.took_over
        self.lease_seconds = lease_seconds
        self.lost = threading.Event()
        self._backend = backend
        self._clock = clock
        self._by_run: str | None = None
        self._reason = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew_loop, name=f"deployfw-lease-{module}", daemon=True)
        self._thread.start()

    # -- state -----------------------------------------------------------------------------

    @property
    def superseded(self) -> bool:
        return self.lost.is_set()

    @property
    def released(self) -> bool:
        return self._stop.is_set()

    def _mark_lost(self, by_run: str | None, reason: str) -> None:
        if not self.lost.is_set():
            self._by_run, self._reason = by_run, reason
            log.warning("%s (%s): %s", self.module, self.scope, reason)
            self.lost.set()

    def check(self) -> None:
        """Raise :class:`Superseded` if this run lost the lock; cheap (no store call), call it often."""
        if not self.lost.is_set() and self._clock() > self.expires_at:
            self._mark_lost(None, f"lease of run {self.run_id} expired before it could be renewed")
        if self.lost.is_set():
            raise Superseded(self.scope, self.module, self._by_run, self._reason)

    def verify(self) -> None:
        """:meth:`check`, then confirm with the store; call it right before a non-idempotent call."""
        self.check()
        info = self._backend.lock_info(self.scope, self.module)
        if info is None or info.holder != self.holder:
            by = info.run_id if info else None
            self._mark_lost(by, f"run {self.run_id} was superseded by run {by}" if by else "lock was released")
        self.check()

    # -- renewal ---------------------------------------------------------------------------

    def _renew_loop(self) -> None:
        interval = self.lease_seconds / 3
        while not self._stop.wait(interval):
            try:
                result = self._backend._renew(self.scope, self.module, self.holder, self.lease_seconds)
            except Exception as exc:  # store trouble: keep trying until the lease itself runs out
                log.warning("renewing the lock of %s failed: %s", self.module, exc)
                if self._clock() > self.expires_at:
                    self._mark_lost(None, f"lease of run {self.run_id} expired: renewals failed ({exc})")
                    return
                continue
            if isinstance(result, float | int):
                self.expires_at = float(result)
                continue
            by = result.run_id if result else None
            self._mark_lost(by, f"run {self.run_id} was superseded by run {by}" if by else "lock was released")
            return

    def release(self) -> None:
        """Stop renewing and free the lock (unless another run holds it by now). Idempotent."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        if not self.lost.is_set():
            self._backend._release(self.scope, self.module, self.holder)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"Lease({self.module!r}, {self.scope}, run={self.run_id!r}, generation={self.generation})"


def acquire(
    backend: LockBackend,
    scope: Scope,
    module: str,
    run_id: str,
    *,
    mode: LockMode | str,
    lease_seconds: float,
    wait_deadline: float | None,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    holder: str,
) -> Lease:
    """The mode logic shared by every store; see :meth:`StateStore.acquire`."""
    try:
        mode = LockMode(mode)
    except ValueError:
        valid = ", ".join(m.value for m in LockMode)
        raise ValueError(f"unknown execution mode {mode!r}; valid: {valid}") from None
    if lease_seconds <= 0:
        raise ValueError("lease_seconds must be positive")
    wait = DEFAULT_QUEUE_WAIT if wait_deadline is None else max(0.0, wait_deadline)
    give_up_at = clock() + wait
    delay = BACKOFF_START
    while True:
        result = backend._take(scope, module, run_id, holder, lease_seconds, takeover=mode is LockMode.SUPERSEDE)
        if isinstance(result, Taken):
            return Lease(backend, scope, module, run_id, holder, result, lease_seconds, clock)
        if result.holder == holder:  # cannot happen for a fresh token; guards a backend bug
            raise RuntimeError(f"lock backend reported our own token {holder} as the other holder")
        until = time.strftime("%H:%M:%S", time.gmtime(result.expires_at))
        busy = f"{module} ({scope}) is locked by run {result.run_id} (lease until {until} UTC)"
        if mode is LockMode.FAIL:
            raise LockHeldError(f"{busy}; execution mode 'fail'")
        # In supersede mode we only get here when another supersessor won a race; try again.
        remaining = give_up_at - clock()
        if remaining <= 0:
            raise LockHeldError(f"{busy}; gave up waiting after {wait:g}s")
        sleep(min(delay * random.uniform(0.5, 1.0), remaining))
        delay = min(delay * 2, BACKOFF_MAX)
