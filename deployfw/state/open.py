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
    from deployfw.backends import store_for

    options = dict(section or {})
    backend_id = options.pop("backend", None) or DEFAULT_BACKEND
    return store_for(ctx, registry, backend_id, options)


def run_scope(ctx: RunContext, account: str | None = None) -> Scope:
    """The run's scope: AWS account (asked of STS through the AWS boundary unless given), region, env."""
    return Scope(account if account is not None else aws_account(ctx), ctx.region, ctx.config.env)


def aws_account(ctx: RunContext) -> str:
    """The caller's AWS account, asked of STS through the run's AWS boundary."""
    from deployfw.aws.clients import aws_for

    return aws_for(ctx).account_id()


def state_account(ctx: RunContext) -> str:
    """The account key of the state scope: against a custom endpoint (sandbox, LocalStack) the
    endpoint is folded in, so such runs never share history or locks with real ones."""
    from urllib.parse import urlparse

    account = aws_account(ctx)
    if ctx.endpoint_url:
        host = urlparse(ctx.endpoint_url).netloc or ctx.endpoint_url
        return f"{account}@{host}"
    return account
