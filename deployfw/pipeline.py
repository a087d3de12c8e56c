"""The one pipeline behind ``plan``, ``run --dry-run`` and ``run``.

config -> connect (the front end may start a sandbox) -> commits -> state store -> detection
-> plan. Only the executor that consumes the plan differs between the commands: ``plan`` and
``--dry-run`` read the state store without writing to it and print; ``run`` takes locks and
executes. Both therefore see the same per-module bases and make the same selection, so what
``plan`` prints is exactly what ``run`` will do.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from deployfw.backends import RunContext
from deployfw.builds.content import ContentTagger
from deployfw.ci import CIContext, detect_ci
from deployfw.config import Config
from deployfw.context import make_context
from deployfw.detect import Affected, Detection, detect
from deployfw.errors import DeployfwError
from deployfw.gitrepo import GitRepo
from deployfw.plan import Plan, make_plan
from deployfw.revisions import range_from, resolve_commit, resolve_range
from deployfw.runstate import RunState
from deployfw.session import Session
from deployfw.state import DeployRecord

StateUse = Literal["write", "read"]


@dataclass
class Prepared:
    config: Config
    ci: CIContext
    detection: Detection
    plan: Plan
    ctx: RunContext
    state: RunState | None = None


def prepare(
    session: Session,
    *,
    base: str | None,
    head: str | None,
    select_all: bool,
    modules: Sequence[str],
    stop_after: str = "deploy",
    state: StateUse = "read",
) -> Prepared:
    """Config, commits, state, detection and plan.

    ``state="write"`` (run) opens the store to record deploys; ``"read"`` (plan, dry run)
    only reads it, and when it cannot be read (no credentials, no table yet) the plan says so
    and falls back to the CI variables. Either way each module's change is measured from its
    last successful deploy (unless ``--base``/``--all``/``-m`` say otherwise), so a failed or
    skipped module is picked up again by the next run and nothing is missed between runs.
    """
    config = session.load_config()
    session.connect(config)
    ci = detect_ci(os.environ)
    repo = GitRepo(config.root)
    rng = resolve_range(repo, ci, base, head)
    detection = detect(config, repo, rng, select_all=select_all, names=modules)
    ctx = make_context(config, head=detection.head, ci_url=ci.build_url, repository_url=ci.repository_url)
    opened: RunState | None = None
    bases: dict[str, str] = {}
    up_to_date: tuple[tuple[str, str], ...] = ()
    notes: list[str] = []
    try:
        opened = RunState.open(session.plugins, ctx, config.state, read_only=state == "read")
    except DeployfwError as exc:
        if state == "write":
            raise
        notes.append(f"state store not read ({exc}); bases from flags or CI variables only")
    if opened is not None and not (base or select_all or modules):
        records = opened.last_successes(n for n in config.order if config.modules[n].is_service)
        detection, bases, up_to_date = since_last_deploys(config, repo, detection, records)
    tagger = ContentTagger(config, detection.head, repo)
    plan = make_plan(
        config,
        detection,
        session.plugins.backends,
        ctx,
        stop_after=stop_after,
        bases=bases,
        up_to_date=up_to_date,
        content_tag=tagger.tag,
        notes=tuple(notes),
    )
    return Prepared(config, ci, detection, plan, ctx, opened if state == "write" else None)


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
