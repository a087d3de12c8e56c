"""Helpers shared by the plugin tests: a loopback webhook receiver, CLI runs, hand-made distributions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_SOURCE = ROOT / "examples" / "webhook-plugin"
PLUGIN_ENV = ("DEPLOYFW_DISABLE_PLUGINS", "DEPLOYFW_WEBHOOK_URL", "DEPLOYFW_WEBHOOK_TIMEOUT")

MODULES_YAML = """\
version: 1
project: shop
region: ap-northeast-2
defaults:
  build: {backend: local}
  registry: {backend: ecr}
  deploy: {backend: ecs-rolling, cluster: test}
modules:
  common: {path: libs/common, kind: library}
  user-api: {path: services/user-api, depends_on: [common]}
"""


def run_cli(
    *args: str, site: Path | None = None, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``deployfw ARGS`` in a fresh interpreter, with ``site`` (an installed plugin folder) on PYTHONPATH."""
    environ = {k: v for k, v in os.environ.items() if k not in PLUGIN_ENV}
    if site is not None:
        environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), environ.get("PYTHONPATH")]))
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "deployfw", *args],
        capture_output=True,
        text=True,
        env=environ,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def make_distribution(site: Path, name: str, module_source: str) -> Path:
    """Write an installed distribution ``name`` whose ``deployfw`` entry point is module ``name``.

    This is the layout pip leaves in site-packages (a module plus a ``.dist-info`` with
    ``METADATA`` and ``entry_points.txt``), so the plugin is found by the same
    ``importlib.metadata`` scan as any pip-installed one - without a build for every
    broken-plugin case.
    """
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{name}.py").write_text(textwrap.dedent(module_source), encoding="utf-8")
    info = site / f"{name}-0.3.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.3.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[deployfw]\n{name} = {name}\n", encoding="utf-8")
    return site


class Receiver:
    """A webhook endpoint on 127.0.0.1 recording each request's path, headers and JSON body."""

    def __init__(self) -> None:
        self.status = 204
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                with receiver._lock:
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers), "raw": raw})
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/T0KEN-IN-PATH"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def bodies(self) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(r["raw"]) for r in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
