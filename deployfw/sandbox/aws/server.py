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
    """moto's threaded server with our WSGI wrapper around its application."""

    def __init__(self, port: int, app_factory: Any) -> None:
        super().__init__(ip_address="127.0.0.1", port=port, verbose=False)
        self._app_factory = app_factory

    def _server_entry(self) -> None:
        inner = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(
            self._ip_address,
            self._port,
            self._app_factory(inner),
            threaded=True,
            request_handler=_QuietHandler,
        )
        self._server.daemon_threads = True  # type: ignore[attr-defined]
        self._server_ready_event.set()
        self._server.serve_forever(poll_interval=0.1)


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
        """Start serving; returns as soon as the port is bound."""
        if self._server is not None:
            return self
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            os.environ.setdefault(name, "testing")  # moto needs some credentials format
        os.environ.setdefault("MOTO_ALLOW_NONEXISTENT_REGION", "false")
        # moto's EC2 backend otherwise builds ~1,300 default AMIs (each with a snapshot and a
        # volume) for every region it serves: about 0.4 s of start-up, for images no ECS/Fargate
        # deployment uses. Set the variable to "true" to get them back.
        os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        install.install(reset=not context.any_running())
        self.ctx.runtime = TaskRuntime(network=self._network)
        self.ctx.health = HealthChecks(self.ctx)
        from deployfw.sandbox.aws.authz import IamEnforcer

        self.ctx.iam = IamEnforcer(ACCOUNT_ID, self.ctx.lock, enforcing=self.enforce_iam).setup()
        context.push(self.ctx)
        self._server = _SandboxServer(self._port, lambda inner: SandboxApp(inner, self.ctx, self._log, self))
        self._server.start()
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
