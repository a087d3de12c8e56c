"""Builds: one real process per build, its console log, and its result.

Each build runs its job's command in a worker thread with the parameters as
environment variables (as Jenkins exports them), so the console and the result are
whatever the command really did. The log is kept as bytes because Jenkins's
progressive-text offsets are byte offsets; stopping a build kills the process group,
so a shell's children die with it as they do when Jenkins aborts a build.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from deployfw.sandbox.jenkins.jobs import Job

RUN_CLASS = "org.jenkinsci.plugins.workflow.job.WorkflowRun"
_KILL_GRACE = 3.0


@dataclass
class Build:
    """One run of a job. All mutation goes through methods holding ``_lock``."""

    job: Job
    number: int
    queue_id: int
    parameters: dict[str, str]
    user: str
    url: str
    timestamp_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    result: str | None = None
    duration_ms: int = 0
    aborted_by: str | None = None
    _log: bytearray = field(default_factory=bytearray, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def building(self) -> bool:
        """True until the result is set (Jenkins's ``building``/``inProgress``)."""
        return self.result is None

    def append(self, text: str | bytes) -> None:
        """Add output to the console."""
        data = text.encode() if isinstance(text, str) else text
        with self._lock:
            self._log += data

    def _line(self, text: str) -> None:
        """Append a controller message on a line of its own, as pipeline logs always are."""
        if self._log and not self._log.endswith(b"\n"):
            self._log += b"\n"
        self._log += text.encode()

    def log_bytes(self) -> bytes:
        """The whole console so far."""
        with self._lock:
            return bytes(self._log)

    def progressive(self, start: int) -> tuple[bytes, int, bool]:
        """Jenkins's ``progressiveText``: (text from ``start``, next offset, more to come).

        While the build runs, output stops at the last newline so a client never sees
        half a line; a ``start`` past the end restarts at 0 ("text rolled over").
        """
        with self._lock:
            log = bytes(self._log)
            running = self.result is None
        if start > len(log) or start < 0:
            start = 0
        chunk = log[start:]
        if running:
            cut = chunk.rfind(b"\n")
            chunk = chunk[: cut + 1] if cut >= 0 else b""
        return chunk, start + len(chunk), running

    def stop(self, user: str) -> None:
        """Abort: note who, then kill the process group (TERM, then KILL after a grace)."""
        with self._lock:
            if self.result is not None or self.aborted_by is not None:
                return
            self.aborted_by = user
            process = self._process
            self._line(f"Aborted by {user}\n")
        if process is not None:
            _signal_group(process, signal.SIGTERM)
            threading.Thread(target=self._kill_later, args=(process,), daemon=True).start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the build has a result; True if it has."""
        return self._done.wait(timeout)

    def _kill_later(self, process: subprocess.Popen[bytes]) -> None:
        try:
            process.wait(_KILL_GRACE)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)

    def run(self, env: Mapping[str, str], *, fail: bool, on_done: Callable[[Build], None]) -> None:
        """Run the job's command to completion and set the result (worker-thread body)."""
        started = time.monotonic()
        self.append(f"Started by user {self.user}\n")
        cwd = self.job.cwd or os.getcwd()
        self.append(f"Running in {cwd}\n")
        try:
            if fail:
                self.append("ERROR: deployfw sandbox: injected build failure\n")
                result = "FAILURE"
            else:
                result = self._execute(cwd, env)
        except Exception as exc:  # the command could not start: Jenkins fails the build
            self.append(f"ERROR: {exc}\n")
            result = "FAILURE"
        with self._lock:
            if self.aborted_by is not None:
                result = "ABORTED"
            self._line(f"Finished: {result}\n")
            self.duration_ms = max(1, int((time.monotonic() - started) * 1000))
            self.result = result
        self._done.set()
        on_done(self)

    def _execute(self, cwd: str, env: Mapping[str, str]) -> str:
        self.append("+ " + " ".join(self.job.command) + "\n")
        with self._lock:
            if self.aborted_by is not None:
                return "ABORTED"
            process = subprocess.Popen(
                list(self.job.command),
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self._process = process
        # A binary pipe with the default buffering is a BufferedReader; read1 returns what has
        # arrived instead of waiting for a full buffer, so the console follows the process live.
        stdout = process.stdout
        assert isinstance(stdout, io.BufferedReader)
        while chunk := stdout.read1(65536):
            self.append(chunk)
        code = process.wait()
        stdout.close()
        if code < 0:  # killed by a signal: report it the way a shell step does
            code = 128 - code
        if code == 0:
            return "SUCCESS"
        if code == self.job.unstable_return:  # sh(script: ..., unstableReturn: N)
            return "UNSTABLE"
        with self._lock:
            self._line(f"ERROR: script returned exit code {code}\n")
        return "FAILURE"


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)
