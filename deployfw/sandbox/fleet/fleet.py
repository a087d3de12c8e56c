"""The sandbox's server instances: hosts with an address and a root folder of their own, and an agent each.

An instance is to CodeDeploy's Server platform what a task is to ECS: something that runs.
Each gets, like a task, an address of its own from the task runtime's network (so every
instance's app binds its usual port), a root folder (its ``/``: where the AppSpec's ``files``
go and the agent keeps its deployment root), and a host process (:mod:`.hosts`) in which its
hook scripts - and the apps they start - run. Deployments reach an instance through its
worker: one thread per instance running the agent (:mod:`.agent`) for one deployment after
another, as the real agent polls for one command at a time.

Hosts are started by one long-lived spawner thread, because the death signal that ties every
host to the sandbox belongs to the thread that started it. :meth:`Fleet.shutdown` kills every
instance and everything running in it; nothing outlives the sandbox.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deployfw.sandbox.fleet.hosts import HostProcess, pid_namespaces_available
from deployfw.serverspec import INSTANCE_ROOT_ENV

if TYPE_CHECKING:
    from deployfw.sandbox.runtime import TaskRuntime
    from deployfw.sandbox.runtime.network import Endpoint

_BASE_ENV = ("PATH", "LANG", "LC_ALL", "TZ")


@dataclass
class Instance:
    """One server: ``kind`` on-premises (registered by name) or ec2 (an instance id)."""

    name: str
    kind: str
    tags: dict[str, str]
    root: Path
    endpoint: Endpoint | None = None
    host: HostProcess | None = None
    site_dir: Path | None = None
    revision: str | None = None
    """The revision of the last deployment that succeeded on this instance (``s3://BUCKET/KEY@ETAG``)."""
    ready: threading.Event = field(default_factory=threading.Event)
    error: str | None = None
    jobs: queue.Queue[Callable[[Instance], None] | None] = field(default_factory=queue.Queue, repr=False)
    worker: threading.Thread | None = field(default=None, repr=False)

    @property
    def address(self) -> str | None:
        return self.endpoint.address if self.endpoint else None

    def script_env(self) -> dict[str, str]:
        """The environment hook scripts start from (the agent adds CodeDeploy's variables)."""
        env = {k: os.environ[k] for k in _BASE_ENV if k in os.environ}
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        env["HOME"] = str(self.root / "root")
        env[INSTANCE_ROOT_ENV] = str(self.root)
        if self.address:
            env["DEPLOYFW_TASK_ADDRESS"] = self.address
        if self.site_dir is not None:
            env["PYTHONPATH"] = str(self.site_dir)
        return env

    @property
    def app_running(self) -> bool:
        """Whether anything the scripts started is still running in the instance."""
        return bool(self.host and self.host.descendants())

    def listing(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "tags": dict(self.tags),
            "root": str(self.root),
            "address": self.address,
            "revision": self.revision,
            "app_running": self.app_running,
        }


class Fleet:
    """Every instance of one sandbox (see the module docstring)."""

    def __init__(self, runtime: TaskRuntime | None, root: Path | None = None) -> None:
        self.runtime = runtime
        self.root = root or Path(tempfile.mkdtemp(prefix="deployfw-sandbox-fleet-"))
        self._instances: dict[str, Instance] = {}
        self._lock = threading.Lock()
        self._spawns: queue.Queue[Instance | None] = queue.Queue()
        self._closed = threading.Event()
        self._isolate = pid_namespaces_available()
        self._spawner = threading.Thread(target=self._spawn_loop, name="sandbox-fleet-spawner", daemon=True)
        self._spawner.start()

    # -- membership --------------------------------------------------------------------------------

    def add(self, name: str, kind: str, tags: dict[str, str] | None = None) -> Instance:
        """The instance ``name`` (created and started when new; its tags replaced when given)."""
        with self._lock:
            found = self._instances.get(name)
            if found is not None:
                if tags is not None:
                    found.tags = dict(tags)
                return found
            if self._closed.is_set():
                raise RuntimeError("the sandbox fleet is shut down")
            root = self.root / _safe(name) / "root"
            root.mkdir(parents=True, exist_ok=True)
            instance = Instance(name, kind, dict(tags or {}), root)
            self._instances[name] = instance
        instance.worker = threading.Thread(target=self._work, args=(instance,), name=f"sandbox-agent-{name}",
                                           daemon=True)  # fmt: skip
        instance.worker.start()
        self._spawns.put(instance)
        return instance

    def get(self, name: str) -> Instance | None:
        with self._lock:
            return self._instances.get(name)

    def remove(self, name: str) -> None:
        """Deregistered: the instance stops (its processes with it) and leaves the fleet."""
        with self._lock:
            instance = self._instances.pop(name, None)
        if instance is not None:
            instance.jobs.put(None)
            self._stop(instance)

    def instances(self) -> list[Instance]:
        with self._lock:
            return sorted(self._instances.values(), key=lambda i: i.name)

    def listing(self) -> list[dict[str, Any]]:
        """``GET /_sandbox/instances`` (an instance registered a moment ago is listed once it is up)."""
        found = self.instances()
        for instance in found:
            instance.ready.wait(timeout=15)
        return [i.listing() for i in found]

    # -- work ---------------------------------------------------------------------------------------

    def submit(self, name: str, job: Callable[[Instance], None]) -> None:
        """Run ``job`` on the instance's worker once the instance is up, after the jobs queued before it."""
        instance = self.get(name)
        if instance is None:
            raise KeyError(name)
        instance.jobs.put(job)

    def _work(self, instance: Instance) -> None:
        while True:
            job = instance.jobs.get()
            if job is None:
                return
            instance.ready.wait(timeout=30)
            try:
                job(instance)
            except Exception as exc:  # one deployment's crash must not stop the instance's agent
                instance.error = f"{type(exc).__name__}: {exc}"

    # -- hosts ----------------------------------------------------------------------------------------

    def _spawn_loop(self) -> None:
        while True:
            instance = self._spawns.get()
            if instance is None:
                return
            try:
                if self.runtime is not None:
                    instance.endpoint = self.runtime.lease_endpoint()
                    instance.site_dir = self.runtime.site_dir()
                netns = instance.endpoint.netns_path if instance.endpoint else None
                instance.host = HostProcess(instance.name, netns, instance.root, isolate_pids=self._isolate)
                instance.host.ready.wait(timeout=15)
            except Exception as exc:  # an instance that cannot start fails its deployments, not the sandbox
                instance.error = f"{type(exc).__name__}: {exc}"
            finally:
                instance.ready.set()

    def _stop(self, instance: Instance) -> None:
        if instance.host is not None:
            instance.host.stop()
        if instance.endpoint is not None and self.runtime is not None:
            self.runtime.release_endpoint(instance.endpoint)
            instance.endpoint = None

    def shutdown(self) -> None:
        """Stop every instance and everything running in it; remove the roots. Safe to call twice."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._spawns.put(None)
        self._spawner.join(timeout=20)
        for instance in self.instances():
            instance.jobs.put(None)
            with contextlib.suppress(Exception):
                self._stop(instance)
        shutil.rmtree(self.root, ignore_errors=True)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "instance"
