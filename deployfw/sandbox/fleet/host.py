"""The process that *is* a sandbox server instance: it runs hook scripts for the agent and outlives them.

Started (through the runtime's launcher, so it joins the instance's network namespace and dies
with the sandbox) as the first process of the instance - PID 1 of a PID namespace of its own
when ``unshare`` allows, so that when it dies the kernel kills everything the instance's scripts
left running. Otherwise it makes itself a child subreaper, so daemons started by
``ApplicationStart`` stay its descendants and the sandbox can find and stop them.

It reads one JSON command per line on stdin - ``{"id", "argv", "env", "cwd", "timeout"}`` - runs
the script in a process group of its own with stdin closed, streams each output line back as
``{"id", "line": "[stdout]..."}`` and ends with ``{"id", "exit": N, "error": null|"timeout"|
"outputs_left_open"}``. As the CodeDeploy agent does, it waits for the script's stdout and
stderr to close, not only for the script to exit: a daemon started without redirecting its
output keeps them open, and the event then fails when the timeout runs out. On timeout the
script's process group gets SIGTERM, again as the agent does.

Kept free of deployfw imports (it runs with ``-S``, before any site-packages).
"""

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import IO, Any

_PR_SET_CHILD_SUBREAPER = 36
_out_lock = threading.Lock()
_spawning = threading.Lock()
_script = {"pid": 0}


def _send(doc: dict[str, object]) -> None:
    with _out_lock:
        sys.stdout.write(json.dumps(doc) + "\n")
        sys.stdout.flush()


def _reaper() -> None:
    """Reap orphans the scripts left (they are ours as PID 1 or subreaper) as soon as they exit - a stop
    script that waits for its app to go away must not see a zombie - but never the running script, whose
    exit status belongs to the ``wait`` that reports it (its pid is known before the reaper looks again)."""
    while True:
        with _spawning:
            try:
                found = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                found = None
            if found is not None and found.si_pid and found.si_pid != _script["pid"]:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(found.si_pid, os.WNOHANG)
                continue
        time.sleep(0.02)


def _pump(stream: IO[bytes], label: str, command_id: int) -> None:
    for raw in iter(stream.readline, b""):
        _send({"id": command_id, "line": f"[{label}]" + raw.decode("utf-8", "replace")})
    stream.close()


def _run(command: dict[str, Any]) -> None:
    command_id = command["id"]
    deadline = time.monotonic() + float(command.get("timeout") or 3600)
    _spawning.acquire()
    try:
        process = subprocess.Popen(
            command["argv"],
            cwd=command.get("cwd") or "/",
            env=command.get("env") or {},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        _script["pid"] = process.pid
        _spawning.release()
    except OSError as exc:
        _spawning.release()
        _send({"id": command_id, "line": f"[stderr]{exc}\n"})
        _send({"id": command_id, "exit": 126, "error": None})
        return
    pumps = [
        threading.Thread(target=_pump, args=(process.stdout, "stdout", command_id), daemon=True),
        threading.Thread(target=_pump, args=(process.stderr, "stderr", command_id), daemon=True),
    ]
    for pump in pumps:
        pump.start()
    error = None
    try:
        code = process.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        code = process.wait()
        error = "timeout"
    with _spawning:
        _script["pid"] = 0
    for pump in pumps:
        pump.join(timeout=max(0.0, deadline - time.monotonic()) if error is None else 1.0)
    if error is None and any(p.is_alive() for p in pumps):
        error = "outputs_left_open"
    _send({"id": command_id, "exit": code, "error": error})


def main() -> None:
    if os.getpid() != 1:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    threading.Thread(target=_reaper, daemon=True).start()
    _send({"ready": True, "pid": os.getpid()})
    for line in sys.stdin:
        if line.strip():
            _run(json.loads(line))


if __name__ == "__main__":
    main()
