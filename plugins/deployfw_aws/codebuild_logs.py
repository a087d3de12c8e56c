"""Follow a CodeBuild build's CloudWatch log stream, line by line, while it runs.

CodeBuild names the log group and stream in ``BatchGetBuilds`` (``logs``)
once the build has a container; before that there is nothing to read, and the
stream may not exist yet even after it is named. ``GetLogEvents`` is read
forward from the head with ``nextForwardToken``; the service returns the same
token when there is nothing new, which is how a read knows it has caught up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from deployfw import redact
from deployfw.aws.clients import Aws, AwsError

_MAX_PAGES_PER_READ = 50  # bounds one read; the rest comes on the next poll


class LogTail:
    """Reads new lines of one build's log each time :meth:`read` is called."""

    def __init__(self, aws: Aws, emit: Callable[[str], None]) -> None:
        self._aws = aws
        self._emit = emit
        self._group: str | None = None
        self._stream: str | None = None
        self._token: str | None = None
        self.lines = 0

    def follow(self, build: Mapping[str, Any]) -> None:
        """Learn the log group and stream from a ``BatchGetBuilds`` build, once they are known."""
        logs = build.get("logs") or {}
        group, stream = logs.get("groupName"), logs.get("streamName")
        if group and stream and (group, stream) != (self._group, self._stream):
            self._group, self._stream, self._token = group, stream, None

    def read(self) -> int:
        """Emit every line written since the last read; return how many."""
        if not self._group or not self._stream:
            return 0
        emitted = 0
        for _ in range(_MAX_PAGES_PER_READ):
            params: dict[str, Any] = {"logGroupName": self._group, "logStreamName": self._stream}
            if self._token:
                params["nextToken"] = self._token
            else:
                params["startFromHead"] = True
            try:
                page = self._aws.call("logs", "get_log_events", **params)
            except AwsError as exc:
                if exc.code == "ResourceNotFoundException":
                    return emitted  # named but not created yet
                raise
            for event in page.get("events") or []:
                for line in str(event.get("message", "")).rstrip("\n").split("\n"):
                    self._emit(redact.mask(line.rstrip("\r")))
                    emitted += 1
            token = page.get("nextForwardToken")
            if not token or token == self._token:
                break
            self._token = token
            if not page.get("events"):
                break
        self.lines += emitted
        return emitted
