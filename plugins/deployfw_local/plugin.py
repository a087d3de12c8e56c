"""Registers the ``local`` build backend; the runner itself is imported only when used."""

from __future__ import annotations

from typing import Any

from deployfw.builds.options import BUILDSPEC_OPTION, ENVIRONMENT_OPTION, TIMEOUT_OPTION
from deployfw.hookspecs import hookimpl

LOCAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"buildspec": BUILDSPEC_OPTION, "environment": ENVIRONMENT_OPTION, "timeout_minutes": TIMEOUT_OPTION},
}


@hookimpl
def deployfw_register_backends(registry: Any) -> None:
    registry.add_build(
        "local",
        "deployfw_local.backend:LocalBuild",
        schema=LOCAL_SCHEMA,
        description="Run the module's buildspec.yml here with CodeBuild's semantics",
    )
