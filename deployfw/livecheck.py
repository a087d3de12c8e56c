"""Live checks for ``plan``: what the deploy backends can verify in the account before a run.

``preflight`` is static (files, templates, config) and runs before any AWS call. Some
mistakes only the live account shows - a service on the wrong deployment controller, a
listener rule that does not forward to both target groups - and would otherwise surface as a
failed or rolled-back deployment. Deploy backends that can check such things implement
:class:`~deployfw.backends.ChecksLive`; ``plan`` asks each one for the modules it plans,
read-only. A check that cannot run (no credentials, no network) is reported as a note, never
as a failure of the plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deployfw import redact
from deployfw.backends import BackendRegistry, ChecksLive, LiveFinding, ModuleJob, RunContext, backend_for
from deployfw.config import Config
from deployfw.errors import DeployfwError
from deployfw.plan import Plan


@dataclass(frozen=True)
class ModuleFinding:
    module: str
    finding: LiveFinding

    def to_json(self) -> dict[str, Any]:
        return {"module": self.module, "message": self.finding.message, "blocking": self.finding.blocking}

    def text(self) -> str:
        return f"  {self.module}: {'FAIL ' if self.finding.blocking else 'note: '}{self.finding.message}"


def live_findings(plan: Plan, config: Config, registry: BackendRegistry, ctx: RunContext) -> list[ModuleFinding]:
    """Every planned deploy backend's live findings, module by module (in plan order)."""
    found: list[ModuleFinding] = []
    for module_plan in plan.modules:
        stage = module_plan.stage("deploy")
        if stage is None:
            continue
        backend = backend_for(ctx, registry, "deploy", stage.backend)
        if not isinstance(backend, ChecksLive):
            continue
        job = ModuleJob(ctx=ctx, module=config.modules[module_plan.name], log=lambda _line: None)
        try:
            findings = list(backend.live_checks(job))
        except DeployfwError as exc:
            findings = [LiveFinding(f"live checks not run: {redact.mask(str(exc))}", blocking=False)]
        found.extend(ModuleFinding(module_plan.name, f) for f in findings)
    return found
