"""The sandbox as a runtime, seen from ``deployfw run``: deployed tasks really serve, broken builds really fail.

After a run of the whole example against a standalone sandbox process, every ECS
module has running, healthy tasks (``GET /_sandbox/tasks``) and its production
listener answers with that module's own response. Then a build of the example's
``broken`` environment - apps that exit at start, no fault injected - fails its deploy
on real health checks: exit 1, rolled back, and the listeners serve the previous
version throughout.
"""

from __future__ import annotations

import json
import socket
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from run_helpers import SERVICES

from deployfw.testing import CliResult, SandboxProcess

BALANCERS = {"order-api": "order-api-alb", "payment-api": "payment-api-nlb", "product-api": "product-api-alb",
             "user-api": "user-api-alb"}  # fmt: skip


def _control(sandbox: SandboxProcess, name: str) -> Any:
    with urllib.request.urlopen(f"{sandbox.endpoint}/_sandbox/{name}", timeout=10) as answer:
        return json.load(answer)


def _production(sandbox: SandboxProcess) -> dict[str, str]:
    rows = _control(sandbox, "listeners")
    return {module: next(r["url"] for r in rows if r["load_balancer"] == lb and r["port"] == 80)
            for module, lb in BALANCERS.items()}  # fmt: skip


def _ask(url: str) -> dict[str, Any]:
    """GET / through the listener: HTTP for an ALB, the same request over the raw TCP stream for an NLB."""
    if url.startswith("http://"):
        with urllib.request.urlopen(f"{url}/", timeout=10) as answer:
            return dict(json.load(answer))
    host, port = url.removeprefix("tcp://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as stream:
        stream.sendall(b"GET / HTTP/1.0\r\nHost: nlb\r\n\r\n")
        data = b""
        while chunk := stream.recv(65536):
            data += chunk
    return dict(json.loads(data.split(b"\r\n\r\n", 1)[1]))


@pytest.fixture(scope="module")
def deployed(deployfw: Callable[..., CliResult], example: Path) -> dict[str, Any]:
    done = deployfw("run", "--all", "--report", "out/runtime.json")
    assert done.code == 0, done.output
    return {m["name"]: m for m in json.loads((example / "out/runtime.json").read_text())["modules"]}


def test_every_ecs_module_runs_healthy_tasks_of_what_was_deployed(
    deployed: dict[str, Any], sandbox: SandboxProcess
) -> None:
    tasks = _control(sandbox, "tasks")
    for module in SERVICES:
        mine = [t for t in tasks
                if t["cluster"] == "shop" and t["service"] == module and t["desired_status"] == "RUNNING"]  # fmt: skip
        assert mine, (module, tasks)
        assert {t["health"] for t in mine} == {"healthy"}, mine
        assert {t["task_definition"] for t in mine} == {deployed[module]["deploy"]["task_definition"]}
        assert all(t["address"] and t["port"] == 8080 for t in mine)


def test_each_production_listener_answers_with_its_module(deployed: dict[str, Any], sandbox: SandboxProcess) -> None:
    for module, url in _production(sandbox).items():
        assert _ask(url)["service"] == module


def test_a_broken_build_fails_on_real_health_checks_and_the_listeners_serve_the_previous_version(
    deployed: dict[str, Any], deployfw: Callable[..., CliResult], example: Path, sandbox: SandboxProcess
) -> None:
    urls = _production(sandbox)
    sandbox.set_faults("")  # nothing injected: the apps themselves exit at start
    answers: list[tuple[str, str]] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            for module in ("user-api", "product-api"):
                answers.append((module, _ask(urls[module])["service"]))
            done.wait(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = deployfw("-e", "broken", "run", "-m", "user-api", "-m", "product-api", "--report", "out/broken.json")
    finally:
        done.set()
        watcher.join()
    assert result.code == 1, result.output
    report = {m["name"]: m for m in json.loads((example / "out/broken.json").read_text())["modules"]}
    for module in ("user-api", "product-api"):
        assert report[module]["status"] == "failed", report[module]
        assert report[module]["deploy"]["rolled_back"] is True, report[module]
    assert answers and all(module == served for module, served in answers)  # never a gap, never the broken app
    tasks = _control(sandbox, "tasks")
    for module in ("user-api", "product-api"):
        serving = {t["task_definition"] for t in tasks
                   if t["cluster"] == "shop" and t["service"] == module and t["health"] == "healthy"}  # fmt: skip
        assert serving == {deployed[module]["deploy"]["task_definition"]}
