"""The controller's state machine: jobs, the queue, executors and builds.

One lock guards everything; a scheduler thread moves queue items through the quiet
period onto free executors even when nobody polls (a real controller builds whether
or not the client is watching), and forgets left items after the queue TTL. The HTTP
handler only calls the methods here, so the state rules live in one place.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

from deployfw.sandbox.jenkins.builds import Build
from deployfw.sandbox.jenkins.faults import FaultPlan
from deployfw.sandbox.jenkins.jobs import Folder, Job, find_item
from deployfw.sandbox.jenkins.queue import QueueItem

_IDLE_WAKE = 0.5
"""Longest the scheduler sleeps with nothing due: every change it acts on (a trigger, a finished build, a
stop) wakes it at once, so this only bounds how late the queue's TTL is applied when nobody asks."""


@dataclass(frozen=True)
class Timing:
    """How fast the controller moves, in seconds.

    A real controller's quiet period is 5 s and left queue items live about 5 minutes;
    tests want both short, a demo wants them watchable.
    """

    quiet_period: float = 0.2
    queue_ttl: float = 300.0
    executors: int = 2


class Refused(Exception):
    """A request the controller refuses with an HTTP status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Controller:
    """The state of one Jenkins double."""

    def __init__(self, timing: Timing, faults: FaultPlan, clock: Callable[[], float] = time.monotonic):
        self.timing = timing
        self.faults = faults
        self.clock = clock
        self.root = Folder("")
        self.base_url = "http://127.0.0.1/"
        self.lock = threading.RLock()
        self._wake = threading.Condition(self.lock)
        self._items: dict[int, QueueItem] = {}
        self._builds: dict[str, dict[int, Build]] = {}
        self._next_queue_id = 1
        self._running = 0
        self._stopping = False
        self._scheduler: threading.Thread | None = None
        self._workers: list[threading.Thread] = []

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> None:
        """Start the scheduler thread."""
        self._stopping = False
        self._scheduler = threading.Thread(target=self._schedule, name="jenkins-double-queue", daemon=True)
        self._scheduler.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop scheduling, abort running builds and wait for their workers."""
        with self.lock:
            self._stopping = True
            self._wake.notify_all()
            running = [b for builds in self._builds.values() for b in builds.values() if b.building]
        for build in running:
            build.stop("SYSTEM")
        if self._scheduler is not None:
            self._scheduler.join(timeout)
        for worker in list(self._workers):
            worker.join(timeout)

    # -- lookups -------------------------------------------------------------------
    def item(self, names: list[str]) -> Folder | Job | None:
        """The folder or job at ``names``."""
        with self.lock:
            return find_item(self.root, names)

    def builds(self, job: Job) -> list[Build]:
        """The job's builds, newest first (Jenkins's order)."""
        with self.lock:
            return sorted(self._builds.get(job.full_name, {}).values(), key=lambda b: -b.number)

    def build(self, job: Job, number: int) -> Build | None:
        """Build ``number`` of ``job``."""
        with self.lock:
            return self._builds.get(job.full_name, {}).get(number)

    def queue_item(self, item_id: int) -> QueueItem | None:
        """A queue item still remembered (waiting, or left less than the TTL ago)."""
        with self.lock:
            self._expire()
            return self._items.get(item_id)

    def waiting_items(self) -> list[QueueItem]:
        """Items still in the queue, oldest first."""
        with self.lock:
            return [i for i in self._items.values() if i.waiting]

    def queued_item_for(self, job: Job) -> QueueItem | None:
        """The job's oldest waiting item (the job API's ``queueItem``)."""
        with self.lock:
            return next((i for i in self._items.values() if i.waiting and i.job is job), None)

    def executors_free(self) -> bool:
        """True if a buildable item could start now."""
        with self.lock:
            return self._running < self.timing.executors

    # -- actions -------------------------------------------------------------------
    def trigger(self, job: Job, given: Mapping[str, str], user: str, *, with_parameters: bool) -> QueueItem:
        """Queue a build as ``build`` / ``buildWithParameters`` do, or raise :class:`Refused`.

        An identical item (same job, same parameters) already waiting is returned
        instead of a new one, as Jenkins folds duplicate queue entries.
        """
        if job.disabled:
            raise Refused(409, f"{job.full_name} is not buildable")
        if with_parameters and not job.parameterized:
            raise Refused(500, "java.lang.IllegalStateException: This build is not parameterized!")
        if not with_parameters and job.parameterized:
            raise Refused(500, "javax.servlet.ServletException: This page expects a form submission")
        parameters = job.resolve_parameters(given)
        with self.lock:
            for existing in self._items.values():
                if existing.waiting and existing.job is job and existing.parameters == parameters:
                    return existing
            now = self.clock()
            item = QueueItem(
                id=self._next_queue_id,
                job=job,
                parameters=parameters,
                user=user,
                in_queue_since=now,
                buildable_at=now + self.timing.quiet_period,
                in_queue_since_ms=int(time.time() * 1000),
            )
            self._next_queue_id += 1
            self._items[item.id] = item
            self._wake.notify_all()
            return item

    def cancel(self, item_id: int) -> bool:
        """Cancel a waiting item; False if there is no such item still waiting."""
        with self.lock:
            item = self._items.get(item_id)
            if item is None or not item.waiting:
                return False
            item.cancelled = True
            item.left_at = self.clock()
            return True

    def stop_build(self, build: Build, user: str) -> None:
        """Abort a running build (a finished one is left alone, as Jenkins does)."""
        build.stop(user)

    # -- scheduler -----------------------------------------------------------------
    def _schedule(self) -> None:
        with self.lock:
            while not self._stopping:
                self._expire()
                now = self.clock()
                pause = _IDLE_WAKE
                for item in list(self._items.values()):
                    if not item.waiting:
                        continue
                    if now < item.buildable_at:
                        pause = min(pause, item.buildable_at - now)
                        continue
                    if self._running >= self.timing.executors:
                        break  # a finished build wakes us
                    self._start(item, now)
                self._wake.wait(pause)

    def _expire(self) -> None:
        now = self.clock()
        for item_id, item in list(self._items.items()):
            if item.left_at is not None and now - item.left_at > self.timing.queue_ttl:
                del self._items[item_id]

    def _start(self, item: QueueItem, now: float) -> None:
        job = item.job
        number = job.next_build_number
        job.next_build_number += 1
        build = Build(
            job=job,
            number=number,
            queue_id=item.id,
            parameters=item.parameters,
            user=item.user,
            url=f"{self.base_url}{job_path(job.full_name)}{number}/",
        )
        self._builds.setdefault(job.full_name, {})[number] = build
        item.build = build
        item.left_at = now
        self._running += 1
        fail = self.faults.take_build_failure(job.module)
        env = self._environment(build)
        worker = threading.Thread(
            target=build.run,
            args=(env,),
            kwargs={"fail": fail, "on_done": self._finished},
            name=f"jenkins-double-{job.full_name}#{number}",
            daemon=True,
        )
        self._workers = [w for w in self._workers if w.is_alive()] + [worker]
        worker.start()

    def _finished(self, build: Build) -> None:
        with self.lock:
            self._running -= 1
            self._wake.notify_all()

    def _environment(self, build: Build) -> dict[str, str]:
        """What Jenkins exports to a build: its own variables, then the parameters."""
        job = build.job
        env = dict(os.environ)
        env.update(job.env)
        env.update(
            {
                "BUILD_NUMBER": str(build.number),
                "BUILD_ID": str(build.number),
                "BUILD_URL": build.url,
                "BUILD_TAG": f"jenkins-{job.full_name.replace('/', '-')}-{build.number}",
                "JOB_NAME": job.full_name,
                "JOB_BASE_NAME": job.name,
                "JOB_URL": f"{self.base_url}{job_path(job.full_name)}",
                "JENKINS_URL": self.base_url,
                "EXECUTOR_NUMBER": "0",
                "NODE_NAME": "built-in",
                "WORKSPACE": job.cwd or os.getcwd(),
            }
        )
        env.update(build.parameters)
        return env


def job_path(full_name: str) -> str:
    """``a/b`` -> ``job/a/job/b/`` (URL-quoted), the path Jenkins serves a job under."""
    return "".join(f"job/{quote(part, safe='')}/" for part in full_name.split("/"))
