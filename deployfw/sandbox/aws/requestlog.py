"""The request log: which AWS calls a client made, with their key parameters.

Tests assert on it ("exactly one CreateDeployment for user-api", "no call after the
plan") and users read it to see what a tool did. Only identifying scalar parameters
are kept, and anything that looks like a secret is dropped *by name* before values
are even looked at, so the log can be handed out over HTTP.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from typing import Any

from deployfw import redact

# Names that identify a resource; the rest of a request (bodies, documents) is noise.
_KEY_NAME = re.compile(
    r"(name|arn|id|ids|cluster|service|taskdefinition|family|tag|digest|version|count|"
    r"bucket|key|status|platform|deploymentconfigname|protocol|port|type)$",
    re.IGNORECASE,
)
_SECRET_NAME = re.compile(
    r"(secret|password|passwd|token|credential|authorization|privatekey|accesskey|value|"
    r"environment|blob|manifest|policy|document|body|data)",
    re.IGNORECASE,
)
_MAX_VALUE = 256


def key_parameters(params: dict[str, Any]) -> dict[str, Any]:
    """The identifying scalar parameters of a request, secrets excluded."""
    picked: dict[str, Any] = {}
    for name, value in params.items():
        bare = name.split(".")[-1]
        if _SECRET_NAME.search(name) or not _KEY_NAME.search(bare):
            continue
        if isinstance(value, bool | int | float):
            picked[name] = value
        elif isinstance(value, str) and len(value) <= _MAX_VALUE:
            picked[name] = redact.mask(value)
        elif (
            isinstance(value, list)
            and len(value) <= 20
            and all(isinstance(v, str) and len(v) <= _MAX_VALUE for v in value)
        ):
            picked[name] = [redact.mask(v) for v in value]
    return picked


class RequestLog:
    """A bounded, thread-safe list of request records."""

    def __init__(self, limit: int = 20000) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=limit)
        self._lock = threading.Lock()
        # time.monotonic() of the latest request (of the start before any): a background sandbox
        # exits after a spell without any; kept apart from the entries, which a client may clear.
        self.last = time.monotonic()

    def record(
        self,
        *,
        service: str,
        operation: str,
        status: int,
        region: str,
        params: dict[str, Any],
        started: float,
        fault: str | None = None,
        principal: str | None = None,
        iam: list[dict[str, str]] | None = None,
    ) -> None:
        entry: dict[str, Any] = {
            "service": service,
            "operation": operation,
            "status": status,
            "region": region,
            "params": key_parameters(params),
            "time": started,
            "duration_ms": round((time.time() - started) * 1000, 1),
        }
        if fault:
            entry["fault"] = fault
        if principal:  # with IAM enforced: who asked, and each action/resource IAM decided
            entry["principal"] = principal
        if iam is not None:
            entry["iam"] = iam
        with self._lock:
            self._entries.append(entry)
            self.last = time.monotonic()

    def touch(self) -> None:
        """Count as a request without logging one: a client checked the sandbox serves and is about to use it."""
        self.last = time.monotonic()

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self._entries]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
