"""The one pipeline behind ``plan``, ``run --dry-run`` and ``run``.

config -> (sandbox) -> commits -> detection -> plan. Only the executor that
consumes the plan differs between the commands, so what ``plan`` prints is
exactly what ``run`` will do.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from deployfw.backends import RunContext
from deployfw.ci import CIContext, detect_ci
from deployfw.cli.app import App
from deployfw.config import Config
from deployfw.detect import Affected, Detection, detect
from deployfw.gitrepo import GitRepo
from deployfw.plan import Plan, make_plan
from deployfw.revisions import range_from, resolve_commit, resolve_range
from deployfw.runstate import RunState
from deployfw.state import DeployRecord


@dataclass
class Prepared:
    config: Config
    ci: CIContext
    detection: Detection
    plan: Plan
    ctx: RunContext
    state: RunState | None = None


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
    use_state: bool = False,
) -> Prepared:
    """Config, commits, detection and plan; with ``use_state`` (run) also the state store.

    With the state store, each module's change is measured from its last successful
    deploy (unless ``--base``/``--all``/``-m`` say otherwise), so a failed or skipped
    module is picked up again by the next run and nothing is missed between runs.
    """
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
    state: RunState | None = None
    bases: dict[str, str] = {}
    up_to_date: tuple[tuple[str, str], ...] = ()
    if use_state:
        state = RunState.open(app.plugins.backends, ctx, config.state)
        if not (base or select_all or modules):
            records = state.last_successes(n for n in config.order if config.modules[n].is_service)
            detection, bases, up_to_date = since_last_deploys(config, repo, detection, records)
    plan = make_plan(
        config, detection, app.plugins.backends, ctx, stop_after=stop_after, bases=bases, up_to_date=up_to_date
    )
    return Prepared(config, ci, detection, plan, ctx, state)


def since_last_deploys(
    config: Config, repo: GitRepo, fallback: Detection, records: Mapping[str, DeployRecord]
) -> tuple[Detection, dict[str, str], tuple[tuple[str, str], ...]]:
    """Re-detect every module that has a recorded deploy from that deploy's commit.

    Modules without a record keep the answer of ``fallback`` (CI variables, or
    everything). Modules sharing a last-deployed commit share one detection.
    """
    affected: dict[str, Affected] = {m.name: m for m in fallback.modules if m.name not in records}
    bases: dict[str, str] = {}
    up_to_date: list[tuple[str, str]] = []
    groups: dict[str, list[str]] = {}
    for name, record in records.items():
        groups.setdefault(record.commit, []).append(name)
    for commit, names in groups.items():
        sha = resolve_commit(repo, commit)
        if sha is None:
            for name in names:
                reason = f"no base: last deployed commit {commit[:12]} is not in this clone"
                affected[name] = Affected(name, config.modules[name].kind, (reason,))
            continue
        found = {m.name: m for m in detect(config, repo, range_from(repo, sha, fallback.head)).modules}
        for name in names:
            bases[name] = sha
            if name in found:
                reasons = tuple(f"since deploy {sha[:12]}: {r}" for r in found[name].reasons)
                affected[name] = Affected(name, found[name].kind, reasons)
            else:
                up_to_date.append((name, sha))
        for name, module in found.items():  # libraries, for the plan's "libraries affected" line
            if not config.modules[name].is_service:
                affected.setdefault(name, module)
    detection = Detection(
        fallback.base,
        fallback.head,
        fallback.merge_base,
        tuple(sorted(affected.values(), key=lambda m: m.name)),
        fallback.unowned,
        fallback.changed,
    )
    return detection, bases, tuple(sorted(up_to_date))


def plan_text(plan: Plan) -> str:
    """The display-only executor: what run would do, module by module."""
    base = plan.base[:12] if plan.base else "none (everything)"
    lines = [f"plan{' for ' + plan.env if plan.env else ''}: base {base} -> head {plan.head[:12]}"]
    for name, commit in plan.up_to_date:
        lines.append(f"{name}: up to date (deployed {commit[:12]}, nothing it depends on changed since)")
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
