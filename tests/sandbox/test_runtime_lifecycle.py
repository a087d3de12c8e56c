"""The task runtime on its own: two apps on one port, each at its own address; nothing outlives it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from deployfw.image.oci import build_image
from deployfw.image.spec import ImageSpec
from deployfw.sandbox.runtime import ContainerSpec, TaskRuntime, TaskSpec, blob_store
from deployfw.sandbox.runtime.network import namespaces_available, sweep_stale

APP = """\
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = os.environ["WHO"].encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
ThreadingHTTPServer(("0.0.0.0", 8080), H).serve_forever()
"""


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> str:
    context = tmp_path_factory.mktemp("app")
    (context / "server.py").write_text(APP)
    image = build_image(context, ImageSpec(entrypoint=("python3", "server.py"), destination="/srv/app",
                                           workdir="/srv/app", ports=("8080",)))  # fmt: skip
    for blob in image.blobs:
        blob_store().put(blob.read())
    return image.manifest.decode()


def _wait(predicate, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.05)
    return value


def _answer(address: str) -> str | None:
    try:
        with urllib.request.urlopen(f"http://{address}:8080/", timeout=2) as reply:
            return reply.read().decode()
    except OSError:
        return None


NETWORKS = ["loopback", *(["namespace"] if namespaces_available() else [])]


@pytest.mark.parametrize("network", NETWORKS)
def test_two_tasks_bind_the_same_port_at_their_own_addresses(manifest: str, network: str) -> None:
    runtime = TaskRuntime(network=network)
    try:
        tasks = [
            runtime.start(TaskSpec((ContainerSpec("app", "x", manifest, environment={"WHO": who}, ports=(8080,)),)))
            for who in ("first", "second")
        ]
        _wait(lambda: all(t.status == "RUNNING" for t in tasks))
        assert runtime.network_kind == network
        assert tasks[0].address != tasks[1].address
        assert _wait(lambda: _answer(tasks[0].address)) == "first"
        assert _wait(lambda: _answer(tasks[1].address)) == "second"
        pid = tasks[0].containers[0].pid
        runtime.stop(tasks[0].task_id, "done with it")
        _wait(lambda: tasks[0].status == "STOPPED")
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        assert tasks[0].stopped_reason == "done with it"
        assert _answer(tasks[1].address) == "second"
    finally:
        runtime.shutdown()
    assert tasks[1].status == "STOPPED"


def test_an_exiting_essential_container_stops_its_task(manifest: str) -> None:
    runtime = TaskRuntime(network="loopback")
    try:
        spec = ContainerSpec("app", "x", manifest, command=("-c", "import sys; sys.exit(3)"),
                             entry_point=("python3",))  # fmt: skip
        task = runtime.start(TaskSpec((spec,)))
        _wait(lambda: task.status == "STOPPED")
        assert task.stopped_reason == "Essential container in task exited"
        assert task.containers[0].exit_code == 3
    finally:
        runtime.shutdown()


SANDBOX = textwrap.dedent("""\
    import json, sys, time, urllib.request
    from deployfw.sandbox.aws import AwsSandbox, ServiceInfra, seed
    box = AwsSandbox(time_scale=0).start()
    seed(box, [ServiceInfra("life-api", "c", "life-api", deploy_kind="rolling", desired_count=2)])
    while True:
        tasks = [t for t in box.ctx.runtime.tasks() if t.status == "RUNNING"]
        if len(tasks) == 2:
            break
        time.sleep(0.05)
    print(json.dumps({"pids": [c.pid for t in tasks for c in t.containers],
                      "namespaces": [t.endpoint.namespace for t in tasks if t.endpoint and t.endpoint.namespace]}))
    sys.stdout.flush()
    sys.stdin.readline()  # the test has seen the tasks alive: go on
    how = sys.argv[1]
    if how == "stop":
        box.stop()
        print("stopped")
        sys.stdout.flush()
        time.sleep(30)
    elif how == "exit":
        sys.exit(0)  # no stop(): interpreter exit must clean up
    else:
        time.sleep(60)  # the test kills us
""")


def _netns() -> set[str]:
    out = subprocess.run(["ip", "-j", "netns", "list"], capture_output=True, text=True).stdout
    try:
        return {entry["name"] for entry in json.loads(out or "[]")}
    except ValueError:
        return set()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie of ours is not a live process
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("how", ["stop", "exit", "kill"])
def test_no_task_process_or_namespace_outlives_the_sandbox(tmp_path: Path, how: str) -> None:
    script = tmp_path / "sandbox.py"
    script.write_text(SANDBOX)
    child = subprocess.Popen([sys.executable, str(script), how], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)  # fmt: skip
    try:
        assert child.stdout is not None and child.stdin is not None
        started = json.loads(child.stdout.readline())
        assert len(started["pids"]) == 2 and all(_alive(p) for p in started["pids"])
        child.stdin.write("go\n")  # the sandbox waits for this, so it cannot end its tasks before the check
        child.stdin.flush()
        if how == "stop":
            assert child.stdout.readline().strip() == "stopped"
        elif how == "exit":
            child.wait(timeout=30)
        else:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
        _wait(lambda: not any(_alive(p) for p in started["pids"]))
        if how == "kill":  # nothing ran in the killed sandbox: the next one sweeps what it left
            sweep_stale()
        assert not set(started["namespaces"]) & _netns()
        bridges = subprocess.run(["ip", "-o", "link", "show", "type", "bridge"], capture_output=True, text=True).stdout
        assert f"dfwb{child.pid}x" not in bridges
    finally:
        child.kill()
        child.wait()
