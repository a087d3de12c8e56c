"""The plugin's own tests, written the way any third-party deployfw plugin can test itself.

``git_repo`` comes from deployfw's pytest kit (``deployfw.testing``, loaded through
the ``pytest11`` entry point when deployfw is installed): no conftest needed. The
webhook receiver is a real HTTP server on 127.0.0.1, so the request the plugin
sends is exactly what a real endpoint would get.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from deployfw import redact
from deployfw.backends import RunContext
from deployfw.config import load_config
from deployfw.plugins import PluginManager
from deployfw.testing import GitRepoBuilder

import deployfw_webhook.plugin as webhook

MODULES_YAML = """\
version: 1
project: shop
region: ap-northeast-2
defaults:
  build: {backend: local}
  registry: {backend: ecr}
  deploy: {backend: ecs-rolling, cluster: test}
modules:
  user-api: {path: services/user-api}
"""


class Receiver:
    """A loopback webhook endpoint that records every JSON body it is sent."""

    def __init__(self, status: int = 204) -> None:
        self.status = status
        self.bodies: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/deploy"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    started = Receiver()
    monkeypatch.setenv(webhook.URL_ENV, started.url)
    yield started
    started.close()


@pytest.fixture
def ctx(git_repo: Callable[..., GitRepoBuilder]) -> RunContext:
    """A run context over a real (one-module) repository built by deployfw's kit."""
    repo = git_repo({"modules.yaml": MODULES_YAML, "services/user-api/app.py": "print('hi')\n"})
    config = load_config(repo.path / "modules.yaml")
    return RunContext(config=config, head=repo.head, run_id="run-1", region="ap-northeast-2")


@pytest.fixture
def manager() -> PluginManager:
    """Only this plugin and the built-ins: other installed plugins stay out of the test."""
    pm = PluginManager(entry_points=False)
    pm.register(webhook, name="webhook")
    return pm


def test_run_events_reach_the_endpoint(manager: PluginManager, ctx: RunContext, receiver: Receiver) -> None:
    module = ctx.config.modules["user-api"]
    manager.hook.deployfw_run_start(ctx=ctx, modules=["user-api"])
    manager.hook.deployfw_module_end(ctx=ctx, module=module, status="succeeded", error=None)
    manager.hook.deployfw_run_end(ctx=ctx, report={"status": "succeeded", "modules": []})

    assert [b["event"] for b in receiver.bodies] == ["run_start", "module_end", "run_end"]
    assert receiver.bodies[0]["modules"] == ["user-api"]
    assert receiver.bodies[1]["module"] == "user-api"
    assert receiver.bodies[2]["status"] == "succeeded"
    assert {b["head"] for b in receiver.bodies} == {ctx.head}


def test_secrets_are_masked(manager: PluginManager, ctx: RunContext, receiver: Receiver) -> None:
    redact.register("s3cr3t-token-value")
    module = ctx.config.modules["user-api"]
    manager.hook.deployfw_module_end(ctx=ctx, module=module, status="failed", error="auth s3cr3t-token-value")

    assert receiver.bodies[0]["error"] == "auth ***"


def test_a_failing_endpoint_only_warns(
    manager: PluginManager, ctx: RunContext, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.status = 500
    with caplog.at_level(logging.WARNING, logger="deployfw.webhook"):
        manager.hook.deployfw_run_end(ctx=ctx, report={"status": "failed", "modules": []})

    assert "HTTP 500" in caplog.text
    assert "/hooks/deploy" not in caplog.text  # the URL path may hold a token


def test_no_url_sends_nothing(monkeypatch: pytest.MonkeyPatch, ctx: RunContext) -> None:
    monkeypatch.delenv(webhook.URL_ENV, raising=False)
    assert webhook.send("run_start", ctx, {"modules": []}) is False
