"""Deploy state: what was deployed where, per-module locks, and what a killed run left in flight.

The pieces, one job each: :mod:`~deployfw.state.model` (records and scopes),
:mod:`~deployfw.state.locks` (leases and execution modes), :mod:`~deployfw.state.store`
(the protocol), :mod:`~deployfw.state.sqlite` and :mod:`~deployfw.state.dynamodb`
(the built-in backends), :mod:`~deployfw.state.plugin` (their registration) and
:mod:`~deployfw.state.open` (how a run gets its store). Nothing here imports boto3
until a DynamoDB store is opened.

How the runner uses it for one module (``store = open_store(registry, ctx, config_state_section)``,
``scope = run_scope(ctx)``)::

    lease = store.acquire(scope, module, ctx.run_id, mode=mode, wait_deadline=...)  # LockHeldError: exit 3
    while (stale := store.in_flight(scope, module)) is not None:   # a dead or superseded run's deploy
        ...await/stop stale.deployment_id (or find it by run id) ...
        store.record_end(scope, module, stale.run_id, outcome)     # "abandoned" if nothing was created
    base = store.last_success(scope, module)                       # its .commit is the module's base
    ... build, push; lease.check() between stages ...
    store.record_start(DeployRecord(scope, module, ctx.run_id, head, image_digest=..., backend=...))
    lease.verify()                                                 # store read right before CreateDeployment
    ... create the deployment ...
    store.record_progress(scope, module, ctx.run_id, deployment_id=..., task_definition=...)
    ... wait, calling lease.check() each poll (Superseded: stop waiting, leave the deployment and
        its "started" record to the new holder, which recovers it through in_flight) ...
    store.record_end(scope, module, ctx.run_id, "succeeded" | "failed" | "rolled_back", error=...)
    lease.release()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deployfw.state.locks import DEFAULT_LEASE_SECONDS, Lease, LockInfo, LockMode, Superseded
    from deployfw.state.model import OUTCOMES, DeployRecord, Outcome, Pin, Scope
    from deployfw.state.open import open_store, run_scope
    from deployfw.state.store import KeepsPins, StateStore, StoreBase

# Where each name lives. Loaded on first use: the built-in stores' registration
# (``deployfw.state.plugin``) runs for every command, ``deployfw --help`` included, and
# must not pay for the lock and record machinery.
_HOME = {
    "DEFAULT_LEASE_SECONDS": "locks",
    "Lease": "locks",
    "LockInfo": "locks",
    "LockMode": "locks",
    "Superseded": "locks",
    "OUTCOMES": "model",
    "DeployRecord": "model",
    "Outcome": "model",
    "Pin": "model",
    "Scope": "model",
    "open_store": "open",
    "run_scope": "open",
    "KeepsPins": "store",
    "StateStore": "store",
    "StoreBase": "store",
}

__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "OUTCOMES",
    "DeployRecord",
    "KeepsPins",
    "Lease",
    "LockInfo",
    "LockMode",
    "Outcome",
    "Pin",
    "Scope",
    "StateStore",
    "StoreBase",
    "Superseded",
    "open_store",
    "run_scope",
]


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'deployfw.state' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"deployfw.state.{_HOME[name]}"), name)
