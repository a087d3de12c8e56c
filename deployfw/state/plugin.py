"""Registers the built-in state stores, ``sqlite`` and ``dynamodb``, like any third-party plugin would.

A state-store factory takes ``(ctx, options)``: the run's :class:`RunContext` (for the
repository root and the shared AWS boundary) and the options of the top-level
``state:`` section without its ``backend`` key. The runner goes through
:func:`deployfw.state.open.open_store`, which picks the factory by id.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deployfw.hookspecs import hookimpl

if TYPE_CHECKING:
    from deployfw.state.store import StateStore

DEFAULT_SQLITE_PATH = ".deployfw/state.db"
DEFAULT_TABLE = "deployfw-state"

SQLITE_SCHEMA = {
    "type": "object",
    "properties": {
        "path": {
            "type": "string",
            "minLength": 1,
            "description": f"Database file, from the repository root (default {DEFAULT_SQLITE_PATH}).",
        },
        "persistent": {
            "type": "boolean",
            "description": "The file is kept between builds (one CI machine with a persistent disk): "
            "no warning that CI history is lost with the agent.",
        },
    },
}
DYNAMODB_SCHEMA = {
    "type": "object",
    "properties": {
        "table": {
            "type": "string",
            "pattern": r"^[A-Za-z0-9_.-]{3,255}$",
            "description": f"Table created by `deployfw state init` (default {DEFAULT_TABLE}).",
        },
        "region": {
            "type": "string",
            "minLength": 1,
            "description": "Region of the table when it differs from the deploy region (one table for all).",
        },
    },
}


def sqlite_factory(ctx: Any, options: Mapping[str, Any]) -> StateStore:
    """A file under the repository root: local and sandbox runs, one machine."""
    from deployfw.state.sqlite import SqliteStore

    path = Path(options.get("path") or DEFAULT_SQLITE_PATH)
    return SqliteStore(path if path.is_absolute() else ctx.config.root / path)


def dynamodb_factory(ctx: Any, options: Mapping[str, Any]) -> StateStore:
    """The shared table, reached through the run's AWS boundary (imported here: boto3 only when used)."""
    from deployfw.aws.clients import Aws, aws_for
    from deployfw.state.dynamodb import DynamoStore

    region = options.get("region")
    if region and region != ctx.region:
        aws = ctx.resource(f"aws:{region}", lambda: Aws(region, endpoint_url=ctx.endpoint_url))
    else:
        aws = aws_for(ctx)
    return DynamoStore(aws, options.get("table") or DEFAULT_TABLE)


@hookimpl
def deployfw_state_account(ctx: Any) -> str:
    """The built-in answer: the caller's AWS account (with a custom endpoint folded in)."""
    from deployfw.state.open import state_account

    return state_account(ctx)


@hookimpl
def deployfw_register_backends(registry: Any) -> None:
    registry.add_state_store(
        "sqlite",
        sqlite_factory,
        schema=SQLITE_SCHEMA,
        description="Deploy records and locks in a sqlite file under .deployfw/ (one machine; the default)",
    )
    registry.add_state_store(
        "dynamodb",
        dynamodb_factory,
        schema=DYNAMODB_SCHEMA,
        description="Deploy records and locks in a DynamoDB table shared by every CI agent (conditional writes)",
    )
