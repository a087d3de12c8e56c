"""Registers the ``jenkins`` build backend with its section schema.

The factory imports :mod:`deployfw_jenkins.backend` (and with it python-jenkins)
only when a run needs it, so ``deployfw plugins``, ``deployfw schema`` and
config validation never pay for the Jenkins client.
"""

from __future__ import annotations

from typing import Any

from deployfw.builds.options import TIMEOUT_OPTION
from deployfw.hookspecs import hookimpl

_NAME = r"^[^/\s]+(?:/[^/\s]+)*$"  # Jenkins item names: no empty path component, no whitespace

JENKINS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "job": {
            "type": "string",
            "minLength": 1,
            "pattern": _NAME,
            "description": "The parameterised Jenkins job that builds the module (default MODULE-build).",
        },
        "folder": {
            "type": "string",
            "minLength": 1,
            "pattern": _NAME,
            "description": "Folder holding the job, e.g. 'shop' or 'teams/shop' (default: the controller's root).",
        },
        "parameters": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "Extra job parameters; the build contract's parameters win over these.",
        },
        "unstable_ok": {
            "type": "boolean",
            "description": "Treat an UNSTABLE build as a success (default false: it fails the module).",
        },
        "queue_timeout_minutes": {
            "type": "number",
            "minimum": 0.1,
            "description": "How long the build may wait in Jenkins's queue before it is cancelled (default 30).",
        },
        "timeout_minutes": TIMEOUT_OPTION,
    },
}


@hookimpl
def deployfw_register_backends(registry: Any) -> None:
    registry.add_build(
        "jenkins",
        "deployfw_jenkins.backend:JenkinsBuild",
        schema=JENKINS_SCHEMA,
        description="Trigger the module's parameterised Jenkins job, follow queue -> build -> console",
    )


@hookimpl
def deployfw_sandbox_seed(config: Any, module: Any) -> list[Any]:
    from deployfw_jenkins.seed import seeds

    return seeds(config, module)
