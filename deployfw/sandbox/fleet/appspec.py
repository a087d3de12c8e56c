"""The AppSpec as the CodeDeploy agent on an instance reads it: what it refuses, nothing more.

deployfw's own preflight is stricter on purpose (it also refuses what would silently do
nothing); the sandbox's agent must fail exactly where the real one fails, so a revision that
skipped deployfw's checks (``aws deploy create-deployment`` by hand) meets the same errors here
as on a server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from deployfw.serverspec import FILE_EXISTS_BEHAVIORS, MAX_EVENT_SECONDS


class AppSpecError(Exception):
    """The agent refused the AppSpec; the message is what the lifecycle event reports."""


@dataclass(frozen=True)
class AgentScript:
    location: str
    timeout: int
    runas: str | None


@dataclass(frozen=True)
class AgentAppSpec:
    files: tuple[tuple[str, str], ...] = ()
    hooks: dict[str, tuple[AgentScript, ...]] = field(default_factory=dict)
    file_exists_behavior: str | None = None


def parse(text: str) -> AgentAppSpec:
    """The AppSpec, or :class:`AppSpecError` with the agent's reason."""
    try:
        doc: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AppSpecError(f"The AppSpec file is not valid YAML: {exc}") from None
    if not doc:
        raise AppSpecError("The deployment failed because the application specification file was empty.")
    if not isinstance(doc, dict):
        raise AppSpecError("The application specification file is not a mapping.")
    version = doc.get("version")
    if isinstance(version, bool) or not isinstance(version, (int, float)) or version != 0.0:
        raise AppSpecError(f"The deployment failed because an invalid version value ({version}) was entered in the "
                           "application specification file; it must be 0.0.")  # fmt: skip
    if doc.get("os") != "linux":
        raise AppSpecError(f"The deployment failed because the application specification file specifies an "
                           f"operating system this instance does not run ({doc.get('os')}).")  # fmt: skip
    behavior = doc.get("file_exists_behavior")
    if behavior is not None and behavior not in FILE_EXISTS_BEHAVIORS:
        raise AppSpecError(f"The deployment failed because an invalid file_exists_behavior value ({behavior}) "
                           f"was entered; use one of {', '.join(FILE_EXISTS_BEHAVIORS)}.")  # fmt: skip
    files = []
    for entry in doc.get("files") or []:
        source, destination = (entry or {}).get("source"), (entry or {}).get("destination")
        if source is None:
            raise AppSpecError("The deployment failed because the application specification file specifies a "
                               "destination file, but no source file.")  # fmt: skip
        if destination is None:
            raise AppSpecError(f"The deployment failed because the application specification file specifies only "
                               f"a source file ({source}).")  # fmt: skip
        files.append((str(source), str(destination)))
    hooks: dict[str, tuple[AgentScript, ...]] = {}
    for event, scripts in (doc.get("hooks") or {}).items():
        if not scripts:
            continue
        found = []
        for script in scripts:
            location = str((script or {}).get("location") or "").strip()
            if not location:
                raise AppSpecError("The deployment failed because the application specification file specifies a "
                                   "script with no location value.")  # fmt: skip
            timeout = (script or {}).get("timeout") or MAX_EVENT_SECONDS
            try:
                seconds = int(timeout)
            except (TypeError, ValueError):
                seconds = 0
            if seconds <= 0:
                raise AppSpecError("The deployment failed because an invalid timeout value was provided for a script "
                                   "in the application specification file.")  # fmt: skip
            runas = (script or {}).get("runas")
            found.append(AgentScript(location, seconds, str(runas).strip() if runas else None))
        hooks[str(event)] = tuple(found)
    return AgentAppSpec(tuple(files), hooks, behavior)
