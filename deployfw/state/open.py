"""How a run gets its state store and the scope its records and locks live in."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from deployfw.state.model import Scope
from deployfw.state.store import StateStore

if TYPE_CHECKING:
    from deployfw.backends import BackendRegistry, RunContext

DEFAULT_BACKEND = "sqlite"


def open_store(registry: BackendRegistry, ctx: RunContext, section: Mapping[str, Any] | None = None) -> StateStore:
    """The run's store from the ``state:`` section (``{backend: sqlite|dynamodb, ...options}``).

    Memoised on ``ctx`` so every module of the run shares one store. An unknown backend id
    raises :class:`InputError` (exit 2) listing the registered ones.
    """
    options = dict(section or {})
    backend_id = options.pop("backend", None) or DEFAULT_BACKEND
    spec = registry.get("state", backend_id)
    return ctx.resource(f"state:{backend_id}", lambda: spec.factory(ctx, options))


def run_scope(ctx: RunContext, account: str | None = None) -> Scope:
    """The run's scope: AWS account (asked of STS through the AWS boundary unless given), region, env."""
    if account is None:
        from deployfw.aws.clients import aws_for

        account = aws_for(ctx).account_id()
    return Scope(account, ctx.region, ctx.config.env)
