"""One sandbox server instance's host process, seen from the sandbox: start it, run scripts in it, stop it.

:mod:`.host` is the program; this is its handle. The host is started through the task
runtime's launcher, so it joins the instance's network namespace (its own address) and is
killed by the kernel when the thread that started it - the fleet's long-lived spawner - goes
away with the sandbox. Under ``unshare --pid --fork --kill-child`` (root) it is PID 1 of a PID
namespace: everything a script leaves running dies with it. Without that, it is a child
subreaper and :meth:`HostProcess.stop` kills its whole subtree.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_HOST = str(Path(__file__).with_name("host.py"))
_LAUNCHER = str(Path(__file__).resolve().parent.parent / "runtime" / "launcher.py")


@dataclass
class ScriptResult:
    """How one script ended: exit code, ``timeout`` / ``outputs_left_open`` / ``host gone``, and its output lines."""

    exit_code: int | None
    error: str | None
    lines: list[str] = field(default_factory=list)


def pid_namespaces_available() -> bool:
    return os.geteuid() == 0 and shutil.which("unshare") is not None


class HostProcess:
    """The handle of one running host (see the module docstring); thread-safe, one script at a time."""

    def __init__(self, name: str, netns_path: str | None, cwd: Path, *, isolate_pids: bool) -> None:
        self.name = name
        program: Sequence[str] = [sys.executable, "-S", _HOST]
        if isolate_pids:
            unshare = shutil.which("unshare") or "/usr/bin/unshare"
            program = [unshare, "--pid", "--fork", "--kill-child=SIGKILL", *program]
        self.isolated = isolate_pids
        self.process = subprocess.Popen(
            [sys.executable, "-S", _LAUNCHER, str(os.getpid()), netns_path or "", str(cwd), *program],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        )
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._replies: dict[int, queue.Queue[dict[str, object]]] = {}
        self.ready = threading.Event()
        self._reader = threading.Thread(target=self._read, name=f"sandbox-host-{name}", daemon=True)
        self._reader.start()

    # -- running scripts -------------------------------------------------------------------------

    def run(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        cwd: Path,
        timeout: float,
        on_line: Callable[[str], None] | None = None,
    ) -> ScriptResult:
        """Run one script in the instance; waits for it (and its output) to end, at most ``timeout`` + slack."""
        if not self.ready.wait(timeout=15) or not self.alive:
            return ScriptResult(None, "host gone", ["[stderr]the instance's host process is not running\n"])
        command_id = next(self._ids)
        replies: queue.Queue[dict[str, object]] = queue.Queue()
        with self._lock:
            self._replies[command_id] = replies
            doc = {"id": command_id, "argv": list(argv), "env": dict(env), "cwd": str(cwd), "timeout": timeout}
            try:
                assert self.process.stdin is not None
                self.process.stdin.write((json.dumps(doc) + "\n").encode())
                self.process.stdin.flush()
            except (BrokenPipeError, OSError):
                self._replies.pop(command_id, None)
                return ScriptResult(None, "host gone", ["[stderr]the instance's host process is not running\n"])
        result = ScriptResult(None, None)
        try:
            while True:
                try:
                    reply = replies.get(timeout=timeout + 30)
                except queue.Empty:
                    result.error = "host gone"
                    return result
                if "line" in reply:
                    line = str(reply["line"])
                    result.lines.append(line)
                    if on_line is not None:
                        on_line(line)
                    continue
                if reply.get("gone"):
                    result.error = "host gone"
                    return result
                code = reply.get("exit")
                result.exit_code = int(code) if isinstance(code, int) else None
                result.error = str(reply["error"]) if reply.get("error") else None
                return result
        finally:
            with self._lock:
                self._replies.pop(command_id, None)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            try:
                reply = json.loads(raw)
            except ValueError:
                continue
            if reply.get("ready"):
                self.ready.set()
                continue
            with self._lock:
                target = self._replies.get(int(reply.get("id") or 0))
            if target is not None:
                target.put(reply)
        self.ready.set()
        with self._lock:
            for waiting in self._replies.values():
                waiting.put({"gone": True})

    # -- what runs in the instance -----------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def descendants(self) -> list[int]:
        """Every process in the instance other than its host: the apps its scripts started (and a running script)."""
        if not self.alive:
            return []
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
        hosts = children.get(self.process.pid, []) if self.isolated else [self.process.pid]  # unshare's one child
        found: list[int] = []
        stack = [pid for host in hosts for pid in children.get(host, [])]
        while stack:
            pid = stack.pop()
            found.append(pid)
            stack.extend(children.get(pid, []))
        return sorted(found)

    def stop(self) -> None:
        """Kill the instance: everything in it, then the host; safe to call twice."""
        for pid in reversed(self.descendants()):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        for stream in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
