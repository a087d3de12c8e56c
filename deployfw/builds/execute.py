"""Run one module's buildspec here, under a deadline and a cancel signal.

Shared by the ``local`` build backend and ``deployfw build MODULE`` (what a
Jenkins job or a CodeBuild project runs for one module), so both stop the same
way: the run's cancel event or the deadline stops the phase's process group,
and the outcome uses CodeBuild's vocabulary (``TIMED_OUT`` when the deadline
stopped it, like CodeBuild's own build timeout).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployfw import redact
from deployfw.buildspec import Buildspec, BuildspecResult, SecretResolver, run_buildspec

_WATCH_SECONDS = 0.1


@dataclass(frozen=True)
class Outcome:
    """A finished buildspec run with the status CodeBuild would report."""

    status: str  # SUCCEEDED | FAILED | STOPPED | TIMED_OUT
    result: BuildspecResult
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status == "SUCCEEDED"

    def details(self, backend: str) -> dict[str, Any]:
        """The report's ``build`` entry: backend, status, phases with their outcome."""
        return {
            "backend": backend,
            "status": self.status,
            "phases": [
                {
                    "name": p.name,
                    "status": p.status,
                    "exit_code": p.exit_code,
                    "duration_seconds": round(p.duration_seconds, 3),
                }
                for p in self.result.phases
            ],
            "exported_variables": {k: redact.mask(v) for k, v in self.result.exported_variables.items()},
        }


def needs_secrets(spec: Buildspec) -> bool:
    """Whether the buildspec names parameter-store or secrets-manager values."""
    return bool(spec.env.parameter_store or spec.env.secrets_manager)


def aws_resolver(region: str | None, endpoint_url: str | None) -> SecretResolver:
    """The AWS secret resolver pointed at the run's region and endpoint (imports boto3 lazily)."""
    from deployfw.buildspec.aws_resolver import AwsSecretResolver

    return AwsSecretResolver(region_name=region, endpoint_url=endpoint_url)


def run_with_deadline(
    spec: Buildspec,
    *,
    workdir: Path,
    env: Mapping[str, str],
    emit: Callable[[str], None],
    cancel: threading.Event | None,
    timeout: float,
    resolver: SecretResolver | None = None,
    phase_callback: Callable[[str], None] | None = None,
) -> Outcome:
    """Run ``spec``; stop it when ``cancel`` is set or ``timeout`` seconds pass."""
    stop = threading.Event()
    done = threading.Event()
    timed_out = threading.Event()
    deadline = time.monotonic() + timeout

    def watch() -> None:
        while not done.wait(_WATCH_SECONDS):
            if cancel is not None and cancel.is_set():
                stop.set()
                return
            if time.monotonic() >= deadline:
                timed_out.set()
                stop.set()
                return

    watcher = threading.Thread(target=watch, name="deployfw-build-deadline", daemon=True)
    watcher.start()
    try:
        result = run_buildspec(
            spec, workdir=workdir, env=env, emit=emit, cancel=stop, resolver=resolver, phase_callback=phase_callback
        )
    finally:
        done.set()
        watcher.join()
    status: str = result.status
    error = result.error
    if result.status == "STOPPED" and timed_out.is_set():
        status = "TIMED_OUT"
        error = f"build timed out after {timeout / 60:g} minutes"
    elif result.status == "STOPPED":
        error = "build stopped: the run was cancelled"
    elif result.status != "SUCCEEDED" and not error:
        error = f"build {result.status.lower()}"
    return Outcome(status, result, error)
