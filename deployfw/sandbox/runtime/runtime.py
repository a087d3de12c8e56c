"""Tasks as processes: the sandbox's container runtime, shared by every kind of compute.

:class:`TaskRuntime` starts a *task* - one or more containers sharing one network
address, as an awsvpc task does - from images in the sandbox's registry, watches its
processes, and stops them. It knows nothing of ECS: the ECS scheduler (rolling
deployments, task sets, ECS-native deployments) and the server-instance platform ask
it for tasks and read their state back. Everything it starts dies with it:
:meth:`TaskRuntime.shutdown` (called by the sandbox's ``stop()`` and at interpreter
exit) kills every process group and removes every namespace, and each process also
carries ``PR_SET_PDEATHSIG`` (see :mod:`.launcher`) for the case where the sandbox is
killed outright.

One worker thread does all starting and stopping: it is the parent of every task
process (the death signal is tied to the thread that forked), and it keeps slow work
(unpacking layers, ``ip`` commands) out of the request threads and the sandbox lock.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from deployfw.sandbox.runtime.blobs import BlobStore, blob_store
from deployfw.sandbox.runtime.image import PullError, launch_for, read_image, unpack
from deployfw.sandbox.runtime.network import Endpoint, NetworkError, TaskNetwork, open_network

_LAUNCHER = str(Path(__file__).with_name("launcher.py"))
_STOP_GRACE = 2.0
"""Real seconds between SIGTERM and SIGKILL (ECS: the container's stopTimeout, 30 s by default)."""


@dataclass(frozen=True)
class ContainerSpec:
    """One container of a task: its image (manifest as the registry holds it) and overrides."""

    name: str
    image: str
    manifest: str | None
    """The manifest the registry returns for ``image``; None when the registry has no such image."""
    essential: bool = True
    entry_point: Sequence[str] | None = None
    command: Sequence[str] | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    working_directory: str | None = None
    ports: tuple[int, ...] = ()


@dataclass(frozen=True)
class TaskSpec:
    """A task to run; ``labels`` are the caller's (cluster, service, ...), kept for listings."""

    containers: tuple[ContainerSpec, ...]
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass
class ContainerState:
    name: str
    image: str
    essential: bool
    status: str = "PENDING"
    exit_code: int | None = None
    reason: str | None = None
    pid: int | None = None
    log: Path | None = None


@dataclass
class TaskState:
    """What the runtime knows about one task; read it under no lock (fields are replaced atomically)."""

    task_id: str
    spec: TaskSpec
    status: str = "PROVISIONING"
    """PROVISIONING -> PENDING -> RUNNING -> STOPPING -> STOPPED (ECS's lastStatus names)."""
    desired: str = "RUNNING"
    address: str | None = None
    stopped_reason: str | None = None
    stop_code: str | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    stopped: float | None = None
    containers: list[ContainerState] = field(default_factory=list)
    folder: Path | None = None
    endpoint: Endpoint | None = None
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)
    kill_at: float | None = None


class TaskRuntime:
    """Starts, watches and stops tasks; see the module docstring."""

    def __init__(self, *, store: BlobStore | None = None, network: str | None = None, root: Path | None = None) -> None:
        self.store = store or blob_store()
        self._network_kind = network
        self._network: TaskNetwork | None = None
        self.root = root or Path(tempfile.mkdtemp(prefix="deployfw-sandbox-tasks-"))
        self._tasks: dict[str, TaskState] = {}
        self._lock = threading.Lock()
        self._commands: queue.Queue[tuple[str, str]] = queue.Queue()
        self._ids = itertools.count(1)
        self._closed = threading.Event()
        self._worker = threading.Thread(target=self._run, name="sandbox-task-runtime", daemon=True)
        self._worker.start()
        _live.add(self)

    # -- the interface -------------------------------------------------------------------

    @property
    def network_kind(self) -> str:
        return self._network.kind if self._network else (self._network_kind or "pending")

    def start(self, spec: TaskSpec, task_id: str | None = None) -> TaskState:
        """Ask for a task; it is PROVISIONING now and moves on in the background."""
        task_id = task_id or f"task-{next(self._ids)}"
        state = TaskState(task_id, spec)
        state.containers = [ContainerState(c.name, c.image, c.essential) for c in spec.containers]
        with self._lock:
            if self._closed.is_set():
                raise RuntimeError("the task runtime is shut down")
            self._tasks[task_id] = state
        self._commands.put(("start", task_id))
        return state

    def stop(self, task_id: str, reason: str, code: str = "UserInitiated") -> None:
        """Ask a task to stop (SIGTERM, then SIGKILL after a grace period)."""
        with self._lock:
            state = self._tasks.get(task_id)
            if state is None or state.desired == "STOPPED":
                return
            state.desired = "STOPPED"
            state.stopped_reason = state.stopped_reason or reason
            state.stop_code = state.stop_code or code
        self._commands.put(("stop", task_id))

    def get(self, task_id: str) -> TaskState | None:
        with self._lock:
            return self._tasks.get(task_id)

    def tasks(self) -> list[TaskState]:
        with self._lock:
            return list(self._tasks.values())

    def forget(self, task_id: str) -> None:
        """Drop a STOPPED task from the listing (ECS forgets stopped tasks after a while)."""
        with self._lock:
            state = self._tasks.get(task_id)
            if state is not None and state.status == "STOPPED":
                del self._tasks[task_id]

    def shutdown(self) -> None:
        """Kill every task, remove every namespace and folder; safe to call twice."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._commands.put(("shutdown", ""))
        self._worker.join(timeout=15)
        _live.discard(self)

    # -- the worker ------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                try:
                    command, task_id = self._commands.get(timeout=0.05)
                except queue.Empty:
                    command, task_id = "", ""
                if command == "shutdown":
                    break
                try:
                    if command == "start":
                        self._start(task_id)
                    elif command == "stop":
                        self._begin_stop(task_id)
                    self._watch()
                except Exception as exc:  # a task's failure must never stop the runtime
                    sys.stderr.write(f"deployfw sandbox task runtime: {type(exc).__name__}: {exc}\n")
        finally:
            self._kill_everything()

    def _net(self) -> TaskNetwork:
        if self._network is None:
            self._network = open_network(self._network_kind)
        return self._network

    def _start(self, task_id: str) -> None:
        state = self.get(task_id)
        if state is None or state.desired == "STOPPED":
            if state is not None:
                self._finish(state)
            return
        state.status = "PENDING"
        folder = self.root / task_id
        state.folder = folder
        try:
            pulled = []
            for spec in state.spec.containers:
                if spec.manifest is None:
                    raise PullError(f"{spec.image}: not found in the registry")
                pulled.append(read_image(spec.image, spec.manifest, self.store))
        except PullError as exc:
            self._fail_start(state, f"CannotPullContainerError: {exc}", "TaskFailedToStart")
            return
        network = self._net()
        ports = [p for c in state.spec.containers for p in c.ports]
        try:
            endpoint = network.create(ports) if network.kind == "loopback" else network.create()  # type: ignore[call-arg]
        except NetworkError as exc:
            self._fail_start(state, f"ResourceInitializationError: {exc}", "TaskFailedToStart")
            return
        state.endpoint = endpoint
        state.address = endpoint.address
        for spec, image, container in zip(state.spec.containers, pulled, state.containers, strict=True):
            rootfs = folder / "containers" / spec.name / "rootfs"
            try:
                unpack(image, self.store, rootfs)
                launch = launch_for(
                    image.config,
                    rootfs,
                    entry_point=spec.entry_point,
                    command=spec.command,
                    environment=spec.environment,
                    working_directory=spec.working_directory,
                )
            except (PullError, OSError) as exc:
                self._fail_start(state, f"CannotStartContainerError: {exc}", "TaskFailedToStart")
                return
            env = dict(launch.env)
            env["DEPLOYFW_TASK_ADDRESS"] = endpoint.address
            site = network.site_dir()
            if site is not None:
                env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
            log = folder / "containers" / spec.name / "output.log"
            container.log = log
            with open(log, "ab") as out:
                process = subprocess.Popen(
                    [
                        sys.executable,
                        "-S",
                        _LAUNCHER,
                        str(os.getpid()),
                        endpoint.netns_path or "",
                        str(launch.cwd),
                        *launch.argv,
                    ],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    close_fds=True,
                )
            state.processes[spec.name] = process
            container.pid = process.pid
            container.status = "RUNNING"
        state.started = time.time()
        state.status = "RUNNING"
        if state.desired == "STOPPED":
            self._begin_stop(task_id)

    def _fail_start(self, state: TaskState, reason: str, code: str) -> None:
        state.stopped_reason = state.stopped_reason or reason
        state.stop_code = state.stop_code or code
        state.desired = "STOPPED"
        for container in state.containers:
            container.status = "STOPPED"
            container.reason = reason
        self._finish(state)

    def _begin_stop(self, task_id: str) -> None:
        state = self.get(task_id)
        if state is None or state.status in ("STOPPED",):
            return
        if state.status in ("PROVISIONING", "PENDING") and not state.processes:
            self._finish(state)
            return
        if state.status != "STOPPING":
            state.status = "STOPPING"
            for process in state.processes.values():
                _signal_group(process, signal.SIGTERM)
            state.kill_at = time.monotonic() + _STOP_GRACE

    def _watch(self) -> None:
        """Notice exited processes, escalate slow stops, finish stopped tasks."""
        for state in self.tasks():
            if state.status not in ("RUNNING", "STOPPING"):
                continue
            for container in state.containers:
                process = state.processes.get(container.name)
                if process is None or container.exit_code is not None:
                    continue
                code = process.poll()
                if code is not None:
                    container.exit_code = code
                    container.status = "STOPPED"
                    if state.status == "RUNNING" and container.essential:
                        state.desired = "STOPPED"
                        state.stopped_reason = state.stopped_reason or "Essential container in task exited"
                        state.stop_code = state.stop_code or "EssentialContainerExited"
                        self._begin_stop(state.task_id)
            if state.status == "STOPPING":
                alive = [p for p in state.processes.values() if p.poll() is None]
                if alive and state.kill_at is not None and time.monotonic() >= state.kill_at:
                    for process in alive:
                        _signal_group(process, signal.SIGKILL)
                if not alive:
                    self._finish(state)

    def _finish(self, state: TaskState) -> None:
        for container in state.containers:
            process = state.processes.get(container.name)
            if process is not None:
                _signal_group(process, signal.SIGKILL)  # anything the app left in its group
                if container.exit_code is None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        container.exit_code = process.wait(timeout=5)
            container.status = "STOPPED"
        if state.endpoint is not None and self._network is not None:
            self._network.destroy(state.endpoint)
            state.endpoint = None
        state.stopped = time.time()
        state.status = "STOPPED"

    def _kill_everything(self) -> None:
        for state in self.tasks():
            for process in state.processes.values():
                _signal_group(process, signal.SIGKILL)
            for process in state.processes.values():
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=5)
            if state.status != "STOPPED":
                state.stopped_reason = state.stopped_reason or "The sandbox stopped"
                state.desired = "STOPPED"
                self._finish(state)
        if self._network is not None:
            self._network.close()
        shutil.rmtree(self.root, ignore_errors=True)


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


_live: weakref.WeakSet[TaskRuntime] = weakref.WeakSet()


@atexit.register
def _shutdown_all() -> None:
    for runtime in list(_live):
        runtime.shutdown()
