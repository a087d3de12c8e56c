"""Registers the ``local`` build backend; the runner itself is imported only when used."""

from __future__ import annotations

from typing import Any

from deployfw.hookspecs import hookimpl

BUILDSPEC = {
    "type": "string",
    "description": "Buildspec path from the repository root; default MODULE_PATH/buildspec.yml.",
}
ENVIRONMENT = {
    "type": "object",
    "additionalProperties": {"type": "string"},
    "description": "Extra environment variables for the build.",
}
TIMEOUT = {"type": "integer", "minimum": 1, "description": "Build deadline in minutes (default 60)."}

LOCAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"buildspec": BUILDSPEC, "environment": ENVIRONMENT, "timeout_minutes": TIMEOUT},
}


def _local(ctx: Any) -> Any:
    from deployfw_local.backend import LocalBuild

    return LocalBuild(ctx)


@hookimpl
def deployfw_register_backends(registry: Any) -> None:
    registry.add_build(
        "local",
        _local,
        schema=LOCAL_SCHEMA,
        description="Run the module's buildspec.yml here with CodeBuild's semantics",
    )
