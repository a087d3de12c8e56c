"""Where a run meets the state store: per-module bases, locks and deploy records.

A run (not ``plan``, not ``--dry-run``) opens the store once, takes every planned
module's lock before anything changes (so ``fail`` mode exits 3 with nothing
done, and two runs never interleave on one service), concludes deploys a killed
run left in flight, records each deploy before it is created and after it ends,
and releases the locks at the end. State is keyed by AWS account, region and
environment; against a non-AWS endpoint (the sandbox) the endpoint is part of
the account key, so sandbox runs and real runs never mix.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from deployfw.backends import DeployOutcome, Recorded, RunContext
from deployfw.state import DeployRecord, KeepsPins, Lease, LockMode, Pin, Scope, StateStore, open_store

if TYPE_CHECKING:
    from deployfw.ci import CIContext
    from deployfw.plugins import PluginManager
    from deployfw.state.placement import Placement


def scope_for(plugins: PluginManager, ctx: RunContext) -> Scope:
    """The run's scope: the account key the ``deployfw_state_account`` hook names, region, environment.

    The built-in answer is the caller's AWS account (STS), with a custom endpoint (sandbox,
    LocalStack) folded in so such runs never share history or locks with real ones; a front end
    that knows better (a sandbox that persists its account across runs) registers its own answer.
    """
    account = plugins.hook.deployfw_state_account(ctx=ctx)
    return Scope(account, ctx.region, ctx.config.env)


@dataclass
class RunState:
    store: StateStore
    scope: Scope
    run_id: str
    leases: dict[str, Lease] = field(default_factory=dict)
    # When this run read the store to plan: a success concluded after it was not known to the plan.
    opened_at: float = field(default_factory=time.time)

    read_only: bool = False
    placement: Placement | None = None
    # Pins this run deploys over (module -> pin), released when that module's deploy succeeds,
    # and those it did release.
    releasing: dict[str, Pin] = field(default_factory=dict)
    released: dict[str, Pin] = field(default_factory=dict)

    @classmethod
    def open(
        cls, plugins: PluginManager, ctx: RunContext, section: Mapping[str, Any] | None, *, read_only: bool = False
    ) -> RunState:
        """The store of the ``state:`` section in the run's scope; ``read_only`` for plan and dry runs."""
        store = open_store(plugins.backends, ctx, section)
        return cls(store, scope_for(plugins, ctx), ctx.run_id, read_only=read_only)

    @classmethod
    def for_command(
        cls,
        plugins: PluginManager,
        ctx: RunContext,
        ci: CIContext,
        *,
        read_only: bool = False,
        environ: Mapping[str, str] | None = None,
    ) -> RunState:
        """The store a command uses (``DEPLOYFW_STATE``, else modules.yaml's ``state:``), with its placement.

        A bad ``DEPLOYFW_STATE`` is bad input, and so is a store that is not shared in CI when
        ``DEPLOYFW_REQUIRE_SHARED_STATE`` is set - both raised before STS or the store is asked anything.
        """
        from deployfw.errors import InputError
        from deployfw.state.placement import placement, require_shared, state_section

        env = os.environ if environ is None else environ
        section, source = state_section(ctx.config, plugins.backends, env)
        store = open_store(plugins.backends, ctx, section)
        found = placement(store, section, source, ci)
        problem = require_shared(found, env)
        if problem is not None:
            raise InputError(problem)
        opened = cls(store, scope_for(plugins, ctx), ctx.run_id, read_only=read_only)
        opened.placement = found
        return opened

    # -- pins ------------------------------------------------------------------------------

    def pins(self) -> dict[str, Pin]:
        """Every rollback pin of this scope ({} for a store that keeps none)."""
        return self.store.pins(self.scope) if isinstance(self.store, KeepsPins) else {}

    def void_reason(self, pin: Pin) -> str | None:
        """Why ``pin`` does not hold - its rollback did not take effect - or None when it holds.

        A rollback whose deploy is still "started" (killed mid-way, or running) holds: the service
        is on its way to the pinned revision, and the next rollback or ``--unpin`` run concludes it.
        """
        record = self.store.find(self.scope, pin.module, pin.run_id)
        if record is None or record.run_id != pin.run_id:
            return "its rollback recorded no deploy"
        if record.outcome in ("succeeded", "started"):
            return None
        return {"failed": "its rollback failed", "rolled_back": "its rollback was rolled back"}.get(
            record.outcome, f"its rollback was {record.outcome}"
        )

    # -- before the run ----------------------------------------------------------------

    def last_successes(self, modules: Iterable[str]) -> dict[str, DeployRecord]:
        found = {}
        for name in modules:
            record = self.store.last_success(self.scope, name)
            if record is not None:
                found[name] = record
        return found

    def latest_attempts(self, modules: Iterable[str]) -> dict[str, DeployRecord]:
        """The newest record of each of ``modules`` that has one (for modules never deployed successfully)."""
        found = {}
        for name in modules:
            history = self.store.history(self.scope, name, limit=1)
            if history:
                found[name] = history[0]
        return found

    def acquire_all(self, modes: Mapping[str, str], *, wait_seconds: float | None) -> None:
        """Lock every module (sorted, so concurrent runs cannot deadlock); all or nothing."""
        try:
            for name in sorted(modes):
                self.leases[name] = self.store.acquire(
                    self.scope, name, self.run_id, mode=LockMode(modes[name]), wait_deadline=wait_seconds
                )
        except BaseException:
            self.release_all()
            raise

    # -- during a module -----------------------------------------------------------------

    def check(self, name: str) -> None:
        """A safe point: raises :class:`~deployfw.state.Superseded` when a newer run took the module over."""
        lease = self.leases.get(name)
        if lease is not None:
            lease.check()

    def deployed_meanwhile(self, name: str, commit: str) -> DeployRecord | None:
        """A successful deploy of ``commit`` concluded after this run planned, by another run or by our recovery.

        A queued run that waited while another deployed the same commit, or a rerun whose recovery
        found the killed run's deployment succeeded, must not deploy that commit a second time.
        """
        record = self.store.last_success(self.scope, name)
        if record is None or record.commit != commit or record.run_id == self.run_id or record.ended_at is None:
            return None
        return record if record.ended_at.timestamp() >= self.opened_at else None

    def in_flight(self, name: str) -> DeployRecord | None:
        return self.store.in_flight(self.scope, name)

    def conclude(self, record: DeployRecord, outcome: Recorded, error: str | None = None) -> None:
        fields = {"deployment_id": record.deployment_id} if record.deployment_id else {}
        self.store.record_end(self.scope, record.module, record.run_id, outcome, error=error, **fields)

    def started(
        self,
        name: str,
        commit: str,
        *,
        image_uri: str | None,
        digest: str | None,
        backend: str,
        task_definition: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        lease = self.leases.get(name)
        if lease is not None:
            lease.verify()  # read the store right before the non-idempotent call
        self.store.record_start(
            DeployRecord(
                self.scope,
                name,
                self.run_id,
                commit,
                image_digest=digest,
                image_uri=image_uri,
                task_definition=task_definition,
                backend=backend,
                extra=dict(extra or {}),
            )
        )

    def progress(self, name: str) -> Callable[..., None]:
        """The ``job.progress`` callback: deployers report the deployment id as soon as it exists."""

        def report(**fields: Any) -> None:
            known = {k: v for k, v in fields.items() if k in ("deployment_id", "task_definition")}
            if known:
                self.store.record_progress(self.scope, name, self.run_id, **known)

        return report

    def ended(self, name: str, outcome: DeployOutcome) -> None:
        """Conclude this run's record of ``name`` with what the deploy came to.

        A successful deploy over a rollback pin releases it - only that pin: a rollback that
        pinned the module again while this run deployed keeps its own.
        """
        known = {"deployment_id": outcome.deployment_id, "task_definition": outcome.task_definition}
        fields = {k: v for k, v in known.items() if v}
        self.store.record_end(self.scope, name, self.run_id, outcome.recorded, error=outcome.error, **fields)
        pin = self.releasing.get(name)
        if (
            outcome.ok
            and pin is not None
            and isinstance(self.store, KeepsPins)
            and self.store.release_pin(self.scope, name, pin.run_id) is not None
        ):
            self.released[name] = pin

    def pin_report(self, held: Mapping[str, Pin]) -> list[dict[str, Any]]:
        """The report's ``pins``: those that held modules back, released, or stayed after a failed deploy."""
        rows = [{**pin.to_dict(), "status": "held"} for pin in held.values()]
        for name, pin in self.releasing.items():
            rows.append({**pin.to_dict(), "status": "released" if name in self.released else "kept"})
        return sorted(rows, key=lambda row: str(row["module"]))

    def release_all(self) -> None:
        for lease in self.leases.values():
            lease.release()
        self.leases.clear()
