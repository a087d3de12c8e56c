"""``JenkinsDouble``: a loopback Jenkins controller that python-jenkins can drive.

No real controller can run here (see shared/research/jenkins-double.md), so the Jenkins
build backend is tested against this double. It copies the behaviour clients depend on
- auth and crumbs, folders, parameterised triggers, the queue, builds that run real
commands, progressive console text, stop, 404s and headers - and lets tests inject the
faults real networks and proxies produce.
"""

from __future__ import annotations

import secrets
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Any

from deployfw.sandbox.jenkins.auth import Security
from deployfw.sandbox.jenkins.builds import Build
from deployfw.sandbox.jenkins.faults import Fault, FaultPlan
from deployfw.sandbox.jenkins.handler import JenkinsHandler, Site
from deployfw.sandbox.jenkins.jobs import Job, add_job, walk_jobs
from deployfw.sandbox.jenkins.requestlog import LoggedRequest, RequestLog
from deployfw.sandbox.jenkins.state import Controller, Timing
from deployfw.sandbox.ports import HOST, listen


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (timeouts, injected resets) are normal here, not errors."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class JenkinsDouble:
    """A Jenkins controller double on 127.0.0.1.

    ``quiet_period`` (seconds a triggered item waits before it may start; Jenkins's
    default is 5), ``queue_ttl`` (how long a left queue item stays readable; Jenkins keeps
    it about 5 minutes) and ``executors`` set its pace. ``password`` adds password
    authentication for the user (which, unlike the API token, needs CSRF crumbs);
    ``anonymous_read`` lets unauthenticated clients read.
    """

    def __init__(
        self,
        port: int = 0,
        *,
        user: str = "deployfw",
        token: str | None = None,
        password: str | None = None,
        anonymous_read: bool = False,
        quiet_period: float = 0.2,
        queue_ttl: float = 300.0,
        executors: int = 2,
        faults: str = "",
        seed: int = 0,
    ) -> None:
        self._port = port
        self.user = user
        self.token = token or secrets.token_hex(17)  # Jenkins API tokens are 34 hex chars
        self._faults = FaultPlan()
        self._faults.rng.seed(seed)
        self._faults.replace(faults)
        self._security = Security(user, self.token, password, anonymous_read)
        self._controller = Controller(
            Timing(quiet_period=quiet_period, queue_ttl=queue_ttl, executors=executors), self._faults
        )
        self._log = RequestLog()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> JenkinsDouble:
        """Bind and serve in a background thread; returns self."""
        site = Site(self._controller, self._security, self._faults, self._log, secrets.token_hex(4))
        handler = type("BoundJenkinsHandler", (JenkinsHandler,), {"site": site})
        # Bound here, in the caller's thread: a busy port is PortUnavailable naming it, never a traceback.
        sock = listen(self._port, "Jenkins double")
        port: int = sock.getsockname()[1]
        self._server = _Server((HOST, port), handler, bind_and_activate=False)
        self._server.socket.close()
        self._server.socket = sock
        self._server.server_address = (HOST, port)
        self._controller.base_url = f"http://{HOST}:{port}/"
        self._controller.start()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name="jenkins-double-http",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Abort running builds, stop serving and release the port."""
        self._controller.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> JenkinsDouble:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The controller URL with a trailing slash (``JENKINS_URL``)."""
        if self._server is None:
            raise RuntimeError("JenkinsDouble is not started")
        return self._controller.base_url

    def environment(self) -> dict[str, str]:
        """``JENKINS_URL``/``JENKINS_USER``/``JENKINS_API_TOKEN`` for a client of this double."""
        return {"JENKINS_URL": self.url, "JENKINS_USER": self.user, "JENKINS_API_TOKEN": self.token}

    # -- configuration ---------------------------------------------------------------
    def add_job(
        self,
        full_name: str,
        *,
        command: Sequence[str],
        parameters: Mapping[str, str] | None = None,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        module: str | None = None,
        disabled: bool = False,
        unstable_return: int | None = None,
    ) -> Job:
        """Create (or replace) job ``full_name`` (``folder/job`` creates folders).

        ``command`` runs for each build in ``cwd`` with ``env`` over the controller's
        environment, plus Jenkins's build variables and the build's parameters.
        ``parameters`` maps each defined parameter to its default; a job without any is
        not parameterised (``buildWithParameters`` answers 500). ``module`` names the
        deployfw module the job builds, for the ``build:<module>`` fault. A command
        exiting with ``unstable_return`` ends the build UNSTABLE (the shell step's
        ``unstableReturn``) rather than FAILURE.
        """
        with self._controller.lock:
            return add_job(
                self._controller.root,
                full_name,
                command=command,
                parameters=parameters or {},
                cwd=cwd,
                env=env,
                module=module,
                disabled=disabled,
                unstable_return=unstable_return,
            )

    def set_job_disabled(self, full_name: str, disabled: bool = True) -> None:
        """Disable (triggers answer 409) or enable a job."""
        job = self._job(full_name)
        with self._controller.lock:
            job.disabled = disabled

    def set_faults(self, spec: str = "", *rules: Fault) -> None:
        """Replace all faults: ``spec`` in DESIGN.md syntax plus surgical :class:`Fault` rules.

        ``set_faults()`` clears them. Example:
        ``set_faults("build:user-api", Fault("status", r"/queue/item/", status=502, times=2))``.
        """
        self._faults.replace(spec, rules)

    def set_crumbs(self, *, issuer: bool = True, tokens_exempt: bool = True) -> None:
        """Turn the crumb issuer on/off (off: 404, no CSRF check) and the API-token exemption."""
        self._security.issuer_enabled = issuer
        self._security.tokens_exempt = tokens_exempt

    def invalidate_crumbs(self) -> None:
        """Make every crumb issued so far stale, as a controller restart does."""
        self._security.invalidate_crumbs()

    # -- observation -----------------------------------------------------------------
    def requests(self) -> list[LoggedRequest]:
        """Every request so far (method, path, query, status, user, fault), oldest first."""
        return self._log.entries()

    def clear_requests(self) -> None:
        """Forget the request log (to assert on one phase of a test)."""
        self._log.clear()

    @property
    def last_request(self) -> float:
        """``time.monotonic()`` of the latest request, else of the start."""
        return self._log.last

    def builds(self, full_name: str) -> list[Build]:
        """The job's builds, newest first (to inspect results without HTTP)."""
        return self._controller.builds(self._job(full_name))

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until no item is queued and no build runs; True if that happened in time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._controller.lock:
                busy = self._controller.waiting_items() or any(
                    b.building for j in self._all_jobs() for b in self._controller.builds(j)
                )
            if not busy:
                return True
            time.sleep(0.01)
        return False

    def _all_jobs(self) -> list[Job]:
        return walk_jobs(self._controller.root)

    def _job(self, full_name: str) -> Job:
        item = self._controller.item(full_name.split("/"))
        if not isinstance(item, Job):
            raise KeyError(f"no Jenkins job {full_name!r}")
        return item
