"""The ``local`` build backend: run the module's buildspec.yml on this machine.

The same buildspec runner serves CodeBuild's stand-in in the sandbox and
``deployfw build MODULE`` on a Jenkins agent, so a buildspec that works here
works there. The build runs in the repository root with the contract
environment of :mod:`deployfw.builds.contract`; it is expected to push
``$REPOSITORY_URI`` under ``$IMAGE_TAG`` and ``$IMAGE_CONTENT_TAG`` (typically
with ``deployfw image build``), after which the runner asks the registry for
the content tag's digest.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from deployfw.backends import ModuleJob, StageResult
from deployfw.builds.contract import (
    BuildInputs,
    account_from_uri,
    buildspec_path,
    buildspec_problems,
    contract_env,
    load_module_buildspec,
    source_dir,
    timeout_seconds,
    with_endpoint,
)
from deployfw.builds.execute import aws_resolver, needs_secrets, run_with_deadline
from deployfw.config import Config, Module
from deployfw.errors import Problem

if TYPE_CHECKING:
    from deployfw.iam.needs import IamNeed, IamScope


class LocalBuild:
    """Runs buildspecs in this process's machine; created per run (no external calls here)."""

    backend_id = "local"

    def __init__(self, ctx: Any, *, slots: int | None = None) -> None:
        self.ctx = ctx
        # Local builds burn this machine's CPUs, unlike CodeBuild/Jenkins builds and deploys,
        # which only wait: the run may have many modules in flight, but only this many local
        # builds at once, so they do not slow each other (and the waits) down.
        self._slots = threading.BoundedSemaphore(slots or os.cpu_count() or 2)

    def iam_needs(self, scope: IamScope) -> list[IamNeed]:
        """The buildspec's parameter-store and secrets-manager variables, read here (as the run itself)."""
        from deployfw.builds.iam import buildspec_needs
        from deployfw.iam.needs import BUILDER

        return buildspec_needs(scope, BUILDER)

    def steps(self, module: Module, config: Config) -> Sequence[str]:
        minutes = timeout_seconds(module) / 60
        return [f"run {buildspec_path(module)} here in the repository root (deadline {minutes:g} min)"]

    def preflight(self, module: Module, config: Config) -> Sequence[Problem]:
        return buildspec_problems(config, module)

    def build(self, job: ModuleJob) -> StageResult:
        """Run the buildspec; InputError (file and line) when it is invalid."""
        config, module = job.ctx.config, job.module
        if job.image is None:
            return StageResult(False, "no image reference: the registry stage did not prepare one")
        spec, _ = load_module_buildspec(config, module)
        inputs = BuildInputs(job.image, account_from_uri(job.image.repository_uri), job.ctx.region, job.ctx.run_id)
        env = with_endpoint(contract_env(module, inputs), job.ctx.endpoint_url)
        resolver = aws_resolver(job.ctx.region, job.ctx.endpoint_url) if needs_secrets(spec) else None
        if not self._slots.acquire(blocking=False):
            job.log("waiting for a free local build slot")
            waiting = time.monotonic()
            while not self._slots.acquire(timeout=0.2):
                if job.ctx.cancel.is_set():
                    return StageResult(False, "cancelled while waiting for a local build slot")
            job.mark("waited", seconds=round(time.monotonic() - waiting, 3), reason="a free local build slot")
        try:
            outcome = self._run(job, spec, env, resolver)
        finally:
            self._slots.release()
        return StageResult(outcome.ok, outcome.error, outcome.details(self.backend_id))

    def _run(self, job: ModuleJob, spec: Any, env: dict[str, str], resolver: Any) -> Any:
        config, module = job.ctx.config, job.module
        return run_with_deadline(
            spec,
            workdir=source_dir(config),
            env=env,
            emit=job.log,
            cancel=job.ctx.cancel,
            timeout=timeout_seconds(module),
            resolver=resolver,
        )
