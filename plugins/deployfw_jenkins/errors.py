"""The errors the Jenkins client raises, each saying what to do about it.

All derive from :class:`deployfw.errors.ExternalError` (exit 1: a module failed), and
every message is passed through :func:`deployfw.redact.mask` so an API token can never
reach a log line or a report through an exception.
"""

from __future__ import annotations

from deployfw.errors import ExternalError
from deployfw.redact import mask


class JenkinsError(ExternalError):
    """Jenkins refused or failed a request the retry policy could not recover."""

    def __init__(self, message: str) -> None:
        super().__init__(mask(message))


class JenkinsAuthError(JenkinsError):
    """The credentials were rejected (401) or lack a permission (403)."""


class JenkinsNotFound(JenkinsError):
    """A job or build does not exist (Jenkins answered 404)."""


class JenkinsRefused(JenkinsError):
    """Jenkins refused a trigger for a reason retrying cannot fix (disabled job, wrong parameters)."""


class QueueItemCancelled(JenkinsError):
    """The queued build was cancelled in Jenkins before it started."""


class QueueItemExpired(JenkinsError):
    """The queue item is gone (Jenkins forgets left items after ~5 minutes) and no build was found."""


class JenkinsCancelled(JenkinsError):
    """deployfw itself was cancelled while waiting; what it had queued was withdrawn."""


class JenkinsTimeout(JenkinsError):
    """A deadline passed: the queue wait, the build, or the retry budget of one call."""


class JenkinsUnavailable(JenkinsError):
    """Transient failures (5xx, resets, timeouts) persisted until the call's deadline."""
