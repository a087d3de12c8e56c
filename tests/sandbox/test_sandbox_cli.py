"""``deployfw sandbox`` start-up as a user meets it: busy ports, free ports, the background mode.

Each test runs the real command in a subprocess against a one-module repository. A start that
could hang is run with a generous timeout: the assertion is the outcome (exit 2, one line naming
the port and the flag), never the time it took.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import stat
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployfw.sandbox.aws import AwsSandbox
from deployfw.sandbox.jenkins import JenkinsDouble
from deployfw.sandbox.ports import PortUnavailable
from deployfw.testing import GitRepoBuilder
from deployfw.testing.cli import deployfw_command, terminal_env

HANG_GUARD = 120  # seconds; only a hang comes anywhere near it
TINY = {
    "modules.yaml": (
        "version: 1\nproject: tiny\nregion: us-east-1\n"
        "defaults:\n  build: {backend: local}\n  registry: {backend: ecr}\n"
        "  deploy: {backend: ecs-rolling, cluster: tiny}\n"
        "environments:\n  other: {defaults: {deploy: {cluster: tiny-other}}}\n"
        "modules:\n  api: {path: services/api}\n"
    ),
    "services/api/taskdef.json": (
        '{"family": "tiny-api", "containerDefinitions": [{"name": "api", "image": "<IMAGE1_NAME>", '
        '"essential": true, "memory": 128, "portMappings": [{"containerPort": 8080}]}]}\n'
    ),
    "services/api/buildspec.yml": "version: 0.2\nphases:\n  build:\n    commands:\n      - echo hi\n",
}
PRINTED = ("AWS_ENDPOINT_URL", "JENKINS_URL", "JENKINS_USER", "JENKINS_API_TOKEN",
           "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_REGION")  # fmt: skip


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return GitRepoBuilder(tmp_path / "tiny", TINY).path


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port some other program listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def sandbox(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*deployfw_command(), "sandbox", *args], cwd=cwd, env=terminal_env(),
                          capture_output=True, text=True, timeout=HANG_GUARD)  # fmt: skip


@pytest.mark.parametrize(("flag", "other", "endpoint"), [("--port", "--jenkins-port", "AWS endpoint"),
                                                        ("--jenkins-port", "--port", "Jenkins double")])  # fmt: skip
def test_a_busy_port_is_one_line_naming_port_and_flag_exit_2(
    tiny: Path, busy_port: int, flag: str, other: str, endpoint: str
) -> None:
    done = sandbox(tiny, flag, str(busy_port), other, "0")

    assert done.returncode == 2, done
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"deployfw: error: port {busy_port} ({endpoint}) is in use: choose another with {flag} N, "
        f"or {flag} 0 for a free one"
    ]


def test_the_same_port_twice_is_refused(tiny: Path) -> None:
    done = sandbox(tiny, "--port", "45123", "--jenkins-port", "45123")
    assert done.returncode == 2 and "--port and --jenkins-port are both 45123" in done.stderr


def test_servers_bound_elsewhere_fail_at_once_naming_the_port(busy_port: int) -> None:
    """The race behind the up-front check: the port taken between the check and the bind."""
    with pytest.raises(PortUnavailable) as aws:
        AwsSandbox(busy_port).start()
    assert (aws.value.endpoint, aws.value.port, aws.value.reason) == ("AWS endpoint", busy_port, "is in use")
    with pytest.raises(PortUnavailable) as jenkins:
        JenkinsDouble(busy_port).start()
    assert (jenkins.value.endpoint, jenkins.value.port) == ("Jenkins double", busy_port)
    with AwsSandbox(0) as box:  # a failed start left nothing behind: the next one serves
        assert box.port != busy_port


def test_free_ports_everything_a_client_needs_and_the_env_file(tiny: Path, tmp_path: Path) -> None:
    env_file = tmp_path / "vars" / "sandbox.env"
    proc = subprocess.Popen([*deployfw_command(), "sandbox", "--port", "0", "--jenkins-port", "0",
                             "--env-file", str(env_file)], cwd=tiny, env=terminal_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stdout is not None
        printed = dict(proc.stdout.readline().strip().split("=", 1) for _ in PRINTED)
        assert list(printed) == list(PRINTED)  # the first four are DESIGN.md's contract
        assert printed["AWS_DEFAULT_REGION"] == printed["AWS_REGION"] == "us-east-1"
        for url in (printed["AWS_ENDPOINT_URL"], printed["JENKINS_URL"]):
            assert not url.rstrip("/").endswith((":0", ":4566", ":8090"))
        _wait_for(env_file.exists)
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600  # it holds the Jenkins token
        sourced = _source(env_file.read_text())
        assert {k: sourced[k] for k in PRINTED} == printed
        # The endpoint and the credentials it printed are enough for a client.
        client = _boto3_client(printed)
        assert sorted(c.rsplit("/", 1)[-1] for c in client.list_clusters()["clusterArns"]) == ["tiny", "tiny-other"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(HANG_GUARD)
    assert proc.returncode == 0
    assert not env_file.exists()  # a file pointing at a stopped sandbox would mislead the next shell


def test_detach_prints_exports_for_eval_and_stop_ends_it(tiny: Path) -> None:
    script = (
        'eval "$(deployfw sandbox --detach --port 0 --jenkins-port 0)" && '
        'printf "%s\\n" "$AWS_ENDPOINT_URL" "$AWS_ACCESS_KEY_ID" "$JENKINS_API_TOKEN" "$DEPLOYFW_SANDBOX_PID" && '
        "env | grep -c -E '^(AWS_ENDPOINT_URL|JENKINS_URL|JENKINS_USER|JENKINS_API_TOKEN|AWS_ACCESS_KEY_ID|"
        "AWS_SECRET_ACCESS_KEY|AWS_DEFAULT_REGION|AWS_REGION)='"
    )
    bin_dir = str(Path(deployfw_command()[0]).parent)
    env = terminal_env(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run(["bash", "-c", script], cwd=tiny, env=env, capture_output=True, text=True,
                          timeout=HANG_GUARD)  # fmt: skip
    assert done.returncode == 0, done.stderr
    endpoint, key, token, pid_text, exported = done.stdout.split()
    pid = int(pid_text)
    try:
        assert exported == "8" and key and token
        with urllib.request.urlopen(f"{endpoint}/_sandbox/requests", timeout=30) as answer:
            assert answer.status == 200  # it serves after the shell that started it is gone
        again = sandbox(tiny, "--detach", "--port", "0", "--jenkins-port", "0")
        assert again.returncode == 2 and f"already running (pid {pid})" in again.stderr
    finally:
        stopped = sandbox(tiny, "--stop")
    assert stopped.returncode == 0 and f"stopped the background sandbox (pid {pid})" in stopped.stderr
    _wait_for(lambda: not _alive(pid))
    assert not (tiny / ".deployfw" / "sandbox" / "env").exists()
    assert "no background sandbox" in sandbox(tiny, "--stop").stderr


def test_detach_with_a_busy_port_fails_in_the_caller(tiny: Path, busy_port: int) -> None:
    done = sandbox(tiny, "--detach", "--port", str(busy_port), "--jenkins-port", "0")
    assert done.returncode == 2
    assert done.stdout == ""  # nothing for eval to run
    assert f"port {busy_port} (AWS endpoint) is in use" in done.stderr


def _wait_for(condition: object, seconds: float = HANG_GUARD) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _source(text: str) -> dict[str, str]:
    """What a shell gets from ``. FILE``: every line is ``export NAME=shell-quoted value``."""
    out = {}
    for line in text.splitlines():
        assert line.startswith("export "), line
        name, _, value = line.removeprefix("export ").partition("=")
        out[name] = shlex.split(value)[0] if value else ""
    return out


def _boto3_client(env: dict[str, str]) -> object:
    import boto3

    return boto3.client("ecs", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])  # fmt: skip


def test_a_background_sandbox_stops_by_itself_after_its_idle_minutes(tiny: Path) -> None:
    env = terminal_env(DEPLOYFW_SANDBOX_IDLE_MINUTES="0.02")  # about a second without a request
    done = subprocess.run([*deployfw_command(), "sandbox", "--detach", "--port", "0", "--jenkins-port", "0"], cwd=tiny,
                          env=env, capture_output=True, text=True, timeout=HANG_GUARD)  # fmt: skip
    assert done.returncode == 0, done.stderr
    pid = int(_source(done.stdout)["DEPLOYFW_SANDBOX_PID"])
    try:
        _wait_for(lambda: not _alive(pid) or _zombie(pid))
    finally:
        sandbox(tiny, "--stop")
    log = (tiny / ".deployfw" / "sandbox" / "log").read_text()
    assert "no AWS or Jenkins request for 0.02 min: stopping" in log
    assert not (tiny / ".deployfw" / "sandbox" / "env").exists()  # it cleaned up as on --stop
    assert "no background sandbox" in sandbox(tiny, "--stop").stderr  # the stale pid file is recognised


@pytest.mark.parametrize("value", ["soon", "-1"])
def test_a_bad_idle_setting_is_bad_input_before_anything_starts(tiny: Path, value: str) -> None:
    env = terminal_env(DEPLOYFW_SANDBOX_IN_PROCESS="0", DEPLOYFW_SANDBOX_IDLE_MINUTES=value)
    done = subprocess.run([*deployfw_command(), "run", "--sandbox"], cwd=tiny, env=env, capture_output=True, text=True,
                          timeout=HANG_GUARD)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"DEPLOYFW_SANDBOX_IDLE_MINUTES={value!r}" in done.stderr
    assert not (tiny / ".deployfw" / "sandbox" / "pid").exists()


def _zombie(pid: int) -> bool:
    """Ended but not yet reaped by its new parent."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] == "Z"
    except OSError:
        return True
