"""Sending: one queue per run, webhook URLs read from where they are kept, retries, and warnings.

A notification must never change a deploy: nothing here raises into the run.
Messages go out in order on one background thread, so a slow endpoint never holds
a module up; the end of the run waits for the queue (bounded by
:data:`FLUSH_SECONDS`) so nothing is lost when the process exits. Transient
failures (no connection, timeouts, HTTP 429 and 5xx) are retried with tenacity
within a deadline, honouring ``Retry-After``; anything else is one warning naming
the target by kind and index, never by URL. Every URL read is registered with
:mod:`deployfw.redact` at once, and every payload is masked before it leaves.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

import tenacity

from deployfw import __version__, redact
from deployfw.report import masked
from deployfw_notify import payloads
from deployfw_notify.messages import Message
from deployfw_notify.settings import Settings, Target

FLUSH_SECONDS = 60.0  # the most the end of a run waits for notifications still queued
DEADLINE_SECONDS = 30.0  # the most one message to one target spends retrying
MAX_ATTEMPTS = 5
USER_AGENT = f"deployfw-notify/{__version__}"

log = logging.getLogger("deployfw.notify")
log.addFilter(redact.RedactingFilter())


class NotSent(Exception):
    """A message was not delivered; the text is safe to show (no URL, masked)."""


class Transient(Exception):
    """Worth another attempt: no connection, a timeout, throttling or a server error."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def warn(text: str) -> None:
    log.warning(redact.mask(f"deployfw notify: warning: {text}"))


class Notifier:
    """The notifications of one run; ``post`` queues, ``flush`` waits for the queue at the end."""

    def __init__(
        self,
        ctx: Any,
        settings: Settings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        environ: Any = os.environ,
    ) -> None:
        self.ctx = ctx
        self.settings = settings
        self._sleep = sleep
        self._environ = environ
        self._urls: dict[str, str] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="notify")
        self._pending: list[Future[None]] = []
        self._lock = threading.Lock()
        self.sent: list[tuple[str, str]] = []  # (target label, event) delivered, for the run's record

    def post(self, message: Message) -> None:
        for target in self.settings.targets:
            if message.event in target.events:
                future = self._pool.submit(self._deliver, target, message)
                with self._lock:
                    self._pending.append(future)

    def flush(self, seconds: float = FLUSH_SECONDS) -> None:
        with self._lock:
            pending = list(self._pending)
        _, late = wait(pending, timeout=seconds)
        if late:
            warn(f"{len(late)} notification(s) still not sent after {seconds:g} s; giving up on them")
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- one message to one target ---------------------------------------------------------

    def _deliver(self, target: Target, message: Message) -> None:
        try:
            if target.kind == "sns":
                self._publish(target, message)
            else:
                url = self._url(target)
                body = masked(payloads.HTTP[target.kind](message))
                self._retrying(lambda: self._post(url, body))
            self.sent.append((target.label, message.event))
        except NotSent as exc:
            warn(f"{target.label}: {message.event} not sent: {exc}")
        except Exception as exc:  # a bug here must still not reach the run
            warn(f"{target.label}: {message.event} not sent: {type(exc).__name__}: {exc}")

    def _retrying(self, attempt: Callable[[], None]) -> None:
        def pause(state: tenacity.RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            hinted = getattr(error, "retry_after", None)
            backoff = float(tenacity.wait_random_exponential(multiplier=0.5, max=8)(state))
            return min(max(hinted or 0.0, backoff), 20.0)

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(Transient),
            wait=pause,
            stop=tenacity.stop_after_attempt(MAX_ATTEMPTS) | tenacity.stop_after_delay(DEADLINE_SECONDS),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            retrying(attempt)
        except Transient as exc:
            raise NotSent(f"{exc} (gave up after retrying)") from None

    def _post(self, url: str, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode("utf-8")
        request = urllib.request.Request(
            url, data=data, method="POST", headers={"Content-Type": "application/json", "User-Agent": USER_AGENT}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.settings.timeout) as response:  # http(s): see _url
                response.read()
        except urllib.error.HTTPError as exc:
            detail = _detail(exc)
            if exc.code == 429 or exc.code >= 500:
                raise Transient(f"HTTP {exc.code}{detail}", _retry_after(exc.headers.get("Retry-After"))) from None
            raise NotSent(f"HTTP {exc.code}{detail}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Transient(f"no answer ({type(reason).__name__}: {reason})") from None

    def _publish(self, target: Target, message: Message) -> None:
        from deployfw.aws.clients import AwsError, aws_for

        params = masked(payloads.sns(message))
        params["TopicArn"] = target.topic_arn
        if str(target.topic_arn).endswith(".fifo"):
            params["MessageGroupId"] = "deployfw"
            params["MessageDeduplicationId"] = f"{self.ctx.run_id}-{message.event}-{message.data.get('module', '')}"
        try:
            aws_for(self.ctx).call("sns", "publish", deadline=DEADLINE_SECONDS, **params)
        except AwsError as exc:
            raise NotSent(str(exc)) from None

    # -- where the URL is ----------------------------------------------------------------

    def _url(self, target: Target) -> str:
        source = str(target.url_from)
        if source not in self._urls:
            url = self._read(source)
            redact.register(url)
            scheme = urllib.parse.urlsplit(url).scheme
            if scheme not in ("https", "http"):
                raise NotSent(f"the URL from {source} is not an http(s) URL")
            self._urls[source] = url
        return self._urls[source]

    def _read(self, source: str) -> str:
        kind, _, ref = source.partition(":")
        if kind == "env":
            value = self._environ.get(ref, "").strip()
            if not value:
                raise NotSent(f"environment variable {ref} is not set")
            return str(value)
        from deployfw.aws.clients import AwsError, aws_for

        aws = aws_for(self.ctx)
        try:
            if kind == "ssm":
                return str(aws.call("ssm", "get_parameter", Name=ref, WithDecryption=True)["Parameter"]["Value"])
            secret_id, _, key = ref.partition("#")
            secret = aws.call("secretsmanager", "get_secret_value", SecretId=secret_id).get("SecretString")
        except AwsError as exc:
            raise NotSent(f"cannot read the webhook URL from {source}: {exc.code or exc}") from None
        if not isinstance(secret, str):
            raise NotSent(f"secret {secret_id} has no SecretString")
        if not key:
            return secret.strip()
        redact.register(secret)
        try:
            value = json.loads(secret)[key]
        except (ValueError, KeyError, TypeError):
            raise NotSent(f"secret {secret_id} is not a JSON object with the key {key!r}") from None
        return str(value).strip()


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _detail(exc: urllib.error.HTTPError) -> str:
    """The start of the error body (Slack says ``invalid_payload``, ``no_service``...), masked."""
    try:
        text = exc.read(200).decode("utf-8", "replace").strip()
    except Exception:
        return ""
    return f" ({redact.mask(' '.join(text.split()))})" if text else ""
