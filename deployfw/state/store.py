"""The state store protocol every backend implements, and the code they share.

The runner talks to a :class:`StateStore` only. Two built-in backends implement it
(``sqlite`` for one machine, ``dynamodb`` for all CI agents); a third-party plugin
adds another with ``registry.add_state_store`` and gets the lock modes and lease
renewal for free by subclassing :class:`StoreBase` and providing the primitives.

Every method is safe to call from several threads and several processes at once:
each one is a single transaction (sqlite ``BEGIN IMMEDIATE``) or a single
conditional write (DynamoDB), never a read-then-write across calls.
"""

from __future__ import annotations

import abc
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from deployfw.errors import InputError
from deployfw.state.locks import (
    DEFAULT_LEASE_SECONDS,
    Lease,
    LockInfo,
    LockMode,
    Taken,
    acquire,
)
from deployfw.state.model import DeployRecord, Outcome, Pin, Scope

MIN_COMMIT_PREFIX = 4


class StateStore(Protocol):
    """Deploy records and per-module locks for one or more scopes."""

    def record_start(self, record: DeployRecord) -> None:
        """Write ``record`` with outcome "started", just *before* the deployment is created.

        Idempotent: a repeated call for the same (scope, module, run_id) changes nothing (the first
        write and any progress since stand); for a concluded record it raises ValueError.
        ``started_at`` is filled in from the store's clock when missing.
        """

    def record_progress(self, scope: Scope, module: str, run_id: str, **fields: Any) -> None:
        """Add what became known mid-deploy (``deployment_id``, ``task_definition``, ``extra={...}``)."""

    def record_end(
        self, scope: Scope, module: str, run_id: str, outcome: Outcome, error: str | None = None, **fields: Any
    ) -> bool:
        """Conclude a "started" record; False if another run (a recovering successor) concluded it first."""

    def last_success(self, scope: Scope, module: str) -> DeployRecord | None:
        """The newest "succeeded" record: its commit is the module's base for the next run."""

    def in_flight(self, scope: Scope, module: str) -> DeployRecord | None:
        """The newest "started" record of a run that no longer holds the module's lock (dead or superseded)."""

    def history(self, scope: Scope, module: str, limit: int = 20) -> list[DeployRecord]:
        """Records of ``module``, newest first."""

    def find(
        self, scope: Scope, module: str, run_id_or_commit: str, *, outcome: Outcome | None = None
    ) -> DeployRecord | None:
        """The record of that run id, else the newest record whose commit starts with the given prefix."""

    def modules(self, scope: Scope) -> dict[str, DeployRecord]:
        """The newest record of every module ever recorded in ``scope``."""

    def lock_info(self, scope: Scope, module: str) -> LockInfo | None:
        """Who holds the module's lock (the row may be expired), for ``status``."""

    def acquire(
        self,
        scope: Scope,
        module: str,
        run_id: str,
        *,
        mode: LockMode | str,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        wait_deadline: float | None = None,
    ) -> Lease:
        """Take the module's lock in ``mode``; see :func:`deployfw.state.locks.acquire`."""

    def close(self) -> None:
        """Release what the store holds open (connections); leases are released by their owners."""


@runtime_checkable
class Creates(Protocol):
    """A state store that can create itself (``deployfw state init``): a table, a file."""

    def create(self) -> str:
        """Create what the store needs unless it exists (safe to repeat); say what exists now."""
        ...


@runtime_checkable
class Located(Protocol):
    """A state store that says where it keeps its history and whether every CI agent reaches it there.

    Optional: ``run`` warns in CI about a store on the agent's own disk (its history goes with the
    agent); a store without it is described by its ``repr`` and never warned about.
    """

    shared: bool
    """True when every agent with the permissions reads and writes the same history (a table, a bucket)."""

    @property
    def location(self) -> str:
        """Where the history is, in words a CI log can show (``sqlite file .deployfw/state.db``)."""
        ...


@runtime_checkable
class KeepsPins(Protocol):
    """A state store that keeps rollback pins (:class:`~deployfw.state.model.Pin`), one per (scope, module).

    Optional so that a third-party store written before pins existed keeps working: without it,
    ``rollback`` says its rollback will not hold and ``run`` sees no pins. Both built-in stores
    keep them, with the same guarantees as their records (one transaction / conditional write).
    """

    def set_pin(self, pin: Pin) -> bool:
        """Store ``pin`` as the module's pin, replacing an older one; False if a newer pin is stored."""
        ...

    def get_pin(self, scope: Scope, module: str) -> Pin | None:
        """The module's pin, if any."""
        ...

    def pins(self, scope: Scope) -> dict[str, Pin]:
        """Every pin of ``scope`` by module name."""
        ...

    def release_pin(self, scope: Scope, module: str, run_id: str | None = None) -> Pin | None:
        """Remove the module's pin - only the one set by rollback ``run_id`` when given; the removed pin.

        A run releases the pin it planned around with ``run_id``, so a rollback that pinned the
        module again meanwhile is never undone by it.
        """
        ...


class StoreBase(abc.ABC):
    """Shared behaviour: lock modes on top of the backend's atomic primitives, clock and sleep injection."""

    def __init__(self, *, clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> None:
        self._clock = clock
        self._sleep = sleep

    def acquire(
        self,
        scope: Scope,
        module: str,
        run_id: str,
        *,
        mode: LockMode | str,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        wait_deadline: float | None = None,
    ) -> Lease:
        """Take the lock of (``scope``, ``module``) for ``run_id``.

        ``mode``: ``queue`` waits with backoff for up to ``wait_deadline`` seconds (default one hour)
        and then raises :class:`LockHeldError`; ``fail`` raises it at once; ``supersede`` takes the
        lock over from a live holder, whose lease notices on its next renewal. An expired lease is
        taken over in every mode. The returned :class:`Lease` renews itself until released.
        """
        holder = f"{run_id}:{uuid.uuid4().hex[:16]}"
        return acquire(
            self,  # type: ignore[arg-type]
            scope,
            module,
            run_id,
            mode=mode,
            lease_seconds=lease_seconds,
            wait_deadline=wait_deadline,
            clock=self._clock,
            sleep=self._sleep,
            holder=holder,
        )

    def close(self) -> None:
        return None

    def __enter__(self) -> StoreBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- shared helpers ----------------------------------------------------------------------

    @abc.abstractmethod
    def _take(
        self, scope: Scope, module: str, run_id: str, holder: str, lease_seconds: float, *, takeover: bool
    ) -> Taken | LockInfo: ...

    @abc.abstractmethod
    def _renew(self, scope: Scope, module: str, holder: str, lease_seconds: float) -> float | LockInfo | None: ...

    @abc.abstractmethod
    def _release(self, scope: Scope, module: str, holder: str) -> None: ...


def match_commit(records: list[DeployRecord], prefix: str, outcome: str | None) -> DeployRecord | None:
    """The newest of ``records`` (newest first) whose commit starts with ``prefix``; ambiguity is bad input."""
    if len(prefix) < MIN_COMMIT_PREFIX:
        return None
    hits = [r for r in records if r.commit.startswith(prefix) and (outcome is None or r.outcome == outcome)]
    commits = {r.commit for r in hits}
    if len(commits) > 1:
        raise InputError(f"{prefix!r} is ambiguous: it matches commits {', '.join(sorted(commits))}")
    return hits[0] if hits else None
