"""Live checks for ``plan``: what the planned deploy backends can verify in the account before a run.

``preflight`` is static (files, templates, config) and runs before any AWS call. Some
mistakes only the live account shows - a service on the wrong deployment controller, a
listener rule that does not forward to both target groups - and would otherwise surface as a
failed or rolled-back deployment. Deploy backends that can check such things implement
:class:`~deployfw.backends.ChecksLive` (the rows ``deployfw doctor`` prints); ``plan`` asks the
deploy backend of each module it plans, read-only, and a failed row fails the plan (exit 1).

``plan`` works without AWS (the state store falls back to the CI variables), so the checks
first ask AWS who is calling: when that fails (no credentials, no network) none is run and the
plan says why, without failing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from deployfw import redact
from deployfw.backends import BackendRegistry, ChecksLive, LiveCheck, ModuleJob, RunContext, backend_for
from deployfw.config import Config
from deployfw.errors import DeployfwError
from deployfw.plan import Plan


@dataclass(frozen=True)
class ModuleCheck:
    module: str
    row: LiveCheck

    def to_json(self) -> dict[str, Any]:
        return {"module": self.module, "check": self.row.check, "ok": self.row.ok, "detail": self.row.detail,
                "fix": self.row.fix}  # fmt: skip

    def text(self) -> str:
        line = f"  {'ok  ' if self.row.ok else 'FAIL'}  {self.module}: {self.row.check}: {self.row.detail}"
        return line + (f"\n        fix: {self.row.fix}" if self.row.fix and not self.row.ok else "")


@dataclass(frozen=True)
class LiveChecks:
    rows: tuple[ModuleCheck, ...] = ()
    # Why no check ran although some planned backend has them (AWS did not answer).
    not_run: str | None = None
    asked: tuple[str, ...] = field(default=())

    @property
    def failed(self) -> list[ModuleCheck]:
        return [r for r in self.rows if not r.row.ok]

    def to_json(self) -> dict[str, Any]:
        return {"rows": [r.to_json() for r in self.rows], "not_run": self.not_run}

    def text(self) -> str:
        if self.not_run:
            return f"live checks: not run ({self.not_run})"
        if not self.rows:
            return ""
        failed = len(self.failed)
        head = f"live checks: {len(self.rows)} ({failed} failed)" if failed else f"live checks: {len(self.rows)} passed"
        return "\n".join([head, *(r.text() for r in self.rows)])


def aws_unreachable(ctx: RunContext) -> str | None:
    """Why AWS cannot be asked (one STS call through the run's AWS boundary), or None."""
    from deployfw.aws.clients import aws_for

    try:
        aws_for(ctx).account_id()  # asked once per run: the state scope may have asked (and failed) already
    except DeployfwError as exc:
        return redact.mask(str(exc))
    return None


def live_checks(
    plan: Plan,
    config: Config,
    registry: BackendRegistry,
    ctx: RunContext,
    *,
    unreachable: Callable[[RunContext], str | None] = aws_unreachable,
) -> LiveChecks:
    """Every planned deploy backend's live checks, module by module (in plan order)."""
    checking: list[tuple[str, ChecksLive]] = []
    for module_plan in plan.modules:
        stage = module_plan.stage("deploy")
        if stage is None:
            continue
        backend = backend_for(ctx, registry, "deploy", stage.backend)
        if isinstance(backend, ChecksLive):
            checking.append((module_plan.name, backend))
    if not checking:
        return LiveChecks()
    reason = unreachable(ctx)
    if reason is not None:
        return LiveChecks(not_run=reason)
    rows: list[ModuleCheck] = []
    for name, checker in checking:
        job = ModuleJob(ctx=ctx, module=config.modules[name], log=lambda _line: None)
        try:
            found = list(checker.live_checks(job))
        except Exception as exc:  # a backend's check must not hide the others (as in `deployfw doctor`)
            found = [LiveCheck("deploy", False, f"the check failed: {type(exc).__name__}: {redact.mask(str(exc))}")]
        rows.extend(ModuleCheck(name, row) for row in found)
    return LiveChecks(tuple(rows), asked=tuple(name for name, _ in checking))
