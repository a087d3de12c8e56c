"""Deploy state: what was deployed where, per-module locks, and what a killed run left in flight.

The pieces, one job each: :mod:`~deployfw.state.model` (records and scopes),
:mod:`~deployfw.state.locks` (leases and execution modes), :mod:`~deployfw.state.store`
(the protocol), :mod:`~deployfw.state.sqlite` and :mod:`~deployfw.state.dynamodb`
(the built-in backends), :mod:`~deployfw.state.plugin` (their registration) and
:mod:`~deployfw.state.open` (how a run gets its store). Nothing here imports boto3
until a DynamoDB store is opened.
"""

from __future__ import annotations

from deployfw.state.locks import DEFAULT_LEASE_SECONDS, Lease, LockInfo, LockMode, Superseded
from deployfw.state.model import OUTCOMES, DeployRecord, Outcome, Scope
from deployfw.state.open import open_store, run_scope
from deployfw.state.store import StateStore, StoreBase

__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "OUTCOMES",
    "DeployRecord",
    "Lease",
    "LockInfo",
    "LockMode",
    "Outcome",
    "Scope",
    "StateStore",
    "StoreBase",
    "Superseded",
    "open_store",
    "run_scope",
]
