"""``AwsSandbox``: moto's threaded server on loopback, wrapped and extended for deployfw.

Lifecycle: :meth:`AwsSandbox.start` swaps our backends into moto (resetting moto's
process-wide state if no other sandbox is running), starts moto's werkzeug server
with :class:`~deployfw.sandbox.aws.wsgi.SandboxApp` around its WSGI app, and starts a
ticker that advances deployments even when nobody polls. Everything runs in daemon
threads, so a forgotten sandbox never keeps a process alive.

What is global (moto's limit): service state lives in moto's module-level backend
dictionaries, so two sandboxes running at the same time in one process see the same
AWS resources; faults, timings, the request log and the build runner are per sandbox
(the most recently started one drives the lifecycles).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from deployfw.sandbox.aws import context, install
from deployfw.sandbox.aws.context import SandboxContext, Timings
from deployfw.sandbox.aws.faults import FaultSet
from deployfw.sandbox.aws.health import HealthChecks
from deployfw.sandbox.aws.listeners import ListenerProxies
from deployfw.sandbox.aws.requestlog import RequestLog
from deployfw.sandbox.aws.wsgi import SandboxApp
from deployfw.sandbox.clock import SandboxClock
from deployfw.sandbox.fleet import Fleet
from deployfw.sandbox.ports import HOST, listen
from deployfw.sandbox.runtime import TaskRuntime

log = logging.getLogger(__name__)

ACCOUNT_ID = "123456789012"
FAULTS_ENV = "DEPLOYFW_SANDBOX_FAULTS"
SEED_ENV = "DEPLOYFW_SANDBOX_SEED"
IAM_ENV = "DEPLOYFW_SANDBOX_IAM"
IAM_MODES = ("off", "enforce", "least-privilege")


def iam_mode() -> str:
    """``DEPLOYFW_SANDBOX_IAM``: ``off`` (default), ``enforce`` or ``least-privilege`` (see the session)."""
    mode = os.environ.get(IAM_ENV, "").strip().lower() or "off"
    if mode not in IAM_MODES:
        from deployfw.errors import InputError

        raise InputError(f"{IAM_ENV}={mode!r}: expected one of {', '.join(IAM_MODES)}")
    return mode


def enforces_iam() -> bool:
    return iam_mode() != "off"


class _QuietHandler(MotoRequestHandler):
    """werkzeug logs every request line to stderr; the request log replaces that."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class _SandboxServer(ThreadedMotoServer):
    """moto's threaded server with our WSGI wrapper around its application, on a socket bound beforehand.

    moto binds inside its server thread, where a busy port ends only that thread (werkzeug prints
    and exits it) and ``start`` waits forever; here the caller binds (:func:`~deployfw.sandbox.ports.listen`,
    which fails at once with the port named) and the thread only serves.
    """

    def __init__(self, sock: socket.socket, app_factory: Any) -> None:
        super().__init__(ip_address=HOST, port=sock.getsockname()[1], verbose=False)
        self._sock = sock
        self._app_factory = app_factory

    def start(self) -> None:
        inner = DomainDispatcherApplication(create_backend_app)
        try:
            self._server = make_server(
                self._ip_address,
                self._port,
                self._app_factory(inner),
                threaded=True,
                request_handler=_QuietHandler,
                fd=self._sock.fileno(),
            )
        finally:
            self._sock.close()  # the server holds a duplicate of it
        self._server.daemon_threads = True  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="sandbox-aws-http", daemon=True
        )
        self._thread.start()
        self._server_ready_event.set()

    def stop(self) -> None:
        self._server_ready_event.clear()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()  # release the port now, not when the object is collected
        if self._thread is not None:
            self._thread.join()


class AwsSandbox:
    """An embedded AWS endpoint; see the module docstring for what is shared."""

    def __init__(
        self,
        port: int = 0,
        *,
        repo_root: Path | None = None,
        faults: str | None = None,
        build_runner: Any = None,
        timings: Timings | None = None,
        seed: int | None = None,
        time_scale: float | None = None,
        network: str | None = None,
        enforce_iam: bool | None = None,
    ) -> None:
        if faults is None:
            faults = os.environ.get(FAULTS_ENV, "")
        if seed is None and os.environ.get(SEED_ENV):
            seed = int(os.environ[SEED_ENV])
        self.ctx = SandboxContext(
            faults=FaultSet.parse(faults),
            timings=timings or Timings(),
            repo_root=Path(repo_root) if repo_root else None,
            build_runner=build_runner,
            seed=seed,
            clock=SandboxClock(time_scale) if time_scale is not None else SandboxClock.from_env(),
        )
        self._network = network
        self.enforce_iam = enforces_iam() if enforce_iam is None else enforce_iam
        self.listeners = ListenerProxies(self.ctx)
        self._port = port
        self._log = RequestLog()
        self._server: _SandboxServer | None = None
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> AwsSandbox:
        """Start serving; returns as soon as the port is bound (:class:`PortUnavailable` when it cannot be)."""
        if self._server is not None:
            return self
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            os.environ.setdefault(name, "testing")  # moto needs some credentials format
        os.environ.setdefault("MOTO_ALLOW_NONEXISTENT_REGION", "false")
        # moto's EC2 backend otherwise builds ~1,300 default AMIs (each with a snapshot and a
        # volume) for every region it serves: about 0.4 s of start-up, for images no ECS/Fargate
        # deployment uses. Set the variable to "true" to get them back.
        os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        sock = listen(self._port, "AWS endpoint")  # PortUnavailable at once, before any moto state changes
        try:
            install.install(reset=not context.any_running())
            self.ctx.runtime = TaskRuntime(network=self._network)
            self.ctx.fleet = Fleet(self.ctx.runtime)
            self.ctx.health = HealthChecks(self.ctx)
            from deployfw.sandbox.aws.authz import IamEnforcer

            self.ctx.iam = IamEnforcer(ACCOUNT_ID, self.ctx.lock, enforcing=self.enforce_iam).setup()
        except BaseException:
            sock.close()
            raise
        context.push(self.ctx)
        server = _SandboxServer(sock, lambda inner: SandboxApp(inner, self.ctx, self._log, self))
        try:
            server.start()
        except BaseException:
            context.remove(self.ctx)
            raise
        self._server = server
        host, port = self._server.get_host_and_port()
        self.ctx.endpoint_url = f"http://{host}:{port}"
        self._stop.clear()
        self._ticker = threading.Thread(target=self._tick, name="sandbox-ticker", daemon=True)
        self._ticker.start()
        self.ctx.health.start()
        self.listeners.start()
        return self

    def stop(self) -> None:
        """Stop serving, every build, every task and listener; moto's state stays until next start."""
        self._stop.set()
        self.listeners.stop()
        if self.ctx.health is not None:
            self.ctx.health.stop()
        if self.ctx.fleet is not None:
            self.ctx.fleet.shutdown()  # before the runtime: instances hold addresses of its network
        if self.ctx.runtime is not None:
            self.ctx.runtime.shutdown()
        with self.ctx.lock:
            for backend in install.sandbox_backends():
                for event in getattr(backend, "cancels", {}).values():
                    event.set()
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._ticker is not None:
            self._ticker.join(timeout=2)
            self._ticker = None
        context.remove(self.ctx)

    def __enter__(self) -> AwsSandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _tick(self) -> None:
        while not self._stop.wait(self.ctx.timings.tick):
            try:
                with self.ctx.lock:
                    for backend in install.sandbox_backends():
                        advance = getattr(backend, "sandbox_advance", None)
                        if advance is not None:
                            advance()
            except Exception:  # keep ticking; a failing step must not freeze all others
                log.exception("sandbox ticker step failed")

    # -- public surface ----------------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        if self.ctx.endpoint_url is None:
            raise RuntimeError("AwsSandbox.start() has not been called")
        return self.ctx.endpoint_url

    @property
    def port(self) -> int:
        return int(self.endpoint_url.rsplit(":", 1)[1])

    @property
    def clock(self) -> SandboxClock:
        return self.ctx.clock

    def tasks(self) -> list[dict[str, Any]]:
        """``GET /_sandbox/tasks``: every ECS task that has not stopped, with its address and health."""
        from deployfw.sandbox.aws.ecs_tasks import last_status

        rows: list[dict[str, Any]] = []
        with self.ctx.lock:
            for backend in install.sandbox_backends():
                for task in getattr(backend, "sandbox_tasks", {}).values():
                    state = self.ctx.runtime.get(task.task_id) if self.ctx.runtime else None
                    status = last_status(task, state)
                    if status == "STOPPED":
                        continue
                    port = task.targets[0][1] if task.targets else _first_port(task.containers)
                    rows.append({
                        "cluster": task.cluster,
                        "service": task.service,
                        "task_arn": task.arn,
                        "task_definition": task.task_definition_arn,
                        "address": state.address if state else None,
                        "port": port,
                        "health": self._health_of(task, state),
                        "status": status,
                        "desired_status": task.desired_status,
                        "started_by": task.started_by,
                    })  # fmt: skip
        return sorted(rows, key=lambda r: (r["cluster"], r["service"] or "", r["task_arn"]))

    def instances(self) -> list[dict[str, Any]]:
        """``GET /_sandbox/instances``: every server instance, its address, root, revision and whether its app runs."""
        return self.ctx.fleet.listing() if self.ctx.fleet is not None else []

    def _health_of(self, task: Any, state: Any) -> str:
        if state is None or state.address is None or not task.targets or self.ctx.health is None:
            return "unknown"
        verdicts = []
        for group, port in task.targets:
            target = self.ctx.health.state((group, state.address, port))
            verdicts.append(target.state if target else "unused")
        for verdict in ("unhealthy", "draining", "initial", "unused"):
            if verdict in verdicts:
                return verdict
        return "healthy"

    @property
    def timings(self) -> Timings:
        return self.ctx.timings

    @property
    def account_id(self) -> str:
        return ACCOUNT_ID

    def set_faults(self, faults: str) -> None:
        """Replace the injected faults (same syntax as ``DEPLOYFW_SANDBOX_FAULTS``)."""
        self.ctx.faults.replace(FaultSet.parse(faults))

    @property
    def faults(self) -> str:
        return str(self.ctx.faults)

    def requests(self) -> list[dict[str, Any]]:
        return self._log.entries()

    def clear_requests(self) -> None:
        self._log.clear()

    @property
    def last_request(self) -> float:
        """``time.monotonic()`` of the latest AWS request (control endpoints excluded), else of the start."""
        return self._log.last

    def hooks(self) -> list[dict[str, Any]]:
        """``GET /_sandbox/hooks``: AppSpec lifecycle hooks waiting for PutLifecycleEventHookExecutionStatus."""
        with self.ctx.lock:
            return [row for b in install.sandbox_backends() if hasattr(b, "pending_hooks") for row in b.pending_hooks()]

    def listener_urls(self) -> list[dict[str, Any]]:
        return self.listeners.listing()

    @property
    def admin_keys(self) -> dict[str, str]:
        """Credentials of the sandbox account's administrator (what any key is when IAM is not enforced)."""
        if self.ctx.iam is None or self.ctx.iam.admin is None:
            return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        return self.ctx.iam.admin.environment()

    def client(self, service: str, region: str = "us-east-1", **keys: str) -> Any:
        """A boto3 client for this sandbox, as its administrator unless ``aws_access_key_id``... are given."""
        import boto3

        admin = self.admin_keys
        options = {
            "aws_access_key_id": admin["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": admin["AWS_SECRET_ACCESS_KEY"],
            **keys,
        }
        return boto3.client(service, region_name=region, endpoint_url=self.endpoint_url, **options)


def _first_port(containers: list[dict[str, Any]]) -> int | None:
    for container in containers:
        for mapping in container.get("portMappings") or []:
            if mapping.get("containerPort"):
                return int(mapping["containerPort"])
    return None
