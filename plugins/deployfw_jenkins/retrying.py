"""How the Jenkins client decides what to retry: python-jenkins's quirks, classified.

python-jenkins hides HTTP status codes behind a few exception shapes, and some of
them lie (shared/research/jenkins-double.md):

* 401, 403 and 500 all become ``JenkinsException("... Possibly authentication failed
  [CODE]: reason\\nbody")``: the code in brackets tells a server error (retry) from an
  auth failure (stop), and the body tells a stale CSRF crumb ("No valid crumb") from a
  missing permission.
* ``get_build_info``/``get_queue_item``/``get_build_console_output`` report *any*
  HTTP error, 502/503 included, as "... does not exist"; the exception that was being
  handled (``__context__``) still tells a real 404 from a proxy's 503.
* Other codes surface as raw ``requests.HTTPError``; connection refusals and resets as
  ``requests.ConnectionError``; timeouts as ``jenkins.TimeoutException``.

Its own ``retries=`` only covers connection errors, so deployfw classifies every one of
these and retries the transient kinds with jittered exponential backoff inside a
deadline (:class:`RetryPolicy`).
"""

from __future__ import annotations

import enum
import http.client
import json
import re
from dataclasses import dataclass

import jenkins
import requests

_TRANSIENT_CODES = frozenset({408, 429, 500, 502, 503, 504})
_BRACKET_CODE = re.compile(r"\[(\d{3})\]")


class Failure(enum.Enum):
    """What kind of failure an exception from python-jenkins stands for."""

    TRANSIENT = "transient"  # 5xx, resets, timeouts, garbled/empty bodies: retry
    AUTH = "auth"  # 401, or 403 for a missing permission: stop, fix credentials
    CRUMB = "crumb"  # 403 "No valid crumb": fetch a new crumb, then retry at once
    NOT_FOUND = "not_found"  # a real 404
    FATAL = "fatal"  # anything else: a refusal retrying cannot fix


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff for one call: jittered exponential from ``initial`` up to ``maximum`` seconds,
    for at most ``budget`` seconds (or the operation's own deadline, if sooner)."""

    initial: float = 0.5
    maximum: float = 8.0
    budget: float = 90.0


@dataclass(frozen=True)
class PollPolicy:
    """Polling of queue items, build state and console: starts at ``initial`` seconds and
    backs off by ``factor`` up to ``maximum`` while nothing changes."""

    initial: float = 0.5
    maximum: float = 5.0
    factor: float = 1.5


class Glitch(Exception):
    """A response that is well-formed HTTP but not what Jenkins sends (e.g. an empty 200
    from a proxy, a progressive-text answer without ``X-Text-Size``): transient."""


def status_of(exc: BaseException) -> int | None:
    """The HTTP status behind ``exc`` (following ``__context__``), if one is known."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, requests.HTTPError) and current.response is not None:
            return current.response.status_code
        if isinstance(current, jenkins.NotFoundException):
            return 404
        if isinstance(current, jenkins.JenkinsException):
            match = _BRACKET_CODE.search(str(current))
            if match and "Possibly authentication failed" in str(current):
                return int(match.group(1))
        current = current.__cause__ or current.__context__
    return None


def classify(exc: BaseException) -> Failure:
    """Classify one exception raised by a python-jenkins call."""
    if isinstance(exc, Glitch | jenkins.TimeoutException | jenkins.EmptyResponseException):
        return Failure.TRANSIENT
    if isinstance(
        exc,
        requests.ConnectionError
        | requests.Timeout
        | requests.exceptions.ChunkedEncodingError
        | http.client.HTTPException
        | ConnectionError
        | json.JSONDecodeError,
    ):
        return Failure.TRANSIENT
    text = str(exc)
    if isinstance(exc, jenkins.JenkinsException) and "Possibly authentication failed" not in text:
        if "Could not parse JSON" in text or "Error in request" in text:
            return Failure.TRANSIENT
        if "Unable to authenticate" in text:
            return Failure.AUTH
        if "does not exist" in text or isinstance(exc, jenkins.BadHTTPException):
            status = status_of(exc.__context__) if exc.__context__ is not None else None
            if status is None:  # an empty body where JSON belongs: a proxy glitch, not Jenkins
                return Failure.TRANSIENT if "does not exist" in text or exc.__context__ else Failure.FATAL
            return _by_status(status, text)
    status = status_of(exc)
    if status is None:
        return Failure.FATAL
    return _by_status(status, text)


def _by_status(status: int, text: str) -> Failure:
    if status == 404:
        return Failure.NOT_FOUND
    if status == 401:
        return Failure.AUTH
    if status == 403:
        return Failure.CRUMB if "No valid crumb" in text else Failure.AUTH
    if status == 500 and "is not parameterized" in text:
        return Failure.FATAL
    if status in _TRANSIENT_CODES:
        return Failure.TRANSIENT
    return Failure.FATAL
