"""POST deployfw run events as JSON to the URL in ``DEPLOYFW_WEBHOOK_URL``.

Three events, one request each, sent from the lifecycle hooks that carry them:

- ``run_start`` (:func:`deployfw_run_start`): run id, project, environment, head commit, selected modules;
- ``module_end`` (:func:`deployfw_module_end`): one module's status and error;
- ``run_end`` (:func:`deployfw_run_end`): the overall status and the whole JSON report.

A notification must never change a deploy's outcome, so every failure (no
route, refused, timeout, a 5xx) becomes one warning on the ``deployfw.webhook``
logger and the run goes on; the timeout is short (``DEPLOYFW_WEBHOOK_TIMEOUT``
seconds, default 3) so a dead endpoint costs a run seconds, not minutes. Every
string in a payload goes through :func:`deployfw.redact.mask` first, so a
secret that reached an error message still never leaves the machine, and
warnings name only the endpoint's scheme and host because webhook URLs
(Slack's, Teams') carry their token in the path.

Only the standard library is used: a plugin that adds dependencies to every
CI agent's deploy tool should have a good reason to.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from deployfw import redact
from deployfw.errors import InputError, Problem
from deployfw.hookspecs import hookimpl

from deployfw_webhook import __version__

if TYPE_CHECKING:
    from deployfw.backends import RunContext
    from deployfw.config import Config, Module

URL_ENV = "DEPLOYFW_WEBHOOK_URL"
TIMEOUT_ENV = "DEPLOYFW_WEBHOOK_TIMEOUT"
DEFAULT_TIMEOUT = 3.0
USER_AGENT = f"deployfw-webhook/{__version__}"

log = logging.getLogger("deployfw.webhook")


# -- hooks ---------------------------------------------------------------------------


@hookimpl
def deployfw_config_loaded(config: Config) -> None:
    """Refuse a malformed webhook URL before anything is deployed (exit 2), not after."""
    url = os.environ.get(URL_ENV, "").strip()
    if url and _scheme_problem(url):
        raise InputError(Problem(None, None, URL_ENV, _scheme_problem(url) or ""))


@hookimpl
def deployfw_run_start(ctx: RunContext, modules: list[str]) -> None:
    """Announce the run and the modules it will deploy, in dependency order."""
    send("run_start", ctx, {"modules": list(modules)})


@hookimpl
def deployfw_module_end(ctx: RunContext, module: Module, status: str, error: str | None) -> None:
    """Report one module's outcome as soon as it is known, not only at the end of a long run."""
    send("module_end", ctx, {"module": module.name, "status": status, "error": error})


@hookimpl
def deployfw_run_end(ctx: RunContext, report: dict[str, Any]) -> None:
    """Report the overall status with the whole JSON report, for dashboards and audit logs."""
    send("run_end", ctx, {"status": report.get("status"), "report": report})


# -- delivery ------------------------------------------------------------------------


def send(event: str, ctx: RunContext | None, fields: Mapping[str, Any]) -> bool:
    """Build and POST one event; True when the endpoint accepted it. Never raises.

    Returns False (after logging a warning) on any failure, and False without a
    word when no URL is configured: an unconfigured plugin is silent by design.
    """
    url = os.environ.get(URL_ENV, "").strip()
    if not url:
        return False
    try:
        payload = redact_payload({**_envelope(event, ctx), **fields})
        return post_json(url, payload, timeout=_timeout())
    except Exception as exc:  # a notification must never fail a deploy
        log.warning(redact.mask(f"webhook {event} not sent to {_target(url)}: {exc}"))
        return False


def post_json(url: str, payload: Mapping[str, Any], *, timeout: float) -> bool:
    """POST ``payload`` as JSON; True on a 2xx answer, False (with a warning) otherwise."""
    problem = _scheme_problem(url)
    if problem:
        log.warning(f"webhook not sent: {problem}")
        return False
    body = json.dumps(payload, default=str, sort_keys=True).encode("utf-8")
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
    )
    event = payload.get("event", "event")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # scheme checked above
            response.read()
            return True
    except urllib.error.HTTPError as exc:
        reason = f"HTTP {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = str(getattr(exc, "reason", None) or exc)
    log.warning(redact.mask(f"webhook {event} not delivered to {_target(url)}: {reason}"))
    return False


def redact_payload(value: Any) -> Any:
    """Mask registered secrets in every string of a JSON-shaped value, keys included.

    Masking the values (rather than the serialised text) still works when a
    secret holds a quote or backslash that JSON would have escaped.
    """
    if isinstance(value, str):
        return redact.mask(value)
    if isinstance(value, Mapping):
        return {redact.mask(str(k)): redact_payload(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_payload(v) for v in value]
    return value


def _envelope(event: str, ctx: RunContext | None) -> dict[str, Any]:
    """What every event carries, so a receiver can group events by run without state."""
    config = getattr(ctx, "config", None)
    return {
        "event": event,
        "run_id": getattr(ctx, "run_id", None),
        "project": getattr(config, "project", None),
        "env": getattr(config, "env", None),
        "head": getattr(ctx, "head", None),
        "ci_url": getattr(ctx, "ci_url", None),
        "sent_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "sender": USER_AGENT,
    }


def _timeout() -> float:
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT
    except ValueError:
        return DEFAULT_TIMEOUT
    return value if value > 0 else DEFAULT_TIMEOUT


def _scheme_problem(url: str) -> str | None:
    """urllib would also open file:// and ftp:// URLs; a webhook is http(s) only."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"must be an http:// or https:// URL with a host, got scheme {parts.scheme or 'none'!r}"
    return None


def _target(url: str) -> str:
    """Scheme and host only: webhook URLs often carry their token in the path or query."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}" if parts.netloc else "<invalid URL>"
