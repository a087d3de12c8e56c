"""The Jenkins client boundary: the one place deployfw talks to Jenkins (through python-jenkins).

Everything above this module (the ``jenkins`` build backend) speaks in jobs, queue
tickets, build numbers and console lines; everything Jenkins-specific stays here:

* **Auth first.** The first operation calls ``get_whoami()`` (python-jenkins's
  ``get_version()`` would go out anonymously and fail on a locked-down controller), so a
  bad token is one clear :class:`JenkinsAuthError` before anything is triggered.
* **Retries.** Every call goes through :meth:`JenkinsClient._call`: transient failures
  (5xx, resets, timeouts, empty bodies; see :mod:`deployfw_jenkins.retrying`) are retried
  with jittered exponential backoff within a deadline; a stale CSRF crumb is refreshed
  and the call repeated once; auth failures and 404s are not retried.
* **Triggering is not idempotent**, so each trigger carries a ``DEPLOYFW_RUN_ID``
  parameter; after an ambiguous failure the client looks for that id in the queue and
  in the job's recent builds before triggering again.
* **Every wait has a deadline** (absolute, on the injected ``clock``) and a poll interval
  that backs off while nothing changes; ``sleep`` and ``clock`` are injectable for tests.

Typical use (the backend)::

    client = JenkinsClient(JenkinsCredentials.from_environment())
    queued = client.trigger("services/user-api", {"MODULE": "user-api", "COMMIT": sha})
    number = client.wait_for_build(queued, client.deadline(600))
    try:
        client.stream_console(queued.job, number, log.info, cancel=cancel_event)
    finally:
        if cancel_event.is_set():
            client.stop(queued.job, number)
    outcome = client.wait_for_result(queued.job, number, client.deadline(60))
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import jenkins
import requests
import tenacity

from deployfw.redact import mask
from deployfw_jenkins.credentials import JenkinsCredentials
from deployfw_jenkins.errors import (
    JenkinsAuthError,
    JenkinsCancelled,
    JenkinsError,
    JenkinsNotFound,
    JenkinsRefused,
    JenkinsTimeout,
    JenkinsUnavailable,
    QueueItemCancelled,
    QueueItemExpired,
)
from deployfw_jenkins.retrying import Failure, Glitch, PollPolicy, RetryPolicy, classify, status_of

RUN_ID_PARAMETER = "DEPLOYFW_RUN_ID"
"""The job parameter that makes a trigger findable again after an ambiguous failure."""

_RECENT_BUILDS = 50
_T = TypeVar("_T")
log = logging.getLogger("deployfw.jenkins")


@dataclass(frozen=True)
class Queued:
    """What a trigger returns: the queue item id plus what is needed to find the build
    even after Jenkins has forgotten the queue item."""

    job: str
    queue_id: int
    run_id: str | None


@dataclass(frozen=True)
class BuildResult:
    """A build's state. ``result`` is ``None`` while it runs, then SUCCESS, FAILURE,
    UNSTABLE, ABORTED or NOT_BUILT."""

    job: str
    number: int
    building: bool
    result: str | None
    duration_ms: int
    url: str
    queue_id: int | None
    parameters: Mapping[str, str]


class JenkinsClient:
    """A deployfw-shaped, retrying, redacting client for one Jenkins controller.

    Thread-safe enough to share between module builds: python-jenkins keeps a
    ``requests.Session`` and a cached crumb, both safe to use concurrently.
    """

    def __init__(
        self,
        credentials: JenkinsCredentials,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        poll: PollPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        jenkins_factory: Callable[..., jenkins.Jenkins] = jenkins.Jenkins,
    ) -> None:
        self.credentials = credentials
        self.url = credentials.url
        self._retry = retry or RetryPolicy()
        self._poll = poll or PollPolicy()
        self._sleep = sleep
        self.clock = clock
        self._server = jenkins_factory(
            credentials.url, username=credentials.user, password=credentials.token, timeout=timeout
        )
        self._whoami: dict[str, Any] | None = None
        self._connect_lock = threading.Lock()

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> JenkinsClient:
        """A client for ``JENKINS_URL``/``JENKINS_USER``/``JENKINS_API_TOKEN`` (or its file)."""
        return cls(JenkinsCredentials.from_environment(environ), **kwargs)

    def deadline(self, seconds: float) -> float:
        """The absolute deadline ``seconds`` from now on this client's clock."""
        return self.clock() + seconds

    # -- auth -----------------------------------------------------------------------
    def connect(self) -> dict[str, Any]:
        """Check the credentials with ``get_whoami()``; returns Jenkins's user record.

        Raises :class:`JenkinsAuthError` for a rejected token or a user without
        Overall/Read, :class:`JenkinsError` if the URL is not a Jenkins controller.
        Called automatically before the first operation.
        """
        with self._connect_lock:
            if self._whoami is None:
                me = self._call("check credentials", self._server.get_whoami, connect=False)
                if me.get("id") in (None, "anonymous"):
                    raise JenkinsAuthError(
                        f"Jenkins at {self.url} treated user {self.credentials.user!r} as anonymous: "
                        "check JENKINS_USER and JENKINS_API_TOKEN"
                    )
                self._whoami = me
            return self._whoami

    # -- trigger --------------------------------------------------------------------
    def job_parameters(self, job: str) -> dict[str, str]:
        """The parameters ``job`` defines, with their defaults (``{}``: not parameterised)."""
        info = self._call(f"read job {job}", self._server.get_job_info, job)
        params: dict[str, str] = {}
        for prop in info.get("property") or []:
            for definition in prop.get("parameterDefinitions") or []:
                default = (definition.get("defaultParameterValue") or {}).get("value")
                params[definition["name"]] = "" if default is None else str(default)
        return params

    def trigger(
        self,
        job: str,
        params: Mapping[str, str] | None = None,
        *,
        run_id: str | None = None,
        deadline: float | None = None,
    ) -> Queued:
        """Queue a build of ``job`` (``folder/name``) with ``params``; returns its ticket.

        A ``DEPLOYFW_RUN_ID`` parameter (``run_id``, generated if not given) is added so
        that a retry after an ambiguous failure (reset, timeout, 5xx after the request
        was sent) finds the first trigger instead of starting a second build. If the job
        does not define that parameter, such failures are not retried (a clear error
        says why). Parameters the job does not define are dropped by Jenkins; they are
        logged as a warning.
        """
        self.connect()
        defined = self.job_parameters(job)
        values = {k: str(v) for k, v in (params or {}).items()}
        ignored = sorted(set(values) - set(defined) - {RUN_ID_PARAMETER})
        if ignored:
            log.warning("Jenkins job %s does not define parameter(s) %s; Jenkins ignores them", job, ignored)
        if values and not defined:
            raise JenkinsRefused(
                f"Jenkins job {job} takes no parameters, but deployfw passes {sorted(values)}: "
                "make it a parameterised job"
            )
        findable = RUN_ID_PARAMETER in defined
        run = run_id or uuid.uuid4().hex
        if findable:
            values[RUN_ID_PARAMETER] = run
        attempts = 0

        def attempt() -> int:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                if not findable:
                    raise JenkinsError(
                        f"triggering Jenkins job {job} failed ambiguously and it does not define a "
                        f"{RUN_ID_PARAMETER} string parameter, so deployfw cannot tell whether the "
                        "build was queued; not retrying (add the parameter to the job)"
                    )
                found = self._find_run(job, run)
                if found is not None:
                    log.info("Jenkins job %s: found the build queued by the first attempt", job)
                    return found
            return self._server.build_job(job, values or None)

        queue_id = self._call(f"trigger {job}", attempt, deadline=deadline, retry_fatal_as=JenkinsRefused)
        log.info("Jenkins job %s queued as item %s", job, queue_id)
        return Queued(job, queue_id, run if findable else None)

    def _find_run(self, job: str, run_id: str) -> int | None:
        """The queue id of the item or build carrying ``DEPLOYFW_RUN_ID=run_id``.

        The queue is read before the builds: an item leaves the queue exactly when its
        build appears, so this order cannot miss one that is moving between them.
        """
        for item in self._server.get_queue_info():
            if _parameters(item).get(RUN_ID_PARAMETER) == run_id:
                return int(item["id"])
        for build in self._recent_builds(job):
            if _parameters(build).get(RUN_ID_PARAMETER) == run_id:
                return int(build["queueId"])
        return None

    def _recent_builds(self, job: str) -> list[dict[str, Any]]:
        tree = f"builds[number,queueId,actions[parameters[name,value]]]{{0,{_RECENT_BUILDS}}}"
        response = self._server.jenkins_open(
            requests.Request("GET", f"{self._job_url(job)}api/json?tree={quote(tree)}")
        )
        if not response:
            raise Glitch(f"empty answer for the builds of {job}")
        return list(json.loads(response).get("builds") or [])

    # -- queue ----------------------------------------------------------------------
    def wait_for_build(self, queued: Queued | int, deadline: float, cancel: threading.Event | None = None) -> int:
        """Follow a queue item until its build starts; returns the build number.

        Raises :class:`QueueItemCancelled` if someone cancelled it in Jenkins,
        :class:`QueueItemExpired` if Jenkins forgot it and no build carries its run id,
        and :class:`JenkinsTimeout` (after cancelling the item, so no build nobody watches
        starts later) if it is still queued at ``deadline``. When ``cancel`` is set the
        item is cancelled in Jenkins and :class:`JenkinsCancelled` raised - unless its
        build started in the meantime, whose number is then returned so the caller
        (who sees ``cancel`` set) can stop it.
        """
        self.connect()
        ticket = queued if isinstance(queued, Queued) else Queued("", queued, None)
        interval = self._poll.initial
        while True:
            if cancel is not None and cancel.is_set():
                return self._withdraw(ticket)
            try:
                item = self._call(
                    f"read queue item {ticket.queue_id}",
                    self._server.get_queue_item,
                    ticket.queue_id,
                    deadline=deadline,
                )
            except JenkinsNotFound:
                return self._expired(ticket)
            if item.get("cancelled"):
                raise QueueItemCancelled(
                    f"Jenkins queue item {ticket.queue_id} ({ticket.job or 'job'}) was cancelled "
                    "before its build started"
                )
            executable = item.get("executable") or {}
            if executable.get("number") is not None:
                return int(executable["number"])
            remaining = deadline - self.clock()
            if remaining <= 0:
                self.cancel_queue(ticket.queue_id)
                raise JenkinsTimeout(
                    f"Jenkins queue item {ticket.queue_id} ({ticket.job or 'job'}) did not start before "
                    f"the deadline (still waiting: {item.get('why') or 'no reason given'}); cancelled it"
                )
            if cancel is not None:
                cancel.wait(min(interval, remaining))
            else:
                self._sleep(min(interval, remaining))
            interval = min(interval * self._poll.factor, self._poll.maximum)

    def _withdraw(self, ticket: Queued) -> int:
        """Cancel a queue item for a cancelled run; the build number if it had already started."""
        self.cancel_queue(ticket.queue_id)
        try:
            item = self._call(f"read queue item {ticket.queue_id}", self._server.get_queue_item, ticket.queue_id)
        except JenkinsNotFound:
            item = {}
        executable = item.get("executable") or {}
        if executable.get("number") is not None:
            return int(executable["number"])
        raise JenkinsCancelled(
            f"cancelled while Jenkins queue item {ticket.queue_id} ({ticket.job or 'job'}) was waiting; "
            "the item was cancelled in Jenkins"
        )

    def _expired(self, ticket: Queued) -> int:
        if ticket.job and ticket.run_id:
            builds = self._call(f"read builds of {ticket.job}", self._recent_builds, ticket.job)
            for build in builds:
                if _parameters(build).get(RUN_ID_PARAMETER) == ticket.run_id:
                    return int(build["number"])
        raise QueueItemExpired(
            f"Jenkins no longer knows queue item {ticket.queue_id} ({ticket.job or 'job'}) and no "
            "build of it was found: it expired or was deleted"
        )

    def cancel_queue(self, queue_id: int) -> None:
        """Cancel a queued item (best effort: an item that already left is left alone)."""
        self.connect()
        try:
            self._call(f"cancel queue item {queue_id}", self._server.cancel_queue, queue_id)
        except JenkinsError as exc:
            log.warning("could not cancel Jenkins queue item %s: %s", queue_id, exc)

    # -- builds ---------------------------------------------------------------------
    def result(self, job: str, number: int) -> BuildResult:
        """The current state of build ``number`` of ``job``."""
        self.connect()
        info = self._call(f"read build {job} #{number}", self._server.get_build_info, job, number)
        return BuildResult(
            job=job,
            number=int(info["number"]),
            building=bool(info.get("building")),
            result=info.get("result"),
            duration_ms=int(info.get("duration") or 0),
            url=str(info.get("url") or f"{self._job_url(job)}{number}/"),
            queue_id=info.get("queueId"),
            parameters=_parameters(info),
        )

    def wait_for_result(self, job: str, number: int, deadline: float) -> BuildResult:
        """Poll until the build has finished; :class:`JenkinsTimeout` at ``deadline``."""
        interval = self._poll.initial
        while True:
            outcome = self.result(job, number)
            if not outcome.building and outcome.result is not None:
                return outcome
            remaining = deadline - self.clock()
            if remaining <= 0:
                raise JenkinsTimeout(f"Jenkins build {job} #{number} was still running at the deadline")
            self._sleep(min(interval, remaining))
            interval = min(interval * self._poll.factor, self._poll.maximum)

    def stop(self, job: str, number: int) -> None:
        """Abort build ``number`` (it ends ABORTED); stopping a finished build is a no-op."""
        self.connect()
        self._call(f"stop build {job} #{number}", self._server.stop_build, job, number)
        log.info("asked Jenkins to stop %s #%s", job, number)

    def console_text(self, job: str, number: int) -> str:
        """The whole console log of a build (finished or not)."""
        self.connect()
        return self._call(f"read console of {job} #{number}", self._server.get_build_console_output, job, number)

    def stream_console(
        self,
        job: str,
        number: int,
        emit: Callable[[str], None],
        cancel: threading.Event | None = None,
        *,
        start: int = 0,
        deadline: float | None = None,
    ) -> bool:
        """Follow the build's console through ``logText/progressiveText``, one line per ``emit``.

        Lines are passed without their newline, decoded as UTF-8. Returns True once the
        build has finished and its whole log was emitted, False as soon as ``cancel`` is
        set (the build keeps running: the caller decides whether to :meth:`stop` it).
        Raises :class:`JenkinsTimeout` if the log is still growing at ``deadline``.
        """
        self.connect()
        url_base = f"{self._job_url(job)}{number}/logText/progressiveText?start="
        offset = start
        pending = b""
        interval = self._poll.initial
        while True:
            if cancel is not None and cancel.is_set():
                return False

            def read(at: int = offset) -> tuple[bytes, int, bool]:
                response = self._server.jenkins_request(requests.Request("GET", f"{url_base}{at}"))
                size = response.headers.get("X-Text-Size")
                if size is None:
                    raise Glitch("progressiveText answer without X-Text-Size")
                more = response.headers.get("X-More-Data", "").lower() == "true"
                return response.content, int(size), more

            chunk, offset, more = self._call(f"read console of {job} #{number}", read, deadline=deadline)
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                emit(line.decode("utf-8", errors="replace"))
            if not more:
                if pending:
                    emit(pending.decode("utf-8", errors="replace"))
                return True
            interval = self._poll.initial if chunk else min(interval * self._poll.factor, self._poll.maximum)
            if deadline is not None and self.clock() + interval > deadline:
                raise JenkinsTimeout(f"Jenkins build {job} #{number} was still logging at the deadline")
            if cancel is not None:
                if cancel.wait(interval):
                    return False
            else:
                self._sleep(interval)

    # -- plumbing -------------------------------------------------------------------
    def _job_url(self, job: str) -> str:
        """``folder/name`` -> ``<JENKINS_URL>job/folder/job/name/`` (our URL, not Jenkins's
        configured root URL, which may be unreachable from here behind a proxy)."""
        return self.url + "".join(f"job/{quote(part, safe='')}/" for part in job.split("/"))

    def _call(
        self,
        what: str,
        fn: Callable[..., _T],
        *args: Any,
        deadline: float | None = None,
        connect: bool = True,
        retry_fatal_as: type[JenkinsError] = JenkinsError,
    ) -> _T:
        """Run one python-jenkins call under the retry policy and translate its failure."""
        if connect and self._whoami is None:
            self.connect()
        limit = self.clock() + self._retry.budget
        if deadline is not None:
            limit = min(limit, deadline)

        def attempt() -> _T:
            try:
                return fn(*args)
            except jenkins.JenkinsException as exc:
                if classify(exc) is not Failure.CRUMB:
                    raise
                log.info("Jenkins rejected the CSRF crumb (%s); fetching a new one", what)
                self._server.crumb = None
                return fn(*args)

        def out_of_time(state: tenacity.RetryCallState) -> bool:
            return self.clock() + (state.upcoming_sleep or 0.0) > limit

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning(
                "%s",
                mask(
                    f"Jenkins: {what} failed ({_describe(exc)}); retry {state.attempt_number} "
                    f"in {state.upcoming_sleep:.1f}s"
                ),
            )

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(lambda e: classify(e) is Failure.TRANSIENT),
            wait=tenacity.wait_random_exponential(multiplier=self._retry.initial, max=self._retry.maximum),
            stop=out_of_time,
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except JenkinsError:
            raise
        except Exception as exc:
            raise self._translate(what, exc, retry_fatal_as) from exc

    def _translate(self, what: str, exc: BaseException, fatal: type[JenkinsError]) -> JenkinsError:
        kind = classify(exc)
        detail = _describe(exc)
        user = self.credentials.user
        if kind is Failure.AUTH or kind is Failure.CRUMB:
            status = status_of(exc)
            if status == 401:
                return JenkinsAuthError(
                    f"Jenkins at {self.url} rejected the API token of user {user!r} (HTTP 401) while "
                    f"trying to {what}: check JENKINS_USER and JENKINS_API_TOKEN"
                )
            return JenkinsAuthError(
                f"Jenkins at {self.url} denied user {user!r} (HTTP {status or 403}) while trying to "
                f"{what}: the user lacks a permission it needs ({detail})"
            )
        if kind is Failure.NOT_FOUND:
            if what == "check credentials":
                return JenkinsError(f"{self.url} does not look like a Jenkins controller (me/api/json: 404)")
            return JenkinsNotFound(f"Jenkins at {self.url}: could not {what}: not found (HTTP 404)")
        if kind is Failure.TRANSIENT:
            return JenkinsUnavailable(
                f"Jenkins at {self.url}: could not {what}: still failing at the deadline ({detail})"
            )
        status = status_of(exc)
        if status == 409:
            return JenkinsRefused(f"Jenkins at {self.url} refused to {what}: the job is disabled (HTTP 409)")
        return fatal(f"Jenkins at {self.url}: could not {what}: {detail}")


def _describe(exc: BaseException | None) -> str:
    """One line about an exception: python-jenkins's messages carry whole HTML pages."""
    if exc is None:
        return "no error"
    status = status_of(exc)
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    text = f"{type(exc).__name__}: {first}"
    if status is not None and f"{status}" not in first:
        text += f" (HTTP {status})"
    return mask(text[:300])


def _parameters(data: Mapping[str, Any]) -> dict[str, str]:
    """The ``name -> value`` parameters in a build's or queue item's ``actions``."""
    found: dict[str, str] = {}
    for action in data.get("actions") or []:
        for param in (action or {}).get("parameters") or []:
            if "name" in param:
                found[param["name"]] = "" if param.get("value") is None else str(param["value"])
    return found
