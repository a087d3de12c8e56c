"""Helpers of the run page tests: real runs of the example and what a browser saw of their pages."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deployfw.testing import terminal_env
from deployfw.testing.cli import deployfw_command

REPOSITORY = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("DEPLOYFW_TEST_CHROMIUM", "/usr/bin/chromium")
# What Chromium needs on a machine without internet (it would otherwise call home at start).
CLOSED_NETWORK_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
SERVICES = ("order-api", "payment-api", "product-api", "user-api")


@dataclass
class Opened:
    """A page as the browser shows it, with everything it said and asked for."""

    page: Any
    console: list[tuple[str, str]] = field(default_factory=list)  # (type, text)
    errors: list[str] = field(default_factory=list)  # uncaught page errors
    requests: list[str] = field(default_factory=list)
    screenshot: Path | None = None

    def console_errors(self) -> list[str]:
        return [text for kind, text in self.console if kind == "error"] + self.errors


@dataclass
class Run:
    """One ``deployfw run`` of the example: exit code, output, the JSON report and the page."""

    code: int
    output: str
    report: dict[str, Any]
    html: Path

    def module(self, name: str) -> dict[str, Any]:
        return next(m for m in self.report["modules"] if m["name"] == name)


def run_example(repo: Path, name: str, *argv: str, select_all: bool = True, **env: str) -> Run:
    """``deployfw [argv] run --sandbox [--all] --report out/NAME.json --html out/NAME.html`` in its own process.

    Its own process, with the sandbox started in it, exactly as a user types it: moto's
    state is process-wide, so every run gets a fresh sandbox. ``--all`` makes it deploy
    every module even when the state store remembers an earlier sandbox on the same port.
    """
    report, html = repo / "out" / f"{name}.json", repo / "out" / f"{name}.html"
    selection = ["--all"] if select_all else []
    command = [*deployfw_command(), *argv, "run", "--sandbox", *selection, "--report", str(report), "--html", str(html)]
    done = subprocess.run(command, cwd=repo, env=terminal_env(**env), capture_output=True, text=True, timeout=600)
    output = done.stdout + done.stderr
    assert report.exists(), output[-4000:]
    return Run(done.returncode, output, json.loads(report.read_text(encoding="utf-8")), html)
