"""Section-schema fragments every buildspec-running build backend shares.

The ``local``, ``codebuild`` and ``jenkins`` backends take these options with the same
meaning. Kept apart from :mod:`deployfw.builds.contract` because plugins import them while
registering, which must stay import-free (``deployfw --help`` pays for registration).
"""

from __future__ import annotations

from typing import Any

BUILDSPEC_OPTION: dict[str, Any] = {
    "type": "string",
    "description": "Buildspec path from the repository root; default MODULE_PATH/buildspec.yml.",
}
ENVIRONMENT_OPTION: dict[str, Any] = {
    "type": "object",
    "additionalProperties": {"type": "string"},
    "description": "Extra environment variables for the build.",
}
TIMEOUT_OPTION: dict[str, Any] = {
    "type": "integer",
    "minimum": 1,
    "description": "Build deadline in minutes (default 60).",
}


