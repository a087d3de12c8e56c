"""The one pipeline behind ``plan``, ``run --dry-run`` and ``run``.

config -> (sandbox) -> commits -> detection -> plan. Only the executor that
consumes the plan differs between the commands, so what ``plan`` prints is
exactly what ``run`` will do.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

from deployfw.backends import RunContext
from deployfw.ci import CIContext, detect_ci
from deployfw.cli.app import App
from deployfw.config import Config
from deployfw.detect import Detection, detect
from deployfw.gitrepo import GitRepo
from deployfw.plan import Plan, make_plan
from deployfw.revisions import resolve_range


@dataclass
class Prepared:
    config: Config
    ci: CIContext
    detection: Detection
    plan: Plan
    ctx: RunContext


def new_run_id() -> str:
    """Sortable and unique across agents: UTC time plus randomness."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


def prepare(
    app: App,
    *,
    base: str | None,
    head: str | None,
    select_all: bool,
    modules: Sequence[str],
    stop_after: str = "deploy",
) -> Prepared:
    config = app.load_config()
    if app.sandbox:
        app.start_sandbox(config)
    ci = detect_ci(os.environ)
    repo = GitRepo(config.root)
    rng = resolve_range(repo, ci, base, head)
    detection = detect(config, repo, rng, select_all=select_all, names=modules)
    region = config.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    ctx = RunContext(
        config=config,
        head=detection.head,
        run_id=new_run_id(),
        region=region,
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
        ci_url=ci.build_url,
    )
    plan = make_plan(config, detection, app.plugins.backends, ctx, stop_after=stop_after)
    return Prepared(config, ci, detection, plan, ctx)


def plan_text(plan: Plan) -> str:
    """The display-only executor: what run would do, module by module."""
    base = plan.base[:12] if plan.base else "none (everything)"
    lines = [f"plan{' for ' + plan.env if plan.env else ''}: base {base} -> head {plan.head[:12]}"]
    for module in plan.modules:
        lines.append(f"{module.name}: {'; '.join(module.reasons)}")
        if module.after:
            lines.append(f"  after: {', '.join(module.after)}")
        for stage in module.stages:
            lines.append(f"  {stage.stage:<7}{stage.backend} ({stage.plugin})")
            lines.extend(f"           - {step}" for step in stage.steps)
    if plan.libraries:
        lines.append(f"libraries affected (deployed through their dependents): {', '.join(plan.libraries)}")
    if not plan.modules:
        lines.append("nothing to deploy: no service module is affected")
    return "\n".join(lines)
