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

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from deployfw.backends import DeployOutcome, Recorded, RunContext
from deployfw.state import DeployRecord, Lease, LockMode, Scope, StateStore, open_store

if TYPE_CHECKING:
    from deployfw.plugins import PluginManager


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

    @classmethod
    def open(
        cls, plugins: PluginManager, ctx: RunContext, section: Mapping[str, Any] | None, *, read_only: bool = False
    ) -> RunState:
        """The store of the ``state:`` section in the run's scope; ``read_only`` for plan and dry runs."""
        store = open_store(plugins.backends, ctx, section)
        return cls(store, scope_for(plugins, ctx), ctx.run_id, read_only=read_only)

    # -- before the run ----------------------------------------------------------------

    def last_successes(self, modules: Iterable[str]) -> dict[str, DeployRecord]:
        found = {}
        for name in modules:
            record = self.store.last_success(self.scope, name)
            if record is not None:
                found[name] = record
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
        """Conclude this run's record of ``name`` with what the deploy came to."""
        known = {"deployment_id": outcome.deployment_id, "task_definition": outcome.task_definition}
        fields = {k: v for k, v in known.items() if v}
        self.store.record_end(self.scope, name, self.run_id, outcome.recorded, error=outcome.error, **fields)

    def release_all(self) -> None:
        for lease in self.leases.values():
            lease.release()
        self.leases.clear()
